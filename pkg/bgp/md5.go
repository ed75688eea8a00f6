package bgp

import (
	"fmt"
	"net"
)

// TCP MD5 (RFC 2385) on both directions of a session: gobgp keys the
// sockets it dials with the peer's password, and keys its listener
// (0.0.0.0 and, IPV6_V6ONLY, ::, each for the peers of its own address
// family) per peer address with TCP_MD5SIG, so a SYN from the peer is
// checked by the kernel before any socket exists. That works only on a
// plain TCP listener: since Go 1.24, net.ListenConfig makes Multipath TCP
// listeners by default on Linux, on which the kernel refuses TCP_MD5SIG
// (ENOPROTOOPT, gobgp's "failed to set md5 ... protocol not available")
// and IP_TTL (EOPNOTSUPP, "cannot set TTL (255) for TCPListener"): the
// listener stays unkeyed and drops every signed SYN (TcpExtTCPMD5Unexpected),
// so only sessions cgwd opens come up. go.mod turns that default off
// (godebug multipathtcp=0); checkListener refuses to start when something
// (GODEBUG in the environment) turned it back on.

// multipathListeners reports whether net.Listen, as gobgp calls it, makes
// Multipath TCP sockets.
var multipathListeners = func() bool {
	var lc net.ListenConfig
	return lc.MultipathTCP()
}

// checkListener refuses a listening speaker with a keyed peer whose
// listener could not be keyed.
func checkListener(cfg Config) error {
	if cfg.ListenPort <= 0 || !multipathListeners() {
		return nil
	}
	for _, p := range cfg.Peers {
		if p.Password != "" {
			return fmt.Errorf("bgp: peer %s has a TCP MD5 password, but the listener would be Multipath TCP, "+
				"which the kernel cannot key (GODEBUG multipathtcp=1 or 2 in the environment?): sessions the peer opens would be dropped", p.Name)
		}
	}
	return nil
}
