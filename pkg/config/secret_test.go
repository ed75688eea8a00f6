package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const testSecret = "s3cret-psk-value"

// writeKey writes a private (0600) secret file in a new temporary directory.
func writeKey(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "t1.psk")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// check-config (Load) refuses what the daemon would refuse.
func TestLoadRefusesSymlinkedSecret(t *testing.T) {
	dir := t.TempDir()
	target := writeKey(t, "c2VjcmV0LWtleS1tYXRlcmlhbA==")
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
			psk, wgKey := writeKey(t, tc.psk), writeKey(t, tc.wgKey)
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
