package config

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// Pprof configures Go's profiling endpoint.
type Pprof struct {
	// Listen is a loopback host:port serving /debug/pprof/; empty or "off"
	// (the default) serves nothing.
	Listen string `yaml:"listen"`
}

// On reports whether profiles are served.
func (p Pprof) On() bool { return p.Listen != "" && p.Listen != "off" }

// unixScheme starts a unix socket address, as gobgp and its CLI (--target) write it.
const unixScheme = "unix://"

// maxSocketPath is the longest path a unix socket address holds (sun_path less its NUL).
const maxSocketPath = 107

// grpcListen splits a bgp.grpc_listen value into a unix socket path or a TCP
// host:port; both are empty for "off".
func grpcListen(s string) (sock, hostport string, err error) {
	switch {
	case s == "off":
		return "", "", nil
	case strings.HasPrefix(s, "unix:"):
		p := strings.TrimPrefix(s, "unix:")
		if strings.HasPrefix(p, "///") {
			p = p[2:]
		}
		if !strings.HasPrefix(p, "/") {
			return "", "", fmt.Errorf("%q: the socket path must be absolute (unix:///run/cgwd/gobgp.sock)", s)
		}
		if len(p) > maxSocketPath {
			return "", "", fmt.Errorf("%q: the socket path is longer than %d bytes, the limit for a unix socket", s, maxSocketPath)
		}
		return p, "", nil
	}
	if _, err := tcpAddr(s); err != nil {
		return "", "", fmt.Errorf("%q is not unix:///path, host:port or off", s)
	}
	return "", s, nil
}

// GRPCAddr is where gobgp's API listens, in gobgp's notation: "unix:///path"
// or "host:port"; empty when it is off. The config must be valid.
func (b *BGP) GRPCAddr() string {
	sock, hostport, _ := grpcListen(b.GRPCListen)
	if sock != "" {
		return unixScheme + sock
	}
	return hostport
}

// tcpAddr splits host:port and checks the port; host may be empty (all addresses).
func tcpAddr(s string) (host string, err error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", err
	}
	if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("port %q is not 1-65535", port)
	}
	return host, nil
}

// isLoopback reports whether host is a loopback IP literal (127.0.0.0/8, ::1).
// Names, even localhost, are not: what they resolve to is not in the config.
func isLoopback(host string) bool {
	a, err := netip.ParseAddr(host)
	return err == nil && a.IsLoopback()
}

// listeners checks every TCP and unix listener cgwd opens besides the control socket.
func (v *validator) listeners(c *Config) {
	if c.Metrics.Listen != "off" {
		if _, err := tcpAddr(c.Metrics.Listen); err != nil {
			v.add("metrics.listen", "%q is not host:port or off", c.Metrics.Listen)
		}
	}
	if c.Metrics.Pprof {
		v.add("metrics.pprof", "has moved: profiles have a loopback listener of their own, e.g. pprof: {listen: 127.0.0.1:6060}")
	}
	if c.Pprof.On() {
		host, err := tcpAddr(c.Pprof.Listen)
		switch {
		case err != nil:
			v.add("pprof.listen", "%q is not host:port or off", c.Pprof.Listen)
		case !isLoopback(host):
			v.add("pprof.listen", "%q is not a loopback address (127.0.0.1 or [::1]): profiles reveal memory contents and cost CPU", c.Pprof.Listen)
		}
	}
	sock, hostport, err := grpcListen(c.BGP.GRPCListen)
	switch {
	case err != nil:
		v.add("bgp.grpc_listen", "%v", err)
	case sock != "" && sock == c.ControlSocket:
		v.add("bgp.grpc_listen", "%s is also control_socket", sock)
	case hostport != "" && !c.BGP.GRPCAllowRemote:
		if host, _ := tcpAddr(hostport); !isLoopback(host) {
			v.add("bgp.grpc_listen", "%q is not a loopback address: whoever reaches it has full control of BGP "+
				"(reads the MD5 passwords, advertises any prefix, drops sessions), without authentication; "+
				"use the unix socket (the default), or set bgp.grpc_allow_remote: true if you mean it", hostport)
		}
	}
}

// Warnings lists settings that are valid but expose more than the defaults
// do or that AWS will not honour as written; check-config prints them and
// the daemon logs them at start.
func (c *Config) Warnings() Problems {
	v := &validator{}
	c.advertiseLimits(&validator{}, v)
	c.dxBFDWarnings(v)
	c.lanWarnings(v)
	c.staticWarnings(v)
	c.ikeAnyWarnings(v)
	if c.Metrics.Listen != "off" {
		if host, err := tcpAddr(c.Metrics.Listen); err == nil && !isLoopback(host) {
			v.add("metrics.listen", "%s is not a loopback address: every host that reaches it reads the state of the tunnels, "+
				"BGP sessions and paths; allow only your Prometheus (firewall) or listen on 127.0.0.1", c.Metrics.Listen)
		}
	}
	if _, hostport, err := grpcListen(c.BGP.GRPCListen); err == nil && hostport != "" {
		who := "every local user"
		if host, _ := tcpAddr(hostport); !isLoopback(host) {
			who = "every host that reaches it"
		}
		v.add("bgp.grpc_listen", "gobgp's API on TCP %s gives %s full control of BGP without authentication "+
			"(reads the MD5 passwords, advertises any prefix, drops sessions); the default unix socket is root-only", hostport, who)
	}
	return v.probs
}
