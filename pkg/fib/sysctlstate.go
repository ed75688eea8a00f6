package fib

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
)

// The kernel settings a FIB changed outlive the process in two cases: a
// stop for a restart (KeepOnStop) leaves them for the next run, and a crash
// or SIGKILL leaves them behind. Without a record the next run would find
// ip_forward already 1, take 1 for the operator's value, and leave
// forwarding on after a later plain stop. So the value each setting had
// before cgwd first changed it is written to Config.SettingsFile (in the
// root-only runtime directory) at every first change; the next run adopts
// those values as its own "before" values, a plain stop puts them back and
// removes the file, and `cgwd cleanup` does the same for a cgwd that is gone.

// settingsFileName is the file's name in the runtime directory.
const settingsFileName = "kernel-settings"

// SettingsFile is where a FIB whose control socket is socket records the
// kernel settings it changed: beside the socket, in cgwd's runtime directory.
func SettingsFile(socket string) string {
	return filepath.Join(filepath.Dir(socket), settingsFileName)
}

// savedLine is one line of the file: a setting's path under
// /proc/sys/net/ipv4 and its value before cgwd changed it. Anything else is
// refused on reading, so the file can name no other file to write.
var savedLine = regexp.MustCompile(`^net/ipv4/([A-Za-z0-9_.-]{1,15}/){0,2}[a-z0-9_]{1,40} [0-9]{1,4}$`)

// adopt reads the values a previous run recorded in file and takes them
// as the values to restore, in the order they were changed. A missing file
// is no error; a malformed line is logged and skipped.
func (s *sysctls) adopt(file string) error {
	s.state = file
	b, err := os.ReadFile(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("fib: read %s: %w", file, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if !savedLine.MatchString(line) || strings.Contains(line, "/../") || strings.Contains(line, "/./") {
			s.log.Warn("kernel settings file: line ignored", "file", file, "line", n)
			continue
		}
		rel, value, _ := strings.Cut(line, " ")
		path := procSys + "/" + rel
		if _, ok := s.saved[path]; ok {
			continue
		}
		s.saved[path] = value
		s.order = append(s.order, path)
		s.log.Info("kernel setting an earlier run changed: its value before that is the one put back", "sysctl", sysctlName(path), "value", value)
	}
	return nil
}

// record writes the values to restore to the state file, if there is one.
// Called with s.mu held.
func (s *sysctls) record() {
	if s.state == "" {
		return
	}
	var b strings.Builder
	for _, p := range s.order {
		fmt.Fprintf(&b, "%s %s\n", strings.TrimPrefix(p, procSys+"/"), s.saved[p])
	}
	tmp := s.state + ".new"
	err := os.WriteFile(tmp, []byte(b.String()), 0o600)
	if err == nil {
		err = os.Rename(tmp, s.state)
	}
	if err != nil {
		s.log.Warn("record changed kernel settings: a restart or crash will leave them changed", "file", s.state, "err", err)
	}
}

// forget removes the state file once every setting is back.
func (s *sysctls) forget() {
	if s.state == "" {
		return
	}
	if err := os.Remove(s.state); err != nil && !errors.Is(err, fs.ErrNotExist) {
		s.log.Warn("remove kernel settings file", "file", s.state, "err", err)
	}
}

// RestoreSettings puts back the kernel settings a stopped or crashed cgwd
// recorded in file (see SettingsFile) and removes it; it returns how many
// it found. For `cgwd cleanup`.
func RestoreSettings(file string, log *slog.Logger) (int, error) {
	return restoreSettings(procSys, file, log)
}

func restoreSettings(root, file string, log *slog.Logger) (int, error) {
	s := newSysctls(root, log)
	if err := s.adopt(file); err != nil {
		return 0, err
	}
	n := len(s.order)
	s.restore()
	return n, nil
}
