package labkit

import (
	"bytes"
	"context"
	"io"
	"net"
	"net/http"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// Command is the command name args run inside namespace ns (ip netns exec).
func Command(ns, name string, args ...string) *exec.Cmd {
	return exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// CommandContext is Command, killed when ctx ends.
func CommandContext(ctx context.Context, ns, name string, args ...string) *exec.Cmd {
	return exec.CommandContext(ctx, "ip", append([]string{"netns", "exec", ns, name}, args...)...)
}

// InNS runs a command inside namespace ns and returns its combined output.
func InNS(ns string, args ...string) (string, error) {
	out, err := Command(ns, args[0], args[1:]...).CombinedOutput()
	return string(out), err
}

// MustInNS is InNS that fails the test when the command fails.
func MustInNS(t testing.TB, ns string, args ...string) string {
	t.Helper()
	out, err := InNS(ns, args...)
	if err != nil {
		t.Fatalf("%s in %s: %v\n%s", strings.Join(args, " "), ns, err, out)
	}
	return out
}

// Do runs fn on an OS thread switched into namespace ns; sockets, netdevs
// and netlink handles fn creates stay in ns after it returns.
func Do(ns string, fn func() error) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	orig, err := netns.Get()
	if err != nil {
		return err
	}
	defer orig.Close()
	target, err := netns.GetFromName(ns)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := netns.Set(target); err != nil {
		return err
	}
	defer netns.Set(orig)
	return fn()
}

// HTTPGet fetches url from inside namespace ns: the socket is created on a
// thread switched into ns, so the request never leaves the lab.
func HTTPGet(ns, url string) (string, error) {
	dial := func(ctx context.Context, network, addr string) (c net.Conn, err error) {
		err = Do(ns, func() error {
			var d net.Dialer
			c, err = d.DialContext(ctx, network, addr)
			return err
		})
		return c, err
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DialContext: dial}}
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// ListenTCP starts a TCP listener in ns that counts the connections it
// accepts; it is closed when the test ends.
func ListenTCP(t testing.TB, ns, addr string) *atomic.Int64 {
	t.Helper()
	var ln net.Listener
	if err := Do(ns, func() (err error) {
		ln, err = net.Listen("tcp4", addr)
		return err
	}); err != nil {
		t.Fatalf("listen on %s in %s: %v", addr, ns, err)
	}
	var n atomic.Int64
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return // closed at cleanup
			}
			n.Add(1)
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close() })
	return &n
}

// DialTCP opens a TCP connection from ns to addr within timeout.
func DialTCP(ns, addr string, timeout time.Duration) error {
	return Do(ns, func() error {
		c, err := net.DialTimeout("tcp4", addr, timeout)
		if err == nil {
			c.Close()
		}
		return err
	})
}

// FlushConntrack empties namespace ns's connection tracking table.
func FlushConntrack(t testing.TB, ns string) {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		t.Fatal(err)
	}
	defer nl.Close()
	if err := nl.ConntrackTableFlush(netlink.ConntrackTable); err != nil {
		t.Fatalf("flush conntrack in %s: %v", ns, err)
	}
}

// Ping sends count pings 0.2 s apart from ns to dst, waiting up to 2 s for each answer.
func Ping(ns, dst string, count int) (string, error) {
	return InNS(ns, "ping", "-c", itoa(count), "-i", "0.2", "-W", "2", dst)
}

// PingVPC pings the VPC host from on-prem three times and fails the test unless it answers.
func PingVPC(t testing.TB) {
	t.Helper()
	if out, err := Ping(OnPrem, VPCHost, 3); err != nil {
		t.Fatalf("ping lab-onprem -> lab-vpc: %v\n%s", err, out)
	}
}

// PingRun is a ping running in the background in a namespace.
type PingRun struct {
	out  bytes.Buffer // read it only once done is closed
	done chan struct{}
	err  error
}

// StartPing runs ping with args in namespace ns; the test's end kills it
// if it is still running.
func StartPing(t testing.TB, ns string, args ...string) *PingRun {
	t.Helper()
	p := &PingRun{done: make(chan struct{})}
	cmd := Command(ns, "ping", args...)
	cmd.Stdout, cmd.Stderr = &p.out, &p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			_ = cmd.Process.Kill()
			<-p.done
		}
	})
	return p
}

// Done is closed once the ping has ended.
func (p *PingRun) Done() <-chan struct{} { return p.done }

// Wait waits for the ping to end and returns its output and exit error.
func (p *PingRun) Wait() (string, error) {
	<-p.done
	return p.out.String(), p.err
}

// Loss waits for the ping to end and returns its packet loss ("0%").
func (p *PingRun) Loss(t testing.TB) string {
	t.Helper()
	out, _ := p.Wait() // ping exits 1 when a packet is lost
	for _, f := range strings.Split(out, ", ") {
		if strings.HasSuffix(f, " packet loss") {
			return strings.TrimSuffix(f, " packet loss")
		}
	}
	t.Fatalf("no packet loss line in ping's output:\n%s", out)
	return ""
}

// Pair creates namespaces a and b (removing leftovers of an aborted run),
// joined by a veth named dev on both sides with addresses addrA and addrB
// (with prefix length); the test's end deletes them.
func Pair(t testing.TB, a, b, dev, addrA, addrB string) {
	t.Helper()
	del := func() {
		for _, ns := range []string{a, b} {
			exec.Command("ip", "netns", "del", ns).Run()
		}
	}
	del()
	t.Cleanup(del)
	for _, c := range [][]string{
		{"netns", "add", a}, {"netns", "add", b},
		{"-n", a, "link", "add", dev, "type", "veth", "peer", "name", dev, "netns", b},
		{"-n", a, "addr", "add", addrA, "dev", dev}, {"-n", b, "addr", "add", addrB, "dev", dev},
		{"-n", a, "link", "set", dev, "up"}, {"-n", b, "link", "set", dev, "up"},
		{"-n", a, "link", "set", "lo", "up"}, {"-n", b, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v %s", strings.Join(c, " "), err, out)
		}
	}
}

// Buffer is a bytes.Buffer safe for a writer goroutine and the test.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *Buffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *Buffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
