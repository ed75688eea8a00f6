package daemon

import (
	"log/slog"
	"maps"
	"strings"
	"testing"

	"github.com/cgwd/cgwd/pkg/config"
)

// Each path's preference reaches both the FIB (which selects by it) and its
// BGP session (as the local preference of its routes, so gobgp agrees);
// follow_aws reaches the connection's tunnels.
func TestPreferenceMappedToFIBAndLocalPref(t *testing.T) {
	src := strings.Replace(firewallYAML, "  - tunnels:\n", "  - follow_aws: true\n    tunnels:\n", 1)
	src = strings.Replace(src, "      - name: cgw-t2\n", "      - name: cgw-t2\n        preference: 400\n", 1)
	c, err := config.Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	bc, fc, _, err := routingConfig(c, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	lp := map[string]uint32{}
	for _, p := range bc.Peers {
		lp[p.Name] = p.LocalPref
	}
	if want := map[string]uint32{"cgw-t1": 100, "cgw-t2": 400, "dx1": 300}; !maps.Equal(lp, want) {
		t.Errorf("local preference per peer %v, want %v", lp, want)
	}
	type sel struct {
		pref, rank int
		follow     bool
	}
	got := map[string]sel{}
	for _, p := range fc.Paths {
		got[p.Name] = sel{p.Preference, p.Rank, p.FollowAWS}
	}
	if want := map[string]sel{"cgw-t1": {100, 3, true}, "cgw-t2": {400, 4, true}, "dx1": {300, 0, false}}; !maps.Equal(got, want) {
		t.Errorf("FIB paths %v, want %v", got, want)
	}
}
