package config

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

// wantSecretErr checks that ReadSecret refuses path with an error naming the
// field, the path and reason, and not the secret.
func wantSecretErr(t *testing.T, path, reason string) {
	t.Helper()
	b, err := ReadSecret("psk_file", path)
	if err == nil {
		t.Fatalf("ReadSecret(%s) accepted the file (%d bytes)", path, len(b))
	}
	if want := "psk_file " + path + ": " + reason; !strings.HasPrefix(err.Error(), want) {
		t.Fatalf("error %q, want it to start with %q", err, want)
	}
	if strings.Contains(err.Error(), testSecret) {
		t.Fatalf("error leaks the secret: %v", err)
	}
}

func TestReadSecretTrimsAndReturnsContent(t *testing.T) {
	path := writeSecret(t, "  "+testSecret+"\n", 0o600)
	b, err := ReadSecret("psk_file", path)
	if err != nil || string(b) != testSecret {
		t.Fatalf("ReadSecret = %q, %v", b, err)
	}
}

func TestReadSecretRefusesGroupOrOtherBits(t *testing.T) {
	for _, perm := range []os.FileMode{0o640, 0o604, 0o610, 0o601} {
		wantSecretErr(t, writeSecret(t, testSecret, perm), fmt.Sprintf("mode %04o allows group/other access; chmod 600", perm))
	}
}

func TestReadSecretRefusesSymlink(t *testing.T) {
	target := writeSecret(t, testSecret, 0o600)
	link := filepath.Join(t.TempDir(), "link.psk")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	wantSecretErr(t, link, "is a symbolic link")
}

func TestReadSecretRefusesNonRegular(t *testing.T) {
	wantSecretErr(t, t.TempDir(), "is not a regular file but a directory")
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Without O_NONBLOCK the open would wait for a writer forever.
	wantSecretErr(t, fifo, "is not a regular file but a named pipe")
}

func TestReadSecretRefusesOversizedFile(t *testing.T) {
	path := writeSecret(t, strings.Repeat("k", MaxSecretSize+1), 0o600)
	wantSecretErr(t, path, "is 4097 bytes, more than the 4096 a secret file may have")
}

func TestReadSecretRefusesEmptyAndMissing(t *testing.T) {
	wantSecretErr(t, writeSecret(t, " \n", 0o600), "is empty")
	wantSecretErr(t, filepath.Join(t.TempDir(), "none"), "no such file or directory")
}

func TestReadSecretRefusesOtherOwner(t *testing.T) {
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
	err = secretFileOK(fi, os.Geteuid()+1)
	if err == nil || !strings.Contains(err.Error(), "is owned by uid") {
		t.Fatalf("secretFileOK with another euid: %v", err)
	}
}

// check-config (Load) refuses what the daemon would refuse.
func TestLoadRefusesSymlinkedSecret(t *testing.T) {
	dir := t.TempDir()
	target := writeSecret(t, "c2VjcmV0LWtleS1tYXRlcmlhbA==", 0o600)
	key := filepath.Join(dir, "t1.key")
	if err := os.Symlink(target, key); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "cgwd.yaml")
	if err := os.WriteFile(cfgPath, []byte(strings.ReplaceAll(goodYAML, "/KEYFILE", key)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(cfgPath)
	want := "vpn[0].tunnels[0].wireguard.private_key_file: " + key + ": is a symbolic link"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("want %q, got %v", want, err)
	}
}

// check-config refuses secret files whose content run would refuse, and
// -skip-secrets still refuses a relative path.
func TestLoadChecksSecretContent(t *testing.T) {
	const key = "c2VjcmV0LWtleS1tYXRlcmlhbC1mb3ItYS10ZXN0ISE=" // 32 bytes
	cases := []struct {
		name, psk, wgKey, want string
	}{
		{"empty psk", "\n", key, "vpn[0].tunnels[1].ipsec.psk_file: PSK: is empty"},
		{"short psk", "s3cr3t7", key, "vpn[0].tunnels[1].ipsec.psk_file: PSK: the key is 7 characters long; AWS pre-shared keys are 8 to 64"},
		{"long psk", strings.Repeat("k", 65), key, "vpn[0].tunnels[1].ipsec.psk_file: PSK: the key is 65 characters long; AWS pre-shared keys are 8 to 64"},
		{"key not base64", testSecret, testSecret, "vpn[0].tunnels[0].wireguard.private_key_file: KEY: is not a WireGuard private key (base64 of 32 bytes, as `wg genkey` prints)"},
		{"key 16 bytes", testSecret, "c2VjcmV0LWtleS1tYXRlcmlhbA==", "vpn[0].tunnels[0].wireguard.private_key_file: KEY: is not a WireGuard private key (base64 of 32 bytes, as `wg genkey` prints)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			psk, wgKey := writeSecret(t, tc.psk, 0o600), writeSecret(t, tc.wgKey, 0o600)
			yaml := strings.Replace(strings.Replace(goodYAML, "private_key_file: /KEYFILE", "private_key_file: "+wgKey, 1), "psk_file: /KEYFILE", "psk_file: "+psk, 1)
			cfgPath := filepath.Join(t.TempDir(), "cgwd.yaml")
			if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
				t.Fatal(err)
			}
			want := strings.NewReplacer("PSK", psk, "KEY", wgKey).Replace(tc.want)
			_, err := Load(cfgPath)
			if err == nil || !strings.Contains(err.Error()+"\n", want+"\n") {
				t.Fatalf("want %q, got %v", want, err)
			}
			if strings.Contains(err.Error(), testSecret) || strings.Contains(err.Error(), "s3cr3t7") {
				t.Fatalf("error leaks the secret: %v", err)
			}
			if _, err := LoadSkipSecrets(cfgPath); err != nil {
				t.Fatalf("-skip-secrets checked the content: %v", err)
			}
		})
	}
	cfgPath := filepath.Join(t.TempDir(), "cgwd.yaml")
	if err := os.WriteFile(cfgPath, []byte(strings.Replace(goodYAML, "psk_file: /KEYFILE", "psk_file: t2.psk", 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	want := `vpn[0].tunnels[1].ipsec.psk_file: "t2.psk" must be an absolute path`
	if _, err := LoadSkipSecrets(cfgPath); err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("-skip-secrets: want %q, got %v", want, err)
	}
}
