package config

import (
	"slices"
	"strings"
	"testing"
)

// parseWith parses goodYAML with extra top-level YAML appended.
func parseWith(t *testing.T, extra string) *Config {
	t.Helper()
	c, err := Parse([]byte(goodYAML + extra))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func fields(ps Problems) []string {
	var f []string
	for _, p := range ps {
		f = append(f, p.Field)
	}
	return f
}

func TestGRPCDefaultIsRootOnlySocket(t *testing.T) {
	c := parseWith(t, "")
	if p := c.Validate(); p != nil {
		t.Fatalf("default config rejected:\n%v", p)
	}
	if c.BGP.GRPCListen != "unix:///run/cgwd/gobgp.sock" || c.BGP.GRPCAddr() != "unix:///run/cgwd/gobgp.sock" {
		t.Errorf("default grpc_listen %q (%q), want the unix socket /run/cgwd/gobgp.sock", c.BGP.GRPCListen, c.BGP.GRPCAddr())
	}
	if w := c.Warnings(); w != nil {
		t.Errorf("the default config warns:\n%v", w)
	}
	if c.Pprof.On() {
		t.Error("pprof is on by default")
	}

	// The socket follows the control socket into its runtime directory.
	c = parseWith(t, "control_socket: /run/cgwd-lab/cgwd.sock\n")
	if got := c.BGP.GRPCAddr(); got != "unix:///run/cgwd-lab/gobgp.sock" {
		t.Errorf("grpc socket %q, want it next to the control socket", got)
	}
}

func TestGRPCListenForms(t *testing.T) {
	cases := []struct {
		in, addr string
		warn     bool
	}{
		{"unix:///run/x/api.sock", "unix:///run/x/api.sock", false},
		{"unix:/run/x/api.sock", "unix:///run/x/api.sock", false},
		{"off", "", false},
		{"127.0.0.1:50051", "127.0.0.1:50051", true}, // written out: allowed, with a warning
		{"[::1]:50051", "[::1]:50051", true},
	}
	for _, tc := range cases {
		c := parseWith(t, "bgp: {grpc_listen: \""+tc.in+"\"}\n")
		if p := c.Validate(); p != nil {
			t.Errorf("%s rejected:\n%v", tc.in, p)
			continue
		}
		if got := c.BGP.GRPCAddr(); got != tc.addr {
			t.Errorf("%s: GRPCAddr %q, want %q", tc.in, got, tc.addr)
		}
		if w := fields(c.Warnings()); slices.Contains(w, "bgp.grpc_listen") != tc.warn {
			t.Errorf("%s: warnings %v, want a bgp.grpc_listen warning: %v", tc.in, w, tc.warn)
		}
	}
}

func TestGRPCListenRefused(t *testing.T) {
	cases := []struct{ yaml, want string }{
		{"bgp: {grpc_listen: \"0.0.0.0:50051\"}", `bgp.grpc_listen: "0.0.0.0:50051" is not a loopback address`},
		{"bgp: {grpc_listen: \":50051\"}", `bgp.grpc_listen: ":50051" is not a loopback address`},
		{"bgp: {grpc_listen: \"198.51.100.2:50051\"}", `bgp.grpc_listen: "198.51.100.2:50051" is not a loopback address`},
		{"bgp: {grpc_listen: \"localhost:50051\"}", `bgp.grpc_listen: "localhost:50051" is not a loopback address`},
		{"bgp: {grpc_listen: \"unix:run/gobgp.sock\"}", `bgp.grpc_listen: "unix:run/gobgp.sock": the socket path must be absolute`},
		{"bgp: {grpc_listen: /run/gobgp.sock}", `bgp.grpc_listen: "/run/gobgp.sock" is not unix:///path, host:port or off`},
		{"bgp: {grpc_listen: \"127.0.0.1:0\"}", `bgp.grpc_listen: "127.0.0.1:0" is not unix:///path, host:port or off`},
		{"bgp: {grpc_listen: \"unix:///" + strings.Repeat("a", 120) + "\"}", "is longer than 107 bytes"},
		{"control_socket: /run/c.sock\nbgp: {grpc_listen: \"unix:///run/c.sock\"}", "bgp.grpc_listen: /run/c.sock is also control_socket"},
		{"pprof: {listen: \"0.0.0.0:6060\"}", `pprof.listen: "0.0.0.0:6060" is not a loopback address`},
		{"pprof: {listen: \"localhost:6060\"}", `pprof.listen: "localhost:6060" is not a loopback address`},
		{"pprof: {listen: \"6060\"}", `pprof.listen: "6060" is not host:port or off`},
		{"metrics: {pprof: true}", "metrics.pprof: has moved"},
		{"metrics: {listen: \"127.0.0.1:99999\"}", `metrics.listen: "127.0.0.1:99999" is not host:port or off`},
	}
	for _, tc := range cases {
		p := parseWith(t, tc.yaml+"\n").Validate()
		if !strings.Contains(p.Error(), tc.want) {
			t.Errorf("%s: problems\n%v\nwant %q", tc.yaml, p, tc.want)
		}
	}
}

func TestGRPCAllowRemote(t *testing.T) {
	c := parseWith(t, "bgp: {grpc_listen: \"0.0.0.0:50051\", grpc_allow_remote: true}\n")
	if p := c.Validate(); p != nil {
		t.Fatalf("non-loopback gRPC with grpc_allow_remote rejected:\n%v", p)
	}
	w := c.Warnings()
	if !strings.Contains(w.Error(), "bgp.grpc_listen: gobgp's API on TCP 0.0.0.0:50051 gives every host that reaches it full control") {
		t.Errorf("warnings:\n%v", w)
	}
}

func TestListenerWarnings(t *testing.T) {
	c := parseWith(t, "metrics: {listen: \"0.0.0.0:9477\"}\npprof: {listen: \"[::1]:6060\"}\n")
	if p := c.Validate(); p != nil {
		t.Fatalf("rejected:\n%v", p)
	}
	if !c.Pprof.On() {
		t.Error("pprof.listen set but Pprof.On is false")
	}
	if w := fields(c.Warnings()); !slices.Equal(w, []string{"metrics.listen"}) {
		t.Errorf("warnings on %v, want only metrics.listen", w)
	}
	for _, l := range []string{"127.0.0.1:9477", "[::1]:9477", "off"} {
		if w := parseWith(t, "metrics: {listen: \""+l+"\"}\n").Warnings(); w != nil {
			t.Errorf("metrics on %s warns: %v", l, w)
		}
	}
}
