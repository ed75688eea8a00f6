package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/cgwd/cgwd/pkg/config"
	"github.com/cgwd/cgwd/pkg/control"
	"github.com/cgwd/cgwd/pkg/fib"
	"github.com/cgwd/cgwd/pkg/firewall"
)

// Cleaned is what Cleanup removed.
type Cleaned struct {
	fib.Removed
	// Firewall is the nftables table removed, "" if there was none.
	Firewall string
	// Settings is how many kernel settings were put back (fib.SettingsFile).
	Settings int
}

func (c Cleaned) String() string {
	s := fmt.Sprintf("removed %d routes, %d fail-closed routes, %d nexthop objects", c.Routes, c.FailClosed, c.Nexthops)
	if c.Firewall != "" {
		s += ", nftables table " + c.Firewall
	}
	if c.Settings > 0 {
		s += fmt.Sprintf(", restored %d kernel settings", c.Settings)
	}
	return s
}

// Cleanup removes what cgwd leaves in the kernel of the calling network
// namespace once stopped: the fail-closed routes a clean stop keeps on
// purpose, and whatever a crash left (routes and nexthop objects of cgwd's
// protocol in its table, its nftables table). cgwd adds no policy routing
// rules. It refuses while cgwd answers on its control socket, since the
// running daemon owns those objects and would put them back.
func Cleanup(ctx context.Context, cfg *config.Config) (Cleaned, error) {
	var c Cleaned
	qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := control.Query(qctx, cfg.ControlSocket); err == nil {
		return c, fmt.Errorf("cgwd is running (%s answers): stop it first", cfg.ControlSocket)
	}
	var err error
	if c.Removed, err = fib.Cleanup(cfg.BGP.RouteTable, cfg.BGP.RouteProtocol); err != nil {
		return c, err
	}
	removed, err := firewall.RemoveTable(firewall.DefaultTable)
	if err != nil {
		return c, err
	}
	if removed {
		c.Firewall = "inet " + firewall.DefaultTable
	}
	// Last: routes gone first, so that forwarding stops with nothing to forward.
	if c.Settings, err = fib.RestoreSettings(fib.SettingsFile(cfg.ControlSocket), slog.Default()); err != nil {
		return c, err
	}
	return c, nil
}
