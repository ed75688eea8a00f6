package netns

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/tunnel"
)

var ipsecSh = filepath.Join(root, "test/netns/ipsec.sh")

// requireStrongSwan skips when strongSwan's charon is not installed.
func requireStrongSwan(t *testing.T) {
	t.Helper()
	requireLab(t)
	for _, f := range []string{"/usr/lib/ipsec/charon", "/usr/sbin/swanctl"} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("strongSwan not installed (%s): make deps installs it", f)
		}
	}
}

// ipsecLab runs lab.sh (TUNNEL=ipsec) or ipsec.sh with extra environment.
func ipsecRun(t *testing.T, script string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(script, args...)
	cmd.Env = append(append(os.Environ(), "LAB_STATE="+labState, "TUNNEL=ipsec"), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(script), strings.Join(args, " "), err, out)
	}
	return string(out)
}

// restartCgwd rewrites cgwd.yaml with extra ipsec: keys (";"-separated) and restarts cgwd.
func restartCgwd(t *testing.T, opts string) {
	t.Helper()
	ipsecRun(t, labSh, nil, "stop-cgwd")
	ipsecRun(t, ipsecSh, []string{"CGWD_IPSEC_OPTS=" + opts}, "cgwd-yaml")
	ipsecRun(t, labSh, nil, "start-cgwd")
}

func cgwdLog() string {
	b, _ := os.ReadFile(labState + "/logs/cgwd.log")
	return string(b)
}

// tunnelsUp waits until cgwd reports the named tunnels up.
func tunnelsUp(t *testing.T, timeout time.Duration, names ...string) {
	t.Helper()
	eventually(t, timeout, strings.Join(names, ", ")+" up", func() error {
		up := map[string]bool{}
		for _, tn := range status(t).Tunnels {
			up[tn.Name] = tn.State == tunnel.StateUp && tn.Kind == tunnel.KindIPsec
		}
		for _, n := range names {
			if !up[n] {
				return fmt.Errorf("%s is not up", n)
			}
		}
		return nil
	})
}

func pingBoth(t *testing.T) {
	t.Helper()
	for _, p := range [][2]string{{"lab-cgw", "169.254.10.1"}, {"lab-cgw", "169.254.11.1"}, {"lab-aws", "169.254.10.2"}, {"lab-aws", "169.254.11.2"}} {
		if out, err := inNS(p[0], "ping", "-c", "3", "-i", "0.2", "-W", "2", p[1]); err != nil {
			t.Errorf("ping %s from %s: %v\n%s", p[1], p[0], err, out)
		}
	}
}

// charonSAs lists tunnel n's SAs as strongSwan sees them.
func charonSAs(t *testing.T, n int) string {
	return ipsecRun(t, ipsecSh, nil, "swanctl", strconv.Itoa(n), "--list-sas")
}

func tunnelRxTx(t *testing.T, name string) [2]uint64 {
	t.Helper()
	for _, tn := range status(t).Tunnels {
		if tn.Name == name {
			return [2]uint64{tn.RxBytes, tn.TxBytes}
		}
	}
	t.Fatalf("no tunnel %s", name)
	return [2]uint64{}
}

func TestIPsecLab(t *testing.T) {
	requireStrongSwan(t)
	ipsecRun(t, labSh, nil, "up")
	t.Cleanup(func() { lab(t, "down") })
	ipsecRun(t, labSh, nil, "start-cgwd")

	t.Run("CgwdInitiatesBothTunnelsToStrongSwan", func(t *testing.T) {
		tunnelsUp(t, 20*time.Second, "cgw-t1", "cgw-t2")
		pingBoth(t)
		for n := 1; n <= 2; n++ {
			sas := charonSAs(t, n)
			if !strings.Contains(sas, "ESTABLISHED") || !strings.Contains(sas, "INSTALLED") || !strings.Contains(sas, "AES_GCM_16-256") {
				t.Errorf("strongSwan %d does not show the SAs:\n%s", n, sas)
			}
		}
		for _, tn := range status(t).Tunnels {
			if tn.RxBytes == 0 || tn.TxBytes == 0 || tn.LastHandshake.IsZero() {
				t.Errorf("%s: counters rx=%d tx=%d handshake=%v", tn.Name, tn.RxBytes, tn.TxBytes, tn.LastHandshake)
			}
		}
		if !strings.Contains(cgwdLog(), "role=initiator") {
			t.Error("cgwd did not log itself as initiator")
		}
	})

	t.Run("StatusAndMetricsShowTheSAs", func(t *testing.T) {
		for _, tn := range status(t).Tunnels {
			ip := tn.IPsec
			if ip == nil || ip.IKEState != "established" || ip.IKESPIs == "" || ip.ChildSPIs == "" || ip.ChildSuite == "" || ip.ChildRekeyDue.IsZero() {
				t.Errorf("%s: ipsec status %+v", tn.Name, ip)
			}
		}
		body, err := httpGetInNS("lab-cgw", "http://127.0.0.1:9477/metrics")
		if err != nil {
			t.Fatal(err)
		}
		for _, tn := range []string{"cgw-t1", "cgw-t2"} {
			labels := fmt.Sprintf(`{tunnel="%s",vpn="vpn1"}`, tn)
			if v, ok := metricValue(body, "cgwd_ipsec_ike_sa_up"+labels); !ok || v != 1 {
				t.Errorf("cgwd_ipsec_ike_sa_up%s = %v (found %v)", labels, v, ok)
			}
			if v, ok := metricValue(body, "cgwd_ipsec_ike_establish_seconds"+labels); !ok || v <= 0 {
				t.Errorf("cgwd_ipsec_ike_establish_seconds%s = %v (found %v)", labels, v, ok)
			}
		}
	})

	t.Run("BGPWithBIRDOverBothTunnels", func(t *testing.T) {
		eventually(t, 40*time.Second, "BIRD sees aws_t1 and aws_t2 Established over IPsec", func() error {
			for _, p := range []string{"aws_t1", "aws_t2"} {
				if !birdEstablished(t, p) {
					return fmt.Errorf("%s not Established", p)
				}
			}
			return nil
		})
	})

	t.Run("OnPremReachesVPCOverIPsec", func(t *testing.T) {
		// Host routes pin this one flow to tunnel 1 whatever BGP chose, so
		// the test asserts on the IPsec data path itself.
		for _, r := range [][]string{
			{"lab-cgw", "ip", "route", "replace", "10.200.0.10/32", "dev", "cgw-t1"},
			{"lab-aws", "ip", "route", "replace", "10.10.0.10/32", "via", "169.254.10.2", "dev", "aws-t1"},
		} {
			if out, err := inNS(r[0], r[1:]...); err != nil {
				t.Fatalf("%v: %v %s", r, err, out)
			}
		}
		t.Cleanup(func() {
			inNS("lab-cgw", "ip", "route", "del", "10.200.0.10/32")
			inNS("lab-aws", "ip", "route", "del", "10.10.0.10/32")
		})
		before := tunnelRxTx(t, "cgw-t1")
		if out, err := inNS("lab-onprem", "ping", "-c", "5", "-i", "0.2", "-W", "2", "10.200.0.10"); err != nil {
			t.Fatalf("ping lab-onprem -> lab-vpc: %v\n%s", err, out)
		}
		if after := tunnelRxTx(t, "cgw-t1"); after[0]-before[0] < 5*84 || after[1]-before[1] < 5*84 {
			t.Errorf("cgw-t1 counters moved by rx %d tx %d bytes, want >= 5 pings each way", after[0]-before[0], after[1]-before[1])
		}
	})

	t.Run("WrongPSKIsAClearErrorAndRecovers", func(t *testing.T) {
		ipsecRun(t, ipsecSh, []string{"AWS_PSK_OVERRIDE=not-the-cgwd-psk"}, "configure", "2")
		ipsecRun(t, ipsecSh, nil, "swanctl", "2", "--terminate", "--ike", "aws", "--timeout", "5")
		eventually(t, 20*time.Second, "AUTHENTICATION_FAILED in cgwd's log", func() error {
			if !regexp.MustCompile(`AUTHENTICATION_FAILED.*tunnel=cgw-t2`).MatchString(cgwdLog()) {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		for _, tn := range status(t).Tunnels {
			if tn.Name == "cgw-t2" && tn.State == tunnel.StateUp {
				t.Error("cgw-t2 up with the wrong PSK")
			}
		}
		if strings.Contains(cgwdLog(), "not-the-cgwd-psk") {
			t.Error("PSK in the log")
		}
		ipsecRun(t, ipsecSh, nil, "configure", "2")
		tunnelsUp(t, 40*time.Second, "cgw-t1", "cgw-t2") // cgwd retries by itself
	})

	t.Run("ProposalMismatchIsNoProposalChosen", func(t *testing.T) {
		ipsecRun(t, ipsecSh, []string{"AWS_IKE_PROPOSALS=aes128-sha1-modp2048"}, "configure", "2")
		ipsecRun(t, ipsecSh, nil, "swanctl", "2", "--terminate", "--ike", "aws", "--timeout", "5")
		eventually(t, 20*time.Second, "NO_PROPOSAL_CHOSEN in cgwd's log", func() error {
			if !regexp.MustCompile(`NO_PROPOSAL_CHOSEN.*tunnel=cgw-t2.*our_ike_proposals=aes256gcm16-prfsha384-ecp384`).MatchString(cgwdLog()) {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		ipsecRun(t, ipsecSh, nil, "configure", "2")
		tunnelsUp(t, 40*time.Second, "cgw-t1", "cgw-t2")
	})

	t.Run("StrongSwanInitiatesCgwdResponds", func(t *testing.T) {
		restartCgwd(t, "initiate: false")
		for n := 1; n <= 2; n++ {
			ipsecRun(t, ipsecSh, nil, "swanctl", strconv.Itoa(n), "--initiate", "--child", "aws", "--timeout", "10")
		}
		tunnelsUp(t, 10*time.Second, "cgw-t1", "cgw-t2")
		if strings.Contains(cgwdLog(), "role=initiator") || strings.Count(cgwdLog(), "role=responder") < 2 {
			t.Errorf("cgwd was not the responder on both tunnels:\n%s", cgwdLog())
		}
		pingBoth(t)
	})

	t.Run("EverySuiteNegotiates", func(t *testing.T) {
		for _, s := range []struct{ ike, esp, charonESP string }{
			{"aes128-sha1-modp2048", "aes128-sha1-modp2048", "AES_CBC-128/HMAC_SHA1_96"},
			{"aes256-sha256-modp3072", "aes256-sha256-modp3072", "AES_CBC-256/HMAC_SHA2_256_128"},
			{"aes128-sha384-modp4096", "aes128-sha384-modp4096", "AES_CBC-128/HMAC_SHA2_384_192"},
			{"aes256-sha512-ecp256", "aes256-sha512-ecp256", "AES_CBC-256/HMAC_SHA2_512_256"},
			{"aes128gcm16-prfsha256-ecp384", "aes128gcm16-ecp384", "AES_GCM_16-128"},
			{"aes256gcm16-prfsha512-ecp521", "aes256gcm16-ecp521", "AES_GCM_16-256"},
			{"aes256gcm16-prfsha1-ecp256", "aes256gcm16-ecp256", "AES_GCM_16-256"},
		} {
			t.Run(s.ike+"/"+s.esp, func(t *testing.T) {
				restartCgwd(t, fmt.Sprintf("ike_proposals: [%s];esp_proposals: [%s]", s.ike, s.esp))
				tunnelsUp(t, 20*time.Second, "cgw-t1", "cgw-t2")
				if out, err := inNS("lab-cgw", "ping", "-c", "2", "-i", "0.2", "-W", "2", "169.254.10.1"); err != nil {
					t.Errorf("ping: %v\n%s", err, out)
				}
				if sas := charonSAs(t, 1); !strings.Contains(sas, s.charonESP) {
					t.Errorf("strongSwan's Child SA is not %s:\n%s", s.charonESP, sas)
				}
			})
		}
	})

	t.Run("RekeyUnderLoadLosesNothing", func(t *testing.T) {
		// Tunnel 1: cgwd rekeys (Child SA at ~15 s and ~30 s, IKE SA at ~45 s).
		// Tunnel 2: strongSwan rekeys first (Child SA every ~12 s, IKE SA at ~25 s).
		ipsecRun(t, ipsecSh, []string{"AWS_CHILD_LIFETIME=12s", "AWS_IKE_LIFETIME=25s"}, "configure", "2")
		defer ipsecRun(t, ipsecSh, nil, "configure", "2")
		restartCgwd(t, "child_lifetime: 30s;ike_lifetime: 60s;rekey_margin: 15s;rekey_fuzz_percent: 0")
		tunnelsUp(t, 20*time.Second, "cgw-t1", "cgw-t2")
		// 100 packets/s (as fast as ping goes) on each tunnel, 4,800 packets:
		// 48 s or more. A count, not a deadline: ping -w alone stops at the
		// deadline with the last request still in flight and counts it lost.
		type result struct {
			out string
			err error
		}
		res := make(chan result, 2)
		for _, dst := range []string{"169.254.10.1", "169.254.11.1"} {
			go func() {
				out, err := inNS("lab-cgw", "ping", "-q", "-i", "0.01", "-c", "4800", "-w", "100", "-W", "1", dst)
				res <- result{out, err}
			}()
		}
		for range 2 {
			if r := <-res; r.err != nil || !strings.Contains(r.out, " 0% packet loss") {
				t.Errorf("loss during rekeys: %v\n%s", r.err, r.out)
			}
		}
		log := cgwdLog()
		for _, tn := range []string{"cgw-t1", "cgw-t2"} {
			if n := len(regexp.MustCompile(`msg="Child SA established".*tunnel=`+tn+` `).FindAllString(log, -1)); n < 3 {
				t.Errorf("Child SA of %s established %d times, want >= 3 (two rekeys)", tn, n)
			}
			if !regexp.MustCompile(`msg="IKE SA rekeyed".*tunnel=` + tn + ` `).MatchString(log) {
				t.Errorf("IKE SA of %s not rekeyed", tn)
			}
			if n := len(regexp.MustCompile(`msg="IKE SA established".*tunnel=`+tn+` `).FindAllString(log, -1)); n != 1 {
				t.Errorf("%s established %d times: re-established instead of rekeying", tn, n)
			}
		}
	})

	t.Run("DPDDeclaresDeadPeerAndRecovers", func(t *testing.T) {
		restartCgwd(t, "dpd_delay: 2s;dpd_timeout: 6s;initiate: true")
		tunnelsUp(t, 20*time.Second, "cgw-t1", "cgw-t2")
		drop := []string{"nft", "add", "table", "inet", "ipsecdrop"}
		if out, err := inNS("lab-aws-t1", drop...); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		inNS("lab-aws-t1", "nft", "add", "chain", "inet", "ipsecdrop", "in", "{ type filter hook input priority -10; }")
		inNS("lab-aws-t1", "nft", "add", "rule", "inet", "ipsecdrop", "in", "udp", "dport", "4500", "drop")
		start := time.Now()
		eventually(t, 20*time.Second, "cgwd declares the peer of cgw-t1 dead", func() error {
			if !regexp.MustCompile(`peer is dead.*tunnel=cgw-t1`).MatchString(cgwdLog()) {
				return fmt.Errorf("not yet")
			}
			return nil
		})
		t.Logf("peer declared dead %v after the drop (dpd_delay 2s, dpd_timeout 6s)", time.Since(start).Round(100*time.Millisecond))
		inNS("lab-aws-t1", "nft", "delete", "table", "inet", "ipsecdrop")
		tunnelsUp(t, 40*time.Second, "cgw-t1", "cgw-t2")
		if out, err := inNS("lab-cgw", "ping", "-c", "2", "-i", "0.2", "-W", "2", "169.254.10.1"); err != nil {
			t.Errorf("ping after recovery: %v\n%s", err, out)
		}
	})

	t.Run("CharonRestartIsReestablished", func(t *testing.T) {
		ipsecRun(t, ipsecSh, nil, "stop-charon", "1")
		ipsecRun(t, ipsecSh, nil, "start-charon", "1")
		eventually(t, 40*time.Second, "cgw-t1 re-established with the new charon", func() error {
			if !strings.Contains(charonSAs(t, 1), "INSTALLED") {
				return fmt.Errorf("no Child SA in charon")
			}
			if out, err := inNS("lab-cgw", "ping", "-c", "1", "-W", "1", "169.254.10.1"); err != nil {
				return fmt.Errorf("%v: %s", err, out)
			}
			return nil
		})
	})
}
