package fib

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// The kernel settings cgwd's routing depends on are written here and
// nowhere else, and what cgwd changed is put back when the FIB stops:
//
//   - net.ipv4.nexthop_compat_mode=0 where the kernel has nexthop objects
//     (unless Config.KeepNexthopCompat): with it on, a group replace is
//     acknowledged only after a notification per route on the group (about
//     60 ms for 100,000 routes); off, it takes tens of µs, and `ip route`
//     shows "nhid N" without the resolved gateway.
//   - net.ipv4.fib_multipath_hash_policy=1 while paths of equal rank share
//     traffic (ECMP): Linux hashes on addresses only by default, which puts
//     every flow between two hosts on one path.
//   - With Config.ManageForwarding: net.ipv4.ip_forward=1, and rp_filter=2
//     (loose) on every path's netdev, so that what AWS returns over a path
//     cgwd does not send on is not dropped as spoofed by strict reverse-path
//     filtering. The effective value is the higher of conf/all and the
//     netdev's, so 2 on the netdev is loose whatever conf/all says. The
//     reconcile sets it again on a netdev made anew (a restarted tunnel).

// procSys is where the kernel's settings are.
const procSys = "/proc/sys"

// sysctls writes kernel settings under a root (procSys, or a directory in
// tests) and remembers the value each had before its first change.
type sysctls struct {
	root string
	log  *slog.Logger

	mu    sync.Mutex // guards saved and order
	saved map[string]string
	order []string // settings in the order first changed
	state string   // the file saved is recorded in, "" for none (sysctlstate.go)
}

func newSysctls(root string, log *slog.Logger) *sysctls {
	return &sysctls{root: root, log: log, saved: map[string]string{}}
}

// file is the file of a setting given as its /proc/sys path.
func (s *sysctls) file(path string) string {
	return filepath.Join(s.root, strings.TrimPrefix(path, procSys))
}

func (s *sysctls) get(path string) (string, error) {
	b, err := os.ReadFile(s.file(path))
	return strings.TrimSpace(string(b)), err
}

// set gives a setting (its /proc/sys path) value, unless it has it (so a
// container whose /proc/sys is read-only runs when the host has set it); it
// reports whether it wrote.
func (s *sysctls) set(path, value string) (bool, error) {
	old, err := s.get(path)
	if err != nil {
		return false, fmt.Errorf("fib: read %s: %w", sysctlName(path), err)
	}
	if old == value {
		return false, nil
	}
	if err := os.WriteFile(s.file(path), []byte(value+"\n"), 0o644); err != nil {
		if errors.Is(err, syscall.EROFS) {
			return false, fmt.Errorf("fib: set %s=%s: %w (in a container: set it on the host%s)", sysctlName(path), value, err, readOnlyWayOut(path))
		}
		return false, fmt.Errorf("fib: set %s=%s: %w", sysctlName(path), value, err)
	}
	s.mu.Lock()
	if _, ok := s.saved[path]; !ok {
		s.saved[path] = old
		s.order = append(s.order, path)
		s.record()
	}
	s.mu.Unlock()
	s.log.Info("kernel setting changed", "sysctl", sysctlName(path), "from", old, "to", value)
	return true, nil
}

// restore puts back, newest first, every setting set changed. A netdev's
// setting whose netdev is gone (a tunnel's, removed with it) is skipped.
func (s *sysctls) restore() {
	s.mu.Lock()
	order, saved := s.order, s.saved
	s.order, s.saved = nil, map[string]string{}
	s.mu.Unlock()
	for i := len(order) - 1; i >= 0; i-- {
		path := order[i]
		err := os.WriteFile(s.file(path), []byte(saved[path]+"\n"), 0o644)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			s.log.Error("restore kernel setting", "sysctl", sysctlName(path), "value", saved[path], "err", err)
		default:
			s.log.Info("kernel setting restored", "sysctl", sysctlName(path), "value", saved[path])
		}
	}
	s.forget()
}

// readOnlyWayOut names the config switch that spares cgwd a setting.
func readOnlyWayOut(path string) string {
	switch {
	case strings.HasSuffix(path, "/nexthop_compat_mode"):
		return ", or failover.nexthop_compat_mode: true"
	case strings.HasSuffix(path, "/ip_forward"), strings.HasSuffix(path, "/rp_filter"):
		return ", or manage_forwarding: false"
	}
	return ""
}

// sysctlName is a setting's sysctl(8) name: net.ipv4.ip_forward.
func sysctlName(path string) string {
	return strings.ReplaceAll(strings.TrimPrefix(strings.TrimPrefix(path, procSys), "/"), "/", ".")
}

// rpFilter is the /proc/sys path of a netdev's reverse-path filter.
func rpFilter(link string) string {
	return "/proc/sys/net/ipv4/conf/" + link + "/rp_filter"
}

// ForwardingOff reports whether IPv4 forwarding is off in the caller's
// network namespace (false when that cannot be read): with
// manage_forwarding off, check-config and the start log warn about it.
func ForwardingOff() bool {
	return newSysctls(procSys, slog.Default()).forwardingOff()
}

func (s *sysctls) forwardingOff() bool {
	v, err := s.get("/proc/sys/net/ipv4/ip_forward")
	return err == nil && v == "0"
}

func (f *FIB) forwardingOff() bool { return f.sys.forwardingOff() }

// applySysctls writes the settings the FIB's configuration and paths call
// for: at start, after a change of paths, and at every reconcile. Called
// with f.sys set.
func (f *FIB) applySysctls() error {
	f.state.Lock()
	var links []string
	multipath := false
	ranks := map[int]bool{}
	for _, p := range f.state.paths {
		if p.Name == "" {
			continue
		}
		links = append(links, p.Link)
		multipath = multipath || ranks[p.Rank]
		ranks[p.Rank] = true
	}
	f.state.Unlock()
	var errs []error
	set := func(path, value string) {
		if _, err := f.sys.set(path, value); err != nil {
			errs = append(errs, err)
		}
	}
	if f.groups && !f.cfg.KeepNexthopCompat {
		set("/proc/sys/net/ipv4/nexthop_compat_mode", "0")
	}
	if multipath {
		set("/proc/sys/net/ipv4/fib_multipath_hash_policy", "1")
	}
	if f.cfg.ManageForwarding {
		set("/proc/sys/net/ipv4/ip_forward", "1")
		for _, l := range links {
			if _, err := os.Stat(f.sys.file(rpFilter(l))); errors.Is(err, fs.ErrNotExist) {
				continue // not made yet (a tunnel starting): the next reconcile
			}
			set(rpFilter(l), "2")
		}
	}
	return errors.Join(errs...)
}
