package config

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unicode/utf8"
)

// MaxSecretSize caps a secret file. A PSK, a WireGuard key or a TCP MD5
// password is tens of bytes; anything near this size is not a secret file.
const MaxSecretSize = 4096

// ReadSecret reads the secret file at path, which the config names in field
// (e.g. "psk_file"), and returns its content with surrounding white space
// trimmed. The caller owns the slice and should clear it when done.
//
// The file is opened once, without following a symbolic link in its last
// path component, and everything is checked on that open handle: it must be
// a regular file owned by the user cgwd runs as (its effective uid), with no
// group or other permission bits, and at most MaxSecretSize bytes. Errors
// name the field, the path and the reason, never the content.
func ReadSecret(field, path string) ([]byte, error) {
	b, err := readSecret(path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", field, path, err)
	}
	return b, nil
}

// readSecret is ReadSecret with errors that give only the reason.
func readSecret(path string) ([]byte, error) {
	// O_NONBLOCK: a FIFO at path must not hang the open; it is refused below.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		var pe *os.PathError
		switch {
		case errors.Is(err, syscall.ELOOP):
			return nil, errors.New("is a symbolic link; point the config at the file itself")
		case errors.As(err, &pe):
			return nil, pe.Err // the path is in the caller's message already
		}
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if err := secretFileOK(fi, os.Geteuid()); err != nil {
		return nil, err
	}
	// Read at most one byte more than fstat reported, from the same handle:
	// a file that grew in between is refused rather than read unbounded.
	buf := make([]byte, fi.Size()+1)
	n, err := io.ReadFull(io.LimitReader(f, int64(len(buf))), buf)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		clear(buf)
		return nil, err
	}
	if n == len(buf) {
		clear(buf)
		return nil, errors.New("changed while being read")
	}
	s := bytes.TrimSpace(buf[:n])
	if len(s) == 0 {
		return nil, errors.New("is empty")
	}
	return s, nil
}

// secretFileOK checks what fstat says about a secret file cgwd running as
// euid is about to read.
func secretFileOK(fi os.FileInfo, euid int) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("is not a regular file but %s", fileKind(fi.Mode()))
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != euid {
		return fmt.Errorf("is owned by uid %d, but this cgwd runs as uid %d; chown it to the daemon's user and run check-config as that user", st.Uid, euid)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("mode %04o allows group/other access; chmod 600", perm)
	}
	if fi.Size() > MaxSecretSize {
		return fmt.Errorf("is %d bytes, more than the %d a secret file may have", fi.Size(), MaxSecretSize)
	}
	return nil
}

// AWS's length limits for a tunnel's pre-shared key, in characters.
const (
	MinPSKLen = 8
	MaxPSKLen = 64
)

// checkSecretFiles reads every secret file of c the way the daemon will, so
// that check-config refuses what run would refuse, and checks that a PSK
// has a length AWS accepts and a WireGuard private key is a key. The
// contents are cleared at once and never reported.
func (c *Config) checkSecretFiles() Problems {
	v := &validator{}
	check := func(field, path string, content func([]byte) string) {
		if path == "" || !filepath.IsAbs(path) { // Validate reports those
			return
		}
		b, err := ReadSecret(field, path)
		if err != nil {
			v.probs = append(v.probs, Problem{Field: field, Msg: strings.TrimPrefix(err.Error(), field+" ")})
			return
		}
		defer clear(b)
		if content != nil {
			if msg := content(b); msg != "" {
				v.add(field, "%s: %s", path, msg)
			}
		}
	}
	for i, vpn := range c.VPN {
		for j, t := range vpn.Tunnels {
			field := fmt.Sprintf("vpn[%d].tunnels[%d]", i, j)
			if t.WireGuard != nil {
				check(field+".wireguard.private_key_file", t.WireGuard.PrivateKeyFile, wireGuardKeyProblem)
			}
			check(field+".bgp.password_file", t.BGP.PasswordFile, nil)
			if t.IPsec != nil {
				check(field+".ipsec.psk_file", t.IPsec.PSKFile, pskProblem)
			}
		}
	}
	for i, d := range c.DirectConnect {
		check(fmt.Sprintf("direct_connect[%d].bgp.password_file", i), d.BGP.PasswordFile, nil)
	}
	return v.probs
}

// pskProblem says what is wrong with a pre-shared key, without quoting it.
func pskProblem(psk []byte) string {
	if n := utf8.RuneCount(psk); n < MinPSKLen || n > MaxPSKLen {
		return fmt.Sprintf("the key is %d characters long; AWS pre-shared keys are %d to %d", n, MinPSKLen, MaxPSKLen)
	}
	return ""
}

// wireGuardKeyProblem says what is wrong with a WireGuard private key file,
// without quoting it.
func wireGuardKeyProblem(b []byte) string {
	buf := make([]byte, base64.StdEncoding.DecodedLen(len(b)))
	defer clear(buf)
	if n, err := base64.StdEncoding.Decode(buf, b); err != nil || n != 32 {
		return "is not a WireGuard private key (base64 of 32 bytes, as `wg genkey` prints)"
	}
	return ""
}

// fileKind names the kind of a file that is not a regular file.
func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	}
	return "a special file"
}
