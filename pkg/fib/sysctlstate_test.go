package fib

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
)

// A stop for a restart leaves forwarding on for the next run; that run must
// know forwarding was off before cgwd, and turn it off at a plain stop.
func TestSysctlsRestoredAfterARestart(t *testing.T) {
	before := freshBox()
	state := filepath.Join(t.TempDir(), settingsFileName)
	root, f, cancel, done := startOnBox(t, before, Config{Paths: paths, ManageForwarding: true, SettingsFile: state})
	checkSettings(t, "first run", root, map[string]string{"net.ipv4.ip_forward": "1", "net.ipv4.nexthop_compat_mode": "0"})
	f.KeepOnStop()
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	checkSettings(t, "stopped for a restart", root, map[string]string{"net.ipv4.ip_forward": "1", "net.ipv4.nexthop_compat_mode": "0"})
	if _, err := os.Stat(state); err != nil {
		t.Fatalf("no settings file after a stop for a restart: %v", err)
	}

	// The next run finds forwarding on and changes nothing itself.
	k := newFakeKernel()
	k.groups = true
	_, cancel2, done2 := startWith(t, Config{Table: 254, Protocol: 200, ReconcileInterval: 3600e9, Kernel: k, ProcSys: root,
		Paths: paths, ManageForwarding: true, SettingsFile: state})
	cancel2()
	if err := <-done2; err != nil {
		t.Fatal(err)
	}
	checkSettings(t, "plain stop after the restart", root, before)
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("settings file left after a plain stop: %v", err)
	}
}

// After a crash, `cgwd cleanup` puts back what the file records.
func TestRestoreSettingsAfterACrash(t *testing.T) {
	before := freshBox()
	state := filepath.Join(t.TempDir(), settingsFileName)
	root, f, cancel, done := startOnBox(t, before, Config{Paths: paths, ManageForwarding: true, SettingsFile: state})
	f.KeepOnStop() // what a SIGKILL leaves looks the same
	cancel()
	<-done
	n, err := restoreSettings(root, state, slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	if n != 4 { // ip_forward, nexthop_compat_mode, dx0's and cgw-t1's rp_filter
		t.Errorf("restored %d settings, want 4", n)
	}
	checkSettings(t, "after cleanup", root, before)
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("settings file left after cleanup: %v", err)
	}
	if n, err := restoreSettings(root, state, slog.Default()); n != 0 || err != nil {
		t.Errorf("cleanup again: %d, %v; want 0, nil", n, err)
	}
}

// The file can only name settings under net/ipv4: anything else (another
// file, a path climbing out) is ignored, never written.
func TestSettingsFileRefusesOtherPaths(t *testing.T) {
	root := procDir(t, map[string]string{"net.ipv4.ip_forward": "1"})
	victim := filepath.Join(root, "victim")
	if err := os.WriteFile(victim, []byte("keep\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(t.TempDir(), settingsFileName)
	lines := "net/ipv4/../../victim 0\nkernel/panic 0\nnet/ipv4/ip_forward; 0\nnet/ipv4/conf/../../../victim 0\nnet/ipv4/ip_forward 0\n"
	if err := os.WriteFile(state, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	n, err := restoreSettings(root, state, slog.Default())
	if err != nil || n != 1 {
		t.Fatalf("restored %d (%v), want 1: only ip_forward", n, err)
	}
	checkSettings(t, "after restore", root, map[string]string{"net.ipv4.ip_forward": "0"})
	if b, err := os.ReadFile(victim); err != nil || string(b) != "keep\n" {
		t.Errorf("victim file changed: %q %v", b, err)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Errorf("settings file left: %v", err)
	}
}
