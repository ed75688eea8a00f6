package netns

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/ike"
	"github.com/cgwd/cgwd/pkg/tunnel"
	"github.com/cgwd/cgwd/pkg/tunnel/ipsec"
	"github.com/cgwd/cgwd/test/netns/labkit"
)

// c2cPair builds two namespaces joined by a veth, private to the
// cgwd-to-cgwd tests (not lab names): ipc-a 10.97.0.1, ipc-b 10.97.0.2.
func c2cPair(t testing.TB) { labkit.Pair(t, "ipc-a", "ipc-b", "v0", "10.97.0.1/24", "10.97.0.2/24") }

// startTunnelInNS starts tn with its netdev and sockets created inside namespace ns.
func startTunnelInNS(ctx context.Context, tn *ipsec.Tunnel, ns string) error {
	return labkit.Do(ns, func() error { return tn.Start(ctx) })
}

func c2cTunnel(t testing.TB, name string, local, remote, inside string, initiate bool, ikeP, espP string, opts ...func(*ipsec.Config)) *ipsec.Tunnel {
	t.Helper()
	ip, err := ike.ParseProposal(ikeP, true)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := ike.ParseProposal(espP, false)
	if err != nil {
		t.Fatal(err)
	}
	p := netip.MustParsePrefix(inside)
	cfg := ipsec.Config{
		Name: name, MTU: 1420, Inside: p,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
		IKE: ike.Config{Local: netip.MustParseAddr(local), Remote: netip.MustParseAddr(remote), PSK: []byte("c2c-lab-psk"),
			IKEProposals: []ike.Proposal{ip}, ESPProposals: []ike.Proposal{ep}, Initiate: initiate, ForceEncap: true},
	}
	for _, o := range opts {
		o(&cfg)
	}
	tn, err := ipsec.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return tn
}

// c2cUp starts a tunnel in each namespace (a initiates unless aResponds) and
// waits until both are up; it returns how long establishment took.
func c2cUp(t testing.TB, ctx context.Context, aInitiates bool, ikeP, espP string, opts ...func(*ipsec.Config)) (a, b *ipsec.Tunnel, took time.Duration) {
	t.Helper()
	a = c2cTunnel(t, "ipc-ta", "10.97.0.1", "10.97.0.2", "169.254.77.1/30", aInitiates, ikeP, espP, opts...)
	b = c2cTunnel(t, "ipc-tb", "10.97.0.2", "10.97.0.1", "169.254.77.2/30", !aInitiates, ikeP, espP, opts...)
	// The responder first, so the initiator's first message is answered.
	first, second, nsFirst, nsSecond := b, a, "ipc-b", "ipc-a"
	if !aInitiates {
		first, second, nsFirst, nsSecond = a, b, "ipc-a", "ipc-b"
	}
	if err := startTunnelInNS(ctx, first, nsFirst); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { first.Close() })
	start := time.Now()
	if err := startTunnelInNS(ctx, second, nsSecond); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { second.Close() })
	// Polled every millisecond: the time it takes is the measurement.
	labkit.Eventually(t, 10*time.Second, "both ends up", func() error {
		if a.Status().State != tunnel.StateUp || b.Status().State != tunnel.StateUp {
			return fmt.Errorf("a=%+v b=%+v", a.Details(), b.Details())
		}
		return nil
	}, labkit.Every(time.Millisecond))
	return a, b, time.Since(start)
}

// c2cIperf prints iperf3 throughput from ipc-a to dst in ipc-b (for bench-ipsec.sh).
func c2cIperf(t *testing.T, dst string) {
	t.Helper()
	srv := labkit.Command("ipc-b", "iperf3", "-s", "-1")
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { srv.Process.Kill(); srv.Wait() }()
	var out []byte
	err := labkit.Poll(5*time.Second, func() (err error) { // until the server listens
		out, err = labkit.Command("ipc-a", "iperf3", "-c", dst, "-t", "5", "-f", "m").CombinedOutput()
		return err
	})
	if err != nil {
		t.Fatalf("iperf3: %v\n%s", err, out)
	}
	for _, l := range strings.Split(string(out), "\n") {
		if strings.Contains(l, "receiver") {
			t.Logf("BENCH cgwd-ipsec-both-ends aes256gcm16: %s", strings.Join(strings.Fields(l)[6:8], " "))
		}
	}
}

// TestIPsecCgwdToCgwd runs cgwd's IPsec tunnel on both ends, in both roles.
func TestIPsecCgwdToCgwd(t *testing.T) {
	labkit.Require(t)
	for _, aInitiates := range []bool{true, false} {
		t.Run(fmt.Sprintf("aInitiates=%v", aInitiates), func(t *testing.T) {
			c2cPair(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			a, b, took := c2cUp(t, ctx, aInitiates, ike.DefaultIKEProposal, ike.DefaultESPProposal)
			t.Logf("BENCH cgwd-ike-establish: %v (IKE_SA_INIT + IKE_AUTH + Child SA)", took.Round(100*time.Microsecond))
			for _, p := range [][2]string{{"ipc-a", "169.254.77.2"}, {"ipc-b", "169.254.77.1"}} {
				if out, err := labkit.Ping(p[0], p[1], 3); err != nil {
					t.Errorf("ping %s from %s: %v\n%s", p[1], p[0], err, out)
				}
			}
			da, db := a.Details(), b.Details()
			if (da.Role == "initiator") != aInitiates || (db.Role == "initiator") == aInitiates {
				t.Errorf("roles: a %s, b %s", da.Role, db.Role)
			}
			if da.RxPackets < 3 || db.RxPackets < 3 || da.ChildInSPI != db.ChildOutSPI {
				t.Errorf("a %+v\nb %+v", da, db)
			}
			if os.Getenv("CGWD_IPSEC_BENCH") != "" && aInitiates {
				c2cIperf(t, "169.254.77.2")
			}
		})
	}
}

// The rekey gate is an nftables table in a namespace that drops the IKE
// CREATE_CHILD_SA requests (chain reqs) and responses (chain resps) sent
// over UDP 4500, optionally only those matching an extra expression.
// Offsets count from the UDP header: the non-ESP marker (zero) at bit 64,
// the IKE exchange type at bit 240 and the flags, with the response bit
// 0x20, at bit 248. ESP passes.
func rekeyGateRules(match string) string {
	rule := "udp dport 4500 " + match + " @th,64,32 0 @th,240,8 36 @th,248,8 & 0x20 == "
	return `table ip c2cgate {
  chain reqs {
    type filter hook output priority 0; policy accept;
    ` + rule + `0 counter drop
  }
  chain resps {
    type filter hook output priority 1; policy accept;
    ` + rule + `0x20 counter drop
  }
}
`
}

// gateCount is the packets the rekey gate's chain in ns dropped.
func gateCount(t *testing.T, ns, chain string) int {
	t.Helper()
	return labkit.NftCounted(t, labkit.Nft(t, ns, "list", "chain", "ip", "c2cgate", chain), "counter")
}

// gateOpen waits until the gate's chain in every one of nss dropped a packet;
// it polls at 20 ms, as the gate holds IKE exchanges back meanwhile.
func gateOpen(t *testing.T, timeout time.Duration, what, chain string, nss ...string) {
	t.Helper()
	labkit.Eventually(t, timeout, what, func() error {
		for _, ns := range nss {
			if n := gateCount(t, ns, chain); n == 0 {
				return fmt.Errorf("nothing in chain %s of %s yet", chain, ns)
			}
		}
		return nil
	}, labkit.Every(20*time.Millisecond))
}

// gateEnd is one end's namespace and what its rekey gate matches.
type gateEnd struct{ ns, match string }

// rekeyGate makes the next CREATE_CHILD_SA of both ends a textbook
// collision: requests are held back until both ends sent theirs (trigger,
// if any, runs once the first end did), then pass while the responses are
// held until each end answered the other's, then everything passes (the
// retransmissions get the cached answers).
func rekeyGate(t *testing.T, ends [2]gateEnd, trigger func()) {
	t.Helper()
	for _, e := range ends {
		labkit.NftScript(t, e.ns, rekeyGateRules(e.match))
	}
	defer func() {
		for _, e := range ends {
			labkit.InNS(e.ns, "nft", "delete", "table", "ip", "c2cgate")
		}
	}()
	gateOpen(t, 60*time.Second, "the first end sending a rekey request", "reqs", ends[0].ns)
	if trigger != nil {
		trigger()
	}
	gateOpen(t, 20*time.Second, "both ends sending a rekey request", "reqs", ends[1].ns)
	for _, e := range ends {
		labkit.Nft(t, e.ns, "flush", "chain", "ip", "c2cgate", "reqs")
	}
	gateOpen(t, 30*time.Second, "both ends answering the other's rekey", "resps", ends[0].ns, ends[1].ns)
}

func c2cCollide(t *testing.T) { rekeyGate(t, [2]gateEnd{{"ipc-a", ""}, {"ipc-b", ""}}, nil) }

// c2cSame reports whether both ends use the same IKE SA and the same Child
// SA (a's inbound SPI is b's outbound one and back), as cgwd status shows.
func c2cSame(a, b *ipsec.Tunnel) bool {
	sa, sb := a.Status().IPsec, b.Status().IPsec
	if sa == nil || sb == nil || sa.ChildSPIs == "" || sa.IKESPIs == "" {
		return false
	}
	in, out, _ := strings.Cut(sa.ChildSPIs, "/")
	return sb.ChildSPIs == out+"/"+in && sa.IKESPIs == sb.IKESPIs
}

// TestIPsecC2CSimultaneousRekey rekeys the same SA from both cgwd ends at
// once (identical lifetimes, no fuzz; an nftables gate makes the two
// CREATE_CHILD_SA exchanges cross every time) under a 100 packets/s ping:
// no packet may be lost, the nonces must pick the same survivor on both
// ends, and both must end on the same SAs.
func TestIPsecC2CSimultaneousRekey(t *testing.T) {
	labkit.Require(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed")
	}
	for _, tc := range []struct {
		name       string
		ike        bool
		collisions int
		pings      int // about 125 a second, outlasting the collisions
	}{
		{"child", false, 2, 4750},
		{"ike", true, 1, 2750},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c2cPair(t)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			logs := map[string]*labkit.Buffer{"ipc-ta": {}, "ipc-tb": {}}
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("log of ipc-ta:\n%s\nlog of ipc-tb:\n%s", logs["ipc-ta"], logs["ipc-tb"])
				}
			})
			a, b, _ := c2cUp(t, ctx, true, ike.DefaultIKEProposal, ike.DefaultESPProposal, func(c *ipsec.Config) {
				c.Logger = slog.New(slog.NewTextHandler(logs[c.Name], nil))
				c.IKE.IKELifetime, c.IKE.ChildLifetime = time.Hour, time.Hour
				if tc.ike {
					c.IKE.IKELifetime = 20 * time.Second
				} else {
					c.IKE.ChildLifetime = 20 * time.Second
				}
				c.IKE.RekeyMargin, c.IKE.RekeyFuzz = 10*time.Second, 0 // rekey 10 s after establishment, on both ends
				c.IKE.DPDDelay, c.IKE.DPDTimeout = 2*time.Minute, time.Minute
			})
			first := a.Status().IPsec
			ping := labkit.StartPing(t, "ipc-a", "-D", "-O", "-i", "0.008", "-c", strconv.Itoa(tc.pings),
				"-w", strconv.Itoa(tc.pings/100+20), "169.254.77.2")
			kind := "Child SA"
			if tc.ike {
				kind = "IKE SA"
			}
			for i := 1; i <= tc.collisions; i++ {
				c2cCollide(t)
				labkit.Eventually(t, 20*time.Second, fmt.Sprintf("collision %d settled on both ends", i), func() error {
					// Both exchanges ended: one end won, the other lost.
					all := logs["ipc-ta"].String() + logs["ipc-tb"].String()
					won, lost := strings.Count(all, kind+" rekey collision won"), strings.Count(all, kind+" rekey collision lost")
					if won != i || lost != i {
						return fmt.Errorf("%d won, %d lost", won, lost)
					}
					sa, sb := a.Status().IPsec, b.Status().IPsec
					n := func(s *tunnel.IPsecStatus) uint64 {
						if tc.ike {
							return s.IKERekeys
						}
						return s.ChildRekeys
					}
					if n(sa) != uint64(i) || n(sb) != uint64(i) || !c2cSame(a, b) {
						return fmt.Errorf("rekeys a %d, b %d; same SAs %v", n(sa), n(sb), c2cSame(a, b))
					}
					return nil
				}, labkit.Every(20*time.Millisecond))
				t.Logf("collision %d settled: a %s, b %s", i, a.Status().IPsec.ChildSPIs, b.Status().IPsec.ChildSPIs)
			}
			select {
			case <-ping.Done():
				out, _ := ping.Wait()
				t.Fatalf("ping ended before the last collision settled:\n%s", out)
			default:
			}
			pingOut, err := ping.Wait()
			if err != nil {
				t.Errorf("ping: %v", err)
			}
			m := regexp.MustCompile(`(\d+) packets transmitted, (\d+) received, .*time (\d+)ms`).FindStringSubmatch(pingOut)
			if m == nil || m[1] != strconv.Itoa(tc.pings) || m[2] != m[1] {
				for _, l := range strings.Split(pingOut, "\n") {
					if strings.Contains(l, "no answer") {
						t.Log(l)
					}
				}
				t.Fatalf("packets lost across simultaneous rekeys:\n%s", pingOut)
			}
			ms, _ := strconv.Atoi(m[3])
			rate := float64(tc.pings) / (float64(ms) / 1000)
			t.Logf("ping: %s sent at %.0f/s, %s received", m[1], rate, m[2])
			if rate < 100 {
				t.Errorf("ping sent only %.0f packets/s, want at least 100", rate)
			}
			all := logs["ipc-ta"].String() + logs["ipc-tb"].String()
			won, lost := strings.Count(all, kind+" rekey collision won"), strings.Count(all, kind+" rekey collision lost")
			if won != tc.collisions || lost != tc.collisions {
				t.Fatalf("want %d collisions settled by the nonces (one end won, one lost each), got %d won, %d lost", tc.collisions, won, lost)
			}
			sa, sb := a.Status().IPsec, b.Status().IPsec
			if !c2cSame(a, b) {
				t.Fatalf("ends on different SAs: a %+v\nb %+v", sa, sb)
			}
			if tc.ike && (sa.IKESPIs == first.IKESPIs || sa.ChildSPIs != first.ChildSPIs) {
				t.Fatalf("IKE rekey: IKE SPIs %s -> %s, Child SPIs %s -> %s", first.IKESPIs, sa.IKESPIs, first.ChildSPIs, sa.ChildSPIs)
			}
			if !tc.ike && sa.ChildSPIs == first.ChildSPIs {
				t.Fatalf("Child SA not rekeyed: %s", sa.ChildSPIs)
			}
			for _, st := range []*tunnel.IPsecStatus{sa, sb} {
				if st.IKEState != "established" || st.ESPDropped["auth"] != 0 || st.ESPDropped["replay"] != 0 {
					t.Errorf("after the collisions: %+v", st)
				}
			}
			t.Logf("a: ike %s child %s (rekeys: child %d, ike %d)", sa.IKESPIs, sa.ChildSPIs, sa.ChildRekeys, sa.IKERekeys)
			t.Logf("b: ike %s child %s (rekeys: child %d, ike %d)", sb.IKESPIs, sb.ChildSPIs, sb.ChildRekeys, sb.IKERekeys)
		})
	}
}

// TestIPsecStrongSwanRekeyCollision rekeys tunnel 1's Child SA from cgwd
// (its timer) and from strongSwan (swanctl --rekey) at once, the rekey
// gate making the two exchanges cross, under a ping of about 125 packets/s:
// no packet may be lost and both ends must end on the same Child SA. With
// AWS's proposal lists strongSwan's first KE group is not cgwd's, so cgwd
// answers INVALID_KE_PAYLOAD and only its own rekey completes; with the
// same group first both complete and the nonces decide.
func TestIPsecStrongSwanRekeyCollision(t *testing.T) {
	labkit.RequireStrongSwan(t)
	if _, err := exec.LookPath("nft"); err != nil {
		t.Skip("nft not installed")
	}
	labkit.UpIPsec(t)
	for _, tc := range []struct {
		name     string
		espProps string // strongSwan's, tunnel 1
		textbook bool
	}{
		{"aws-proposals", "", false},
		{"same-group-first", "aes256gcm16-ecp384", true},
	} {
		t.Run(tc.name, func(t *testing.T) { strongSwanCollision(t, tc.espProps, tc.textbook) })
	}
}

func strongSwanCollision(t *testing.T, espProps string, textbook bool) {
	charon := labkit.Charon(1)
	var env []string
	if espProps != "" {
		env = []string{"AWS_ESP_PROPOSALS=" + espProps}
		defer charon.Configure(t)
	}
	charon.Configure(t, env...)
	t.Cleanup(func() {
		if t.Failed() {
			var l []string
			for _, line := range strings.Split(labkit.Log(), "\n") {
				if strings.Contains(line, "tunnel=cgw-t1") && strings.Contains(line, "msg=") {
					l = append(l, line)
				}
			}
			t.Logf("cgwd log of cgw-t1:\n%s", strings.Join(l, "\n"))
			if b, err := os.ReadFile(charon.LogFile()); err == nil {
				var ls []string
				for _, l := range strings.Split(string(b), "\n") {
					if strings.Contains(l, "[IKE]") || strings.Contains(l, "[ENC]") {
						ls = append(ls, l)
					}
				}
				t.Logf("charon 1 log (IKE, end):\n%s", strings.Join(ls[max(0, len(ls)-60):], "\n"))
			}
		}
	})
	// cgwd rekeys the Child SA 8 s after establishment; strongSwan's own
	// timer stays at an hour, swanctl starts its rekey.
	labkit.RestartIPsec(t, "child_lifetime: 30s;rekey_margin: 22s;rekey_fuzz_percent: 0")
	ipsecTunnelsUp(t, 20*time.Second)
	const pings = 2500 // 20 s: the rekey and the settling, with time to spare
	ping := labkit.StartPing(t, labkit.CGW, "-q", "-i", "0.008", "-c", strconv.Itoa(pings),
		"-w", strconv.Itoa(pings/100+20), labkit.T1Peer)
	// swanctl waits for the rekey, which the gate holds up: run it aside.
	rctx, rcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer rcancel()
	swanctl := charon.SwanctlCmd(rctx, "--rekey", "--child", "aws")
	var swanOut bytes.Buffer
	swanctl.Stdout, swanctl.Stderr = &swanOut, &swanOut
	swanDone := make(chan error, 1)
	rekeyGate(t, [2]gateEnd{{labkit.CGW, "ip daddr " + labkit.AWSOut1}, {charon.NS(), ""}}, func() {
		go func() { swanDone <- swanctl.Run() }()
	})
	defer func() {
		if err := <-swanDone; err != nil {
			t.Logf("swanctl --rekey: %v %s", err, swanOut.String())
		}
	}()
	if textbook {
		re := regexp.MustCompile(`msg="Child SA rekey collision (won|lost)[^"]*".*tunnel=cgw-t1 `)
		labkit.Eventually(t, 30*time.Second, "cgwd settling the collision by the nonces", func() error {
			if !re.MatchString(labkit.Log()) {
				return fmt.Errorf("not logged")
			}
			return nil
		}, labkit.Every(20*time.Millisecond))
		t.Logf("cgwd: %s", re.FindString(labkit.Log()))
	}
	// Both ends end with one installed Child SA, the same one.
	var spis, sas string
	labkit.Eventually(t, 30*time.Second, "one Child SA on both ends", func() error {
		for _, tn := range labkit.Status(t).Tunnels {
			if tn.Name == labkit.T1 && tn.IPsec != nil {
				spis = tn.IPsec.ChildSPIs
			}
		}
		in, out, _ := strings.Cut(spis, "/")
		sas = charon.SAs(t)
		if strings.Count(sas, "INSTALLED") != 1 || !strings.Contains(sas, "in  "+out) || !strings.Contains(sas, "out "+in) {
			return fmt.Errorf("cgwd's Child SA %s, strongSwan's:\n%s", spis, sas)
		}
		return nil
	}, labkit.Every(20*time.Millisecond))
	t.Logf("cgwd cgw-t1 Child SA %s; strongSwan:\n%s", spis, sas)
	pingOut, err := ping.Wait()
	m := regexp.MustCompile(`(\d+) packets transmitted, (\d+) received`).FindStringSubmatch(pingOut)
	if err != nil || m == nil || m[1] != strconv.Itoa(pings) || m[2] != m[1] {
		t.Fatalf("packets lost across the collision: %v\n%s", err, pingOut)
	}
	t.Logf("ping: %s sent, %s received", m[1], m[2])
	if b, err := os.ReadFile(charon.LogFile()); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "collision") {
				t.Logf("strongSwan: %s", l)
			}
		}
	}
	if strings.Contains(labkit.Log(), "restarting IKE SA") {
		t.Fatal("cgwd restarted the IKE SA instead of settling the collision")
	}
}
