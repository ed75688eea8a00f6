package fib

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// procDir is a /proc/sys stand-in holding the given settings.
func procDir(t *testing.T, settings map[string]string) string {
	t.Helper()
	root := t.TempDir()
	for name, v := range settings {
		writeSetting(t, root, name, v)
	}
	return root
}

func writeSetting(t *testing.T, root, name, v string) {
	t.Helper()
	p := filepath.Join(root, strings.ReplaceAll(name, ".", "/"))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readSetting(t *testing.T, root, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, strings.ReplaceAll(name, ".", "/")))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func checkSettings(t *testing.T, when, root string, want map[string]string) {
	t.Helper()
	for name, v := range want {
		if got := readSetting(t, root, name); got != v {
			t.Errorf("%s: %s = %s, want %s", when, name, got, v)
		}
	}
}

// freshBox is a box's settings before cgwd: no forwarding, strict
// reverse-path filtering, the kernel's defaults for the rest.
func freshBox() map[string]string {
	return map[string]string{
		"net.ipv4.ip_forward":                "0",
		"net.ipv4.nexthop_compat_mode":       "1",
		"net.ipv4.fib_multipath_hash_policy": "0",
		"net.ipv4.conf.dx0.rp_filter":        "1",
		"net.ipv4.conf.cgw-t1.rp_filter":     "1",
		"net.ipv4.conf.all.rp_filter":        "1",
		"net.ipv4.conf.unrelated0.rp_filter": "1",
	}
}

// startOnBox runs a FIB with nexthop objects over the settings before,
// written in a directory it returns as the FIB's ProcSys.
func startOnBox(t *testing.T, before map[string]string, cfg Config) (string, *FIB, context.CancelFunc, chan error) {
	t.Helper()
	root := procDir(t, before)
	k := newFakeKernel()
	k.groups = true
	cfg.Table, cfg.Protocol, cfg.ReconcileInterval, cfg.Kernel, cfg.ProcSys = 254, 200, time.Hour, k, root
	f, cancel, done := startWith(t, cfg)
	return root, f, cancel, done
}

func TestSysctlsSetWhileRunningAndRestoredOnStop(t *testing.T) {
	before := freshBox()
	ecmp := []Path{{Name: "dx1", Link: "dx0", Gateway: dxGw}, {Name: "cgw-t1", Link: "cgw-t1", Gateway: t1Gw, Rank: 1}, {Name: "cgw-t2", Link: "cgw-t2", Gateway: t2Gw, Rank: 1}}
	root, f, cancel, done := startOnBox(t, before, Config{Paths: ecmp, ManageForwarding: true})
	checkSettings(t, "running", root, map[string]string{
		"net.ipv4.ip_forward": "1", "net.ipv4.nexthop_compat_mode": "0", "net.ipv4.fib_multipath_hash_policy": "1",
		"net.ipv4.conf.dx0.rp_filter": "2", "net.ipv4.conf.cgw-t1.rp_filter": "2",
		"net.ipv4.conf.all.rp_filter": "1", "net.ipv4.conf.unrelated0.rp_filter": "1",
	})
	// Tunnel 2's netdev appears later (a tunnel starting): the reconcile
	// finds it.
	writeSetting(t, root, "net.ipv4.conf.cgw-t2.rp_filter", "1")
	f.reconcile()
	checkSettings(t, "after a reconcile", root, map[string]string{"net.ipv4.conf.cgw-t2.rp_filter": "2"})
	// Tunnel 1's netdev goes with its tunnel before cgwd stops.
	if err := os.RemoveAll(filepath.Join(root, "net/ipv4/conf/cgw-t1")); err != nil {
		t.Fatal(err)
	}
	errs := f.Counters.Errors.Load()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	delete(before, "net.ipv4.conf.cgw-t1.rp_filter")
	before["net.ipv4.conf.cgw-t2.rp_filter"] = "1"
	checkSettings(t, "stopped", root, before)
	if got := f.Counters.Errors.Load() - errs; got != 0 {
		t.Errorf("%d errors at stop, want 0", got)
	}
}

func TestSysctlsLeftAloneWithoutManageForwarding(t *testing.T) {
	before := freshBox()
	root, _, cancel, done := startOnBox(t, before, Config{Paths: paths, KeepNexthopCompat: true})
	checkSettings(t, "running", root, before) // no ECMP, compat kept, forwarding the operator's
	cancel()
	<-done
	checkSettings(t, "stopped", root, before)
}
