// Package secret reads secret files (pre-shared keys, WireGuard private
// keys, TCP MD5 passwords) with one hardened open: no symbolic link, a
// regular file owned by cgwd's user, private to it, and small. Errors name
// the field, the path and the reason, never the content.
package secret

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
)

// MaxSize caps a secret file. A PSK, a WireGuard key or a TCP MD5
// password is tens of bytes; anything near this size is not a secret file.
const MaxSize = 4096

// Read reads the secret file at path, which the config names in field
// (e.g. "psk_file"), and returns its content with surrounding white space
// trimmed. The caller owns the slice and should clear it when done.
//
// The file is opened once, without following a symbolic link in its last
// path component, and everything is checked on that open handle: it must be
// a regular file owned by the user cgwd runs as (its effective uid), with no
// group or other permission bits, and at most MaxSize bytes. Errors
// name the field, the path and the reason, never the content.
func Read(field, path string) ([]byte, error) {
	b, err := readFile(path)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", field, path, err)
	}
	return b, nil
}

// readFile is Read with errors that give only the reason.
func readFile(path string) ([]byte, error) {
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
	if err := fileOK(fi, os.Geteuid()); err != nil {
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

// fileOK checks what fstat says about a secret file cgwd running as
// euid is about to read.
func fileOK(fi os.FileInfo, euid int) error {
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("is not a regular file but %s", fileKind(fi.Mode()))
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) != euid {
		return fmt.Errorf("is owned by uid %d, but this cgwd runs as uid %d; chown it to the daemon's user and run check-config as that user", st.Uid, euid)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("mode %04o allows group/other access; chmod 600", perm)
	}
	if fi.Size() > MaxSize {
		return fmt.Errorf("is %d bytes, more than the %d a secret file may have", fi.Size(), MaxSize)
	}
	return nil
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
