package labkit

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// MD5Drops are a namespace's kernel counters of TCP segments dropped for
// TCP MD5 (nstat's TcpExtTCPMD5*): Failure, signatures that differ;
// NotFound, no signature where a key is set; Unexpected, a signature where
// none is.
type MD5Drops struct{ Failure, NotFound, Unexpected uint64 }

// ReadMD5Drops reads namespace ns's TCP MD5 drop counters.
func ReadMD5Drops(t testing.TB, ns string) MD5Drops {
	t.Helper()
	out := MustInNS(t, ns, "nstat", "-asz", "TcpExtTCPMD5Failure", "TcpExtTCPMD5NotFound", "TcpExtTCPMD5Unexpected")
	var d MD5Drops
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		v, err := strconv.ParseUint(f[1], 10, 64)
		if err != nil {
			continue
		}
		switch f[0] {
		case "TcpExtTCPMD5Failure":
			d.Failure = v
		case "TcpExtTCPMD5NotFound":
			d.NotFound = v
		case "TcpExtTCPMD5Unexpected":
			d.Unexpected = v
		}
	}
	return d
}

// BGPOpener says which end opened the Established BGP connection between
// namespace ns and peer: "local" when ns's end dialed port 179, "peer"
// when ns's end is port 179; an error when there is no such connection.
func BGPOpener(ns, peer string) (string, error) {
	out, err := InNS(ns, "ss", "-Htn", "state", "established", "dst", peer)
	if err != nil {
		return "", fmt.Errorf("ss in %s: %v: %s", ns, err, out)
	}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line) // Recv-Q Send-Q Local:Port Peer:Port
		if len(f) < 4 {
			continue
		}
		switch {
		case strings.HasSuffix(f[3], ":179"):
			return "local", nil
		case strings.HasSuffix(f[2], ":179"):
			return "peer", nil
		}
	}
	return "", fmt.Errorf("no established BGP connection to %s in %s: %q", peer, ns, out)
}

// EditAWSBird applies edits to the lab's BIRD config (AWSBirdConf) and
// has BIRD load it (birdc configure, which restarts the protocols whose
// settings changed).
func EditAWSBird(t testing.TB, edits ...Edit) {
	t.Helper()
	b, err := os.ReadFile(AWSBirdConf)
	if err != nil {
		t.Fatal(err)
	}
	conf := applyEdits(t, string(b), edits...)
	if err := os.WriteFile(AWSBirdConf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	AWSBird.C(t, "configure")
}
