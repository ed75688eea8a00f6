package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
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
