package secret

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

const testSecret = "s3cret-psk-value"

// writeSecret writes a secret file with mode perm (umask aside) in a new
// temporary directory.
func writeSecret(t *testing.T, content string, perm os.FileMode) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t1.psk")
	if err := os.WriteFile(path, []byte(content), perm); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, perm); err != nil {
		t.Fatal(err)
	}
	return path
}

// wantSecretErr checks that Read refuses path with an error naming the
// field, the path and reason, and not the secret.
func wantSecretErr(t *testing.T, path, reason string) {
	t.Helper()
	b, err := Read("psk_file", path)
	if err == nil {
		t.Fatalf("Read(%s) accepted the file (%d bytes)", path, len(b))
	}
	if want := "psk_file " + path + ": " + reason; !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %q, want it to start with %q", err, want)
	}
	if strings.Contains(err.Error(), testSecret) {
		t.Fatalf("error leaks the secret: %v", err)
	}
}

func TestReadTrimsAndReturnsContent(t *testing.T) {
	path := writeSecret(t, "  "+testSecret+"\n", 0o600)
	b, err := Read("psk_file", path)
	if err != nil || string(b) != testSecret {
		t.Fatalf("Read = %q, %v", b, err)
	}
}

func TestReadRefusesGroupOrOtherBits(t *testing.T) {
	for _, perm := range []os.FileMode{0o640, 0o604, 0o610, 0o601} {
		wantSecretErr(t, writeSecret(t, testSecret, perm), fmt.Sprintf("mode %04o allows group/other access; chmod 600", perm))
	}
}

func TestReadRefusesSymlink(t *testing.T) {
	target := writeSecret(t, testSecret, 0o600)
	link := filepath.Join(t.TempDir(), "link.psk")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	wantSecretErr(t, link, "is a symbolic link")
}

func TestReadRefusesNonRegular(t *testing.T) {
	wantSecretErr(t, t.TempDir(), "is not a regular file but a directory")
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Without O_NONBLOCK the open would wait for a writer forever.
	wantSecretErr(t, fifo, "is not a regular file but a named pipe")
}

func TestReadRefusesOversizedFile(t *testing.T) {
	path := writeSecret(t, strings.Repeat("k", MaxSize+1), 0o600)
	wantSecretErr(t, path, "is 4097 bytes, more than the 4096 a secret file may have")
}

func TestReadRefusesEmptyAndMissing(t *testing.T) {
	wantSecretErr(t, writeSecret(t, " \n", 0o600), "is empty")
	wantSecretErr(t, filepath.Join(t.TempDir(), "none"), "no such file or directory")
}

func TestReadRefusesOtherOwner(t *testing.T) {
	path := writeSecret(t, testSecret, 0o600)
	if os.Geteuid() == 0 {
		// As root, hand the file to another user: the real check then runs.
		if err := os.Chown(path, 65534, 65534); err != nil {
			t.Fatal(err)
		}
		wantSecretErr(t, path, "is owned by uid 65534, but this cgwd runs as uid 0; chown it to the daemon's user and run check-config as that user")
		return
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	err = fileOK(fi, os.Geteuid()+1)
	if err == nil || !strings.Contains(err.Error(), "is owned by uid") {
		t.Fatalf("fileOK with another euid: %v", err)
	}
}
