package wireguard

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn"
	"golang.zx2c4.com/wireguard/conn/bindtest"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/cgwd/cgwd/pkg/tunnel"
)

// Two key pairs made with `wg genkey | tee /dev/stderr | wg pubkey`, for tests only.
const (
	privA = "0Mu53YPuYZv+l20zRNUcTV/Vkrzpp4S80xFrnK9/C2o="
	pubA  = "ZZjodqTWDV8L7pKZPPrQwsEdMLTgIa0oJx2BaRF4hiI="
	privB = "+Ot/HqZgkfWqe5ThoEvjlaWAB8GrqU5bjkyN6mkc41g="
	pubB  = "Trwh8F9Z7WEdrHuw6+FeEQwtK94T879ewlhluPYj6yY="
)

func hexKey(t *testing.T, b64 string) string {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// testTunnel is a tunnel whose device runs on an in-memory TUN and bind,
// set up as Start would (Start itself needs root for the TUN netdev).
func testTunnel(t *testing.T, name, priv, peerPub string, endpointPort uint16, bind conn.Bind) (*Tunnel, *tuntest.ChannelTUN) {
	t.Helper()
	tn, err := New(Config{
		Name: name, MTU: 1420,
		Inside:     netip.MustParsePrefix("169.254.20.2/30"),
		PeerInside: netip.MustParseAddr("169.254.20.1"),
		Endpoint:   netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), endpointPort),
		ListenPort: 51820, PrivateKey: []byte(priv), PeerPublicKey: peerPub,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctun := tuntest.NewChannelTUN()
	dev, err := tn.newDevice(ctun.TUN(), bind)
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Up(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tn.mu.Lock()
	tn.dev, tn.cancel = dev, cancel
	tn.mu.Unlock()
	go tn.run(ctx, nil, dev) // no UAPI socket to serve
	t.Cleanup(func() { tn.Close() })
	return tn, ctun
}

func TestNewTakesAndClearsTheKey(t *testing.T) {
	key := []byte(privA + "\n")
	if _, err := New(Config{Name: "wg0", PrivateKey: key, PeerPublicKey: pubB}); err != nil {
		t.Fatal(err)
	}
	if !allZero(key) {
		t.Fatal("New left the caller's copy of the private key in place")
	}
	bad := []byte("bm90LWEta2V5")
	_, err := New(Config{Name: "wg0", PrivateKey: bad, PeerPublicKey: pubB})
	if err == nil || strings.Contains(err.Error(), "bm90") || !allZero(bad) {
		t.Fatalf("bad key: err %v, slice %q", err, bad)
	}
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// A connected pair of tunnels: Status reads the real handshake time and
// counters, and Close wipes the private key from the tunnel and the device.
func TestStatusAndCloseWithRealHandshake(t *testing.T) {
	binds := bindtest.NewChannelBinds()
	a, tunA := testTunnel(t, "wga", privA, pubB, 1, binds[0]) // bindtest: bind 0 sends to port 1
	_, tunB := testTunnel(t, "wgb", privB, pubA, 2, binds[1])
	ping := tuntest.Ping(netip.MustParseAddr("169.254.20.1"), netip.MustParseAddr("169.254.20.2"))
	deadline := time.Now().Add(10 * time.Second)
	got := false
	for !got && time.Now().Before(deadline) {
		tunA.Outbound <- ping
		select {
		case p := <-tunB.Inbound:
			got = bytes.Equal(p, ping)
		case <-time.After(200 * time.Millisecond):
		}
	}
	if !got {
		t.Fatal("no packet crossed the in-memory tunnel pair")
	}
	st := a.Status()
	if st.State != tunnel.StateUp || st.LastHandshake.IsZero() || st.TxBytes == 0 || st.RxBytes == 0 {
		t.Fatalf("status after a handshake: state %s, handshake %v, rx %d, tx %d", st.State, st.LastHandshake, st.RxBytes, st.TxBytes)
	}

	a.mu.Lock()
	dev := a.dev
	a.mu.Unlock()
	before, _ := dev.IpcGet()
	if !strings.Contains(before, "private_key="+hexKey(t, privA)) {
		t.Fatal("the device does not hold the tunnel's key")
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if !allZero(a.key[:]) {
		t.Fatal("Close left the tunnel's private key in place")
	}
	after, _ := dev.IpcGet() // still answers once closed
	if strings.Contains(after, "private_key=") {
		t.Fatal("Close left the private key in the wireguard-go device")
	}
	if err := a.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Start after Close: %v", err)
	}
}

// wireguard-go can only report peer counters in its UAPI dump, which begins
// with the private key. Status must parse that dump where wireguard-go
// wrote it: any allocation beyond wireguard-go's own is a copy (IpcGet's
// string, a scanner's buffer, a string per line) that holds the key and can
// never be wiped.
func TestStatusCopiesNothingOutOfTheDevice(t *testing.T) {
	binds := bindtest.NewChannelBinds()
	a, _ := testTunnel(t, "wga", privA, pubB, 1, binds[0])
	a.mu.Lock()
	dev := a.dev
	a.mu.Unlock()
	own := minAllocs(func() { dev.IpcGetOperation(io.Discard) })
	status := minAllocs(func() { a.Status() })
	if status > own {
		t.Fatalf("Status allocates %.0f times per call, wireguard-go's dump alone %.0f: Status copies the dump, private key included", status, own)
	}
}

// minAllocs is the fewest allocations f made in one of 1000 calls:
// wireguard-go and fmt take buffers from sync.Pools, which drop them at
// random under the race detector, so single calls vary.
func minAllocs(f func()) float64 {
	m := testing.AllocsPerRun(1, f)
	for range 999 {
		m = min(m, testing.AllocsPerRun(1, f))
	}
	return m
}

// The parser keeps no byte of a line it does not want, wherever the writes
// split the dump.
func TestStatsParserKeepsNoKeyBytes(t *testing.T) {
	key := hexKey(t, privA)
	dump := "private_key=" + key + "\nlisten_port=51820\npublic_key=" + hexKey(t, pubB) +
		"\nlast_handshake_time_sec=1700000000\nlast_handshake_time_nsec=250\ntx_bytes=1234\nrx_bytes=98765\nallowed_ip=0.0.0.0/0\n"
	for size := 1; size <= len(dump); size++ {
		var p statsParser
		for off := 0; off < len(dump); off += size {
			p.Write([]byte(dump[off:min(off+size, len(dump))]))
			for _, kept := range [][]byte{p.name[:p.nameLen], p.val[:p.valLen]} {
				if len(kept) >= 4 && strings.Contains(key, string(kept)) {
					t.Fatalf("write size %d: parser holds %q, part of the private key", size, kept)
				}
			}
		}
		var st tunnel.Status
		p.result(&st)
		if st.RxBytes != 98765 || st.TxBytes != 1234 || !st.LastHandshake.Equal(time.Unix(1700000000, 250)) {
			t.Fatalf("write size %d: parsed rx %d tx %d handshake %v", size, st.RxBytes, st.TxBytes, st.LastHandshake)
		}
	}
}
