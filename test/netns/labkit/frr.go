package labkit

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// FRRDir is where each FRR instance of the lab has its run directory
// (FRRDir/NAME: config, PID files, vty sockets, logs).
const FRRDir = State + "/frr"

// frrDaemons are the FRR daemons StartFRR runs, zebra first: the others
// connect to its zserv socket.
var frrDaemons = []string{"zebra", "staticd", "bfdd", "bgpd"}

// FRR is a running FRR (Debian package frr) of a test: zebra, staticd,
// bfdd and bgpd in one namespace, sharing one config text, run as instance
// Name (-N) with every file in Dir, each daemon known by its PID.
type FRR struct {
	NS, Name, Dir string

	procs []*exec.Cmd
	done  []chan struct{}
	once  sync.Once
}

// StartFRR starts FRR in namespace ns as instance name with config conf
// (frr.conf syntax; every daemon reads the whole text and ignores the
// others' commands), its vty on sockets only (-P 0). It returns once every
// daemon answers on its vty; the test's end (or Stop) stops them by PID.
// name must be unique among the FRRs running at once.
func StartFRR(t testing.TB, ns, name, conf string) *FRR {
	t.Helper()
	RequireTools(t, "vtysh")
	f := &FRR{NS: ns, Name: name, Dir: filepath.Join(FRRDir, name)}
	os.RemoveAll(f.Dir) // leftovers of an aborted run
	if err := os.MkdirAll(f.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(f.Dir, "frr.conf")
	if err := os.WriteFile(path, []byte(conf), 0o640); err != nil {
		t.Fatal(err)
	}
	// vtysh -N NAME reads FRRDir/NAME/vtysh.conf (--config_dir FRRDir);
	// empty is fine, missing is a warning on every call.
	if err := os.WriteFile(filepath.Join(f.Dir, "vtysh.conf"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// The daemons drop to user frr: it must write the run directory and
	// read the config.
	if u, err := user.Lookup("frr"); err == nil {
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, p := range []string{f.Dir, path} {
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Cleanup(func() {
		f.Stop()
		if t.Failed() {
			t.Logf("FRR %s logs:\n%s", name, f.Logs())
		}
	})
	for _, d := range frrDaemons {
		args := []string{"-N", name, "-f", path, "-P", "0",
			"--vty_socket", f.Dir, "-z", filepath.Join(f.Dir, "zserv.api"),
			"-i", filepath.Join(f.Dir, d+".pid"), "--log", "file:" + filepath.Join(f.Dir, d+".log")}
		if d == "bfdd" {
			args = append(args, "--bfdctl", filepath.Join(f.Dir, "bfdd.sock"))
		}
		// In the foreground: ip netns exec execs the daemon, so the
		// process started is the daemon and its PID is known at once.
		cmd := Command(ns, "/usr/lib/frr/"+d, args...)
		out, err := os.Create(filepath.Join(f.Dir, d+".out"))
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stdout, cmd.Stderr = out, out
		if err := cmd.Start(); err != nil {
			out.Close()
			t.Fatalf("start FRR %s in %s: %v", d, ns, err)
		}
		out.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		f.procs, f.done = append(f.procs, cmd), append(f.done, done)
		Eventually(t, 10*time.Second, fmt.Sprintf("FRR %s's %s answers", name, d), func() error {
			select {
			case <-done:
				return fmt.Errorf("%s exited: %s", d, f.readFile(d+".out"))
			default:
			}
			_, err := f.TryVtysh("-d", d, "-c", "show version")
			return err
		})
	}
	return f
}

// Stop stops the daemons by PID (SIGTERM, SIGKILL after 5 s), zebra last.
// It is safe to call more than once.
func (f *FRR) Stop() {
	f.once.Do(func() {
		for i := len(f.procs) - 1; i >= 0; i-- {
			f.procs[i].Process.Signal(syscall.SIGTERM)
			select {
			case <-f.done[i]:
			case <-time.After(5 * time.Second):
				f.procs[i].Process.Kill()
				<-f.done[i]
			}
		}
	})
}

// TryVtysh runs vtysh against this instance with raw vtysh arguments
// ("-c", "show bgp summary", "-d", "bgpd", ...) and returns its output.
func (f *FRR) TryVtysh(args ...string) (string, error) {
	base := []string{"-N", f.Name, "--vty_socket", FRRDir, "--config_dir", FRRDir}
	out, err := exec.Command("vtysh", append(base, args...)...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("vtysh -N %s %s: %v: %s", f.Name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// Vtysh runs each of cmds in vtysh (one -c each, in order: "configure
// terminal", "router bgp 64512", ... works) and fails the test when vtysh
// fails; it returns the output.
func (f *FRR) Vtysh(t testing.TB, cmds ...string) string {
	t.Helper()
	var args []string
	for _, c := range cmds {
		args = append(args, "-c", c)
	}
	out, err := f.TryVtysh(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// TryVtyshJSON runs one show command that ends in "json" and decodes its
// output into v.
func (f *FRR) TryVtyshJSON(v any, cmd string) error {
	out, err := f.TryVtysh("-c", cmd)
	if err != nil {
		return err
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		return fmt.Errorf("vtysh -c %q: %v: %s", cmd, err, out)
	}
	return nil
}

// VtyshJSON is TryVtyshJSON that fails the test on error, e.g.
// f.VtyshJSON(t, &m, "show bgp ipv4 unicast json").
func (f *FRR) VtyshJSON(t testing.TB, v any, cmd string) {
	t.Helper()
	if err := f.TryVtyshJSON(v, cmd); err != nil {
		t.Fatal(err)
	}
}

// FRRNeighbor is the part of `show bgp neighbors PEER json` tests read.
type FRRNeighbor struct {
	State       string `json:"bgpState"`
	LastReset   string `json:"lastResetDueTo"`
	Established int    `json:"connectionsEstablished"`
	Dropped     int    `json:"connectionsDropped"`
}

// Neighbor reads bgpd's view of its session with peer.
func (f *FRR) Neighbor(peer string) (FRRNeighbor, error) {
	var m map[string]FRRNeighbor
	if err := f.TryVtyshJSON(&m, "show bgp neighbors "+peer+" json"); err != nil {
		return FRRNeighbor{}, err
	}
	n, ok := m[peer]
	if !ok {
		return n, fmt.Errorf("FRR %s has no neighbor %s", f.Name, peer)
	}
	return n, nil
}

// Established returns nil once bgpd's session with peer is Established,
// else an error with its state: made for Eventually.
func (f *FRR) Established(peer string) error {
	n, err := f.Neighbor(peer)
	if err != nil {
		return err
	}
	if n.State != "Established" {
		return fmt.Errorf("FRR %s: neighbor %s is %s (last reset: %s)", f.Name, peer, n.State, n.LastReset)
	}
	return nil
}

// WaitEstablished waits until bgpd has every one of peers Established.
func (f *FRR) WaitEstablished(t testing.TB, timeout time.Duration, peers ...string) {
	t.Helper()
	Eventually(t, timeout, fmt.Sprintf("FRR %s: %s Established", f.Name, strings.Join(peers, ", ")), func() error {
		for _, p := range peers {
			if err := f.Established(p); err != nil {
				return err
			}
		}
		return nil
	})
}

// Logs is the end of every daemon's log and output, for a failing test.
func (f *FRR) Logs() string {
	var b strings.Builder
	for _, d := range frrDaemons {
		for _, file := range []string{d + ".out", d + ".log"} {
			s := strings.TrimSpace(f.readFile(file))
			if s == "" {
				continue
			}
			lines := strings.Split(s, "\n")
			fmt.Fprintf(&b, "== %s\n%s\n", file, strings.Join(lines[max(0, len(lines)-30):], "\n"))
		}
	}
	return b.String()
}

func (f *FRR) readFile(name string) string {
	b, _ := os.ReadFile(filepath.Join(f.Dir, name))
	return string(b)
}
