package ipsec

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/cgwd/cgwd/pkg/config"
	"github.com/cgwd/cgwd/pkg/ike"
	"github.com/cgwd/cgwd/pkg/secret"
)

// FromConfig builds an IPsec tunnel from a validated tunnel config, reading
// its pre-shared key file.
func FromConfig(tc *config.Tunnel, log *slog.Logger) (*Tunnel, error) {
	c := tc.IPsec.WithDefaults()
	psk, err := secret.Read("psk_file", c.PSKFile)
	if err != nil {
		return nil, fmt.Errorf("tunnel %s: %w", tc.Name, err)
	}
	ikeP, espP, err := c.Proposals()
	if err != nil {
		return nil, fmt.Errorf("tunnel %s: %w", tc.Name, err)
	}
	awsInside, localInside := tc.InsideAddrs()
	local, err1 := netip.ParseAddr(tc.Outside.Local)
	remote, err2 := netip.ParseAddr(tc.Outside.Remote)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("tunnel %s: outside addresses must be IPv4 addresses", tc.Name)
	}
	var localID, remoteID netip.Addr
	if c.LocalID != "" {
		localID, _ = netip.ParseAddr(c.LocalID)
	}
	if c.RemoteID != "" {
		remoteID, _ = netip.ParseAddr(c.RemoteID)
	}
	return New(Config{
		Name:       tc.Name,
		MTU:        tc.MTU,
		Inside:     localInside,
		PeerInside: awsInside.Addr(),
		Logger:     log,
		IKE: ike.Config{
			Local: local, Remote: remote, LocalID: localID, RemoteID: remoteID,
			PSK:          psk, // the tunnel wipes it on Close
			IKEProposals: ikeP, ESPProposals: espP,
			Initiate:      *c.Initiate,
			IKELifetime:   time.Duration(c.IKELifetime),
			ChildLifetime: time.Duration(c.ChildLifetime),
			RekeyMargin:   time.Duration(c.RekeyMargin),
			RekeyFuzz:     float64(*c.RekeyFuzz) / 100,
			DPDDelay:      time.Duration(c.DPDDelay),
			DPDTimeout:    time.Duration(c.DPDTimeout),
			ForceEncap:    *c.ForceEncap,
			ReplayWindow:  c.ReplayWindow,
			// 0 takes ike's defaults.
			CookieThreshold: c.CookieThreshold,
			HalfOpenLimit:   c.HalfOpenLimit,
		},
	})
}
