package awsimport

import (
	"fmt"
	"strings"

	"github.com/cgwd/cgwd/pkg/config"
)

// Check renders c with o and runs cgwd's config validation on the result,
// so the import applies exactly the rules `cgwd check-config` will (reserved
// inside ranges, ASNs, names...). It returns what the operator must still
// supply (the ASN, on-prem prefixes, this box's outside address), which
// check-config will name too; an error means the input itself breaks a rule.
func Check(c *Connection, o Options) (missing config.Problems, err error) {
	yml, err := Render(c, o)
	if err != nil {
		return nil, err
	}
	cfg, err := config.Parse(yml)
	if err != nil {
		return nil, fmt.Errorf("rendered config does not parse (a cgwd bug): %w", err)
	}
	var bad config.Problems
	for _, p := range cfg.Validate() {
		if isMissing(p) {
			missing = append(missing, p)
		} else {
			bad = append(bad, p)
		}
	}
	if len(bad) > 0 {
		return missing, fmt.Errorf("the imported connection breaks cgwd's config rules:\n%w", bad)
	}
	return missing, nil
}

// isMissing reports whether p is a fact AWS does not provide and a flag does.
func isMissing(p config.Problem) bool {
	switch {
	case p.Field == "asn" && strings.HasPrefix(p.Msg, "is required"):
		return true
	case p.Field == "prefixes" && strings.HasPrefix(p.Msg, "at least one"):
		return true
	case strings.HasSuffix(p.Field, ".outside.local") && p.Msg == "is required":
		return true
	case strings.HasSuffix(p.Field, ".static_routes") && strings.HasPrefix(p.Msg, "is required"):
		return true
	}
	return false
}
