package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cgwd/cgwd/pkg/fib"
)

const checkBase = `asn: 65000
prefixes: [10.10.0.0/16]
direct_connect:
  - {interface: dx0, local: 169.254.255.2/30, peer: 169.254.255.1}
`

func checkConfig(t *testing.T, yaml string) (code int, stdout, stderr string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "cgwd.yaml")
	if err := os.WriteFile(path, []byte(checkBase+yaml), 0o600); err != nil {
		t.Fatal(err)
	}
	return runCLI("check-config", "-c", path)
}

func TestCheckConfigListeners(t *testing.T) {
	code, out, errOut := checkConfig(t, "")
	if code != exitOK || !strings.HasSuffix(out, ": ok\n") || errOut != "" {
		t.Errorf("default listeners: exit %d\n%s%s", code, out, errOut)
	}

	code, _, errOut = checkConfig(t, "bgp: {grpc_listen: \"0.0.0.0:50051\"}\n")
	if code != exitUsage || !strings.Contains(errOut, `bgp.grpc_listen: "0.0.0.0:50051" is not a loopback address`) {
		t.Errorf("gRPC on every address: exit %d\n%s", code, errOut)
	}

	code, out, errOut = checkConfig(t, "bgp: {grpc_listen: \"0.0.0.0:50051\", grpc_allow_remote: true}\nmetrics: {listen: \"0.0.0.0:9477\"}\n")
	if code != exitOK || !strings.HasSuffix(out, ": ok\n") ||
		!strings.Contains(errOut, "warning: metrics.listen: 0.0.0.0:9477 is not a loopback address") ||
		!strings.Contains(errOut, "warning: bgp.grpc_listen: gobgp's API on TCP 0.0.0.0:50051 gives every host") {
		t.Errorf("explicit remote gRPC and metrics: exit %d\n%s%s", code, out, errOut)
	}

	code, _, errOut = checkConfig(t, "pprof: {listen: \"0.0.0.0:6060\"}\n")
	if code != exitUsage || !strings.Contains(errOut, `pprof.listen: "0.0.0.0:6060" is not a loopback address`) {
		t.Errorf("pprof on every address: exit %d\n%s", code, errOut)
	}
}

func TestCheckConfigWarnsWhenForwardingIsLeftOff(t *testing.T) {
	off := true
	forwardingOff = func() bool { return off }
	defer func() { forwardingOff = fib.ForwardingOff }()
	const warning = "warning: manage_forwarding: false, and net.ipv4.ip_forward is 0 on this host"
	if code, _, errOut := checkConfig(t, "manage_forwarding: false\n"); code != exitOK || !strings.Contains(errOut, warning) {
		t.Errorf("forwarding left off: exit %d, want a warning\n%s", code, errOut)
	}
	if _, _, errOut := checkConfig(t, ""); errOut != "" {
		t.Errorf("forwarding managed by cgwd: %s", errOut)
	}
	off = false
	if _, _, errOut := checkConfig(t, "manage_forwarding: false\n"); errOut != "" {
		t.Errorf("forwarding on: %s", errOut)
	}
}
