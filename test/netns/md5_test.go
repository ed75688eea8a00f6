package netns

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/cgwd/cgwd/test/netns/labkit"
)

// TCP MD5 on the Direct Connect session, as AWS requires it on DX (a BGP
// authentication key per virtual interface): first against BIRD (aws_dx in
// lab-aws), then against FRR as the DX router (frrNS, which takes over
// lab-aws's end of dx0 so that BIRD's tunnel sessions carry on), each
// session opened once by cgwd and once by the peer, and a wrong password
// on either side named by cgwd.
const (
	md5Password = "lab-md5-dx-0123"
	md5Wrong    = "lab-md5-dx-wrong"
	frrNS       = "lab-dxfrr" // FRR as the DX router
	frrNet      = "10.202.0.0/16"
)

// blockCgwdSYNs drops what lab-cgw sends to port 179 of the DX router, so
// that only the router can open the session; the returned function lifts it.
func blockCgwdSYNs(t *testing.T) (lift func()) {
	t.Helper()
	labkit.NftScript(t, labkit.CGW, "table inet cgwdtest_md5 {\n\tchain out {\n\t\ttype filter hook output priority 0;\n\t\tip daddr "+
		labkit.DXPeer+" tcp dport 179 drop\n\t}\n}\n")
	return func() { labkit.Nft(t, labkit.CGW, "delete", "table", "inet", "cgwdtest_md5") }
}

// waitOpenedBy waits until cgwd has dx1 Established over a connection that
// opener ("local": cgwd, "peer": the DX router) opened.
func waitOpenedBy(t *testing.T, opener string) {
	t.Helper()
	labkit.Eventually(t, 30*time.Second, "dx1 Established, opened by "+opener, func() error {
		for _, p := range labkit.Status(t).BGP {
			if p.Name == labkit.DXPath && !p.Up {
				return fmt.Errorf("cgwd: dx1 is %s", p.State)
			}
		}
		got, err := labkit.BGPOpener(labkit.CGW, labkit.DXPeer)
		if err != nil {
			return err
		}
		if got != opener {
			return fmt.Errorf("opened by %s", got)
		}
		return nil
	})
}

// checkMD5Flat fails the test when lab-cgw's kernel dropped any segment for
// TCP MD5 since before.
func checkMD5Flat(t *testing.T, before labkit.MD5Drops) {
	t.Helper()
	if now := labkit.ReadMD5Drops(t, labkit.CGW); now != before {
		t.Errorf("lab-cgw's TCP MD5 drop counters moved: %+v, before %+v", now, before)
	}
}

// waitMD5Problem waits until cgwd names dx1's MD5 problem, saying want, in
// its status and with the named log line after offset, and checks the
// metric and `cgwd status bgp`; it returns how long the naming took.
func waitMD5Problem(t *testing.T, offset int, want string) time.Duration {
	t.Helper()
	start := time.Now()
	labkit.Eventually(t, 20*time.Second, "cgwd names dx1's md5 problem", func() error {
		var problem string
		for _, p := range labkit.Status(t).BGP {
			if p.Name == labkit.DXPath {
				problem = p.MD5
			}
		}
		if !strings.Contains(problem, want) {
			return fmt.Errorf("status: dx1 md5 %q", problem)
		}
		log, _ := labkit.LogSince(t, offset)
		if !strings.Contains(log, `msg="bgp: md5 authentication failing" component=bgp peer=dx1`) {
			return fmt.Errorf("no named log line")
		}
		return nil
	})
	took := time.Since(start)
	if v, ok := labkit.Scrape(t).Value(`cgwd_bgp_md5_problem{address="` + labkit.DXPeer + `",peer="dx1"}`); !ok || v != 1 {
		t.Errorf("cgwd_bgp_md5_problem for dx1 = %v (found %v), want 1", v, ok)
	}
	out, err := exec.Command(labkit.CgwdBin, "status", "-s", labkit.Sock, "bgp").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "dx1: md5: "+want) {
		t.Errorf("cgwd status bgp does not name the problem: %v\n%s", err, out)
	}
	return took
}

// checkNoPassword fails the test when a password shows in cgwd's log,
// status or metrics.
func checkNoPassword(t *testing.T) {
	t.Helper()
	status, err := exec.Command(labkit.CgwdBin, "status", "-s", labkit.Sock, "-json").CombinedOutput()
	if err != nil {
		t.Fatalf("cgwd status -json: %v: %s", err, status)
	}
	metrics, err := labkit.HTTPGet(labkit.CGW, labkit.MetricsURL)
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{"log": labkit.Log(), "status": string(status), "metrics": metrics} {
		for _, pw := range []string{md5Password, md5Wrong} {
			if strings.Contains(text, pw) {
				t.Errorf("a TCP MD5 password shows in cgwd's %s", what)
			}
		}
	}
}

// frrDXConf is FRR as AWS's DX router: ASN 64512, BFD at AWS's 300 ms x 3,
// announcing frrNet, keyed with md5Password, opening the session itself.
var frrDXConf = `frr defaults traditional
hostname lab-dxfrr
ip route ` + frrNet + ` blackhole
bfd
 profile aws
  receive-interval 300
  transmit-interval 300
  detect-multiplier 3
!
router bgp 64512
 bgp router-id ` + labkit.DXPeer + `
 no bgp ebgp-requires-policy
 neighbor ` + labkit.DXLocal + ` remote-as 65000
 neighbor ` + labkit.DXLocal + ` password ` + md5Password + `
 neighbor ` + labkit.DXLocal + ` timers connect 1
 neighbor ` + labkit.DXLocal + ` bfd profile aws
 address-family ipv4 unicast
  network ` + frrNet + `
 exit-address-family
`

func TestMD5Lab(t *testing.T) {
	labkit.Require(t)
	labkit.RequireTools(t, "nstat", "ss", "vtysh")
	began := time.Now()
	labkit.Up(t)
	labkit.LogOnFailure(t)
	pwFile := labkit.State + "/md5-dx.password"
	if err := os.WriteFile(pwFile, []byte(md5Password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	const neighbor = "neighbor 169.254.255.2 as 65000;"
	bird := labkit.AWSBird
	// BIRD keyed and passive: cgwd opens.
	labkit.EditAWSBird(t, labkit.Replace(neighbor, neighbor+"\n\tpassword \""+md5Password+"\";\n\tpassive on;"))
	before := labkit.ReadMD5Drops(t, labkit.CGW)
	labkit.StartRouting(t, labkit.Replace("max_prefixes: 200000", "password_file: "+pwFile+"\n      max_prefixes: 200000"))

	t.Run("BIRDCgwdOpens", func(t *testing.T) {
		waitOpenedBy(t, "local")
		for _, bad := range []string{"failed to set md5", "cannot set TTL"} {
			if strings.Contains(labkit.Log(), bad) {
				t.Errorf("cgwd logs %q", bad)
			}
		}
		if out := bird.C(t, "show", "route", labkit.OnPremNet, "protocol", labkit.BirdDX); !strings.Contains(out, labkit.OnPremNet) {
			t.Errorf("BIRD has no %s from cgwd over DX:\n%s", labkit.OnPremNet, out)
		}
		checkMD5Flat(t, before)
	})

	t.Run("BIRDOpens", func(t *testing.T) {
		lift := blockCgwdSYNs(t)
		defer lift()
		labkit.EditAWSBird(t, labkit.Replace("\tpassive on;\n", ""))
		bird.C(t, "restart", labkit.BirdDX)
		waitOpenedBy(t, "peer")
		labkit.WaitDev(t, 30*time.Second, labkit.DX) // the VPC's prefix, learnt over the session BIRD opened
		checkMD5Flat(t, before)
	})

	t.Run("BIRDWrongPasswordNamed", func(t *testing.T) {
		_, offset := labkit.LogSince(t, 0)
		drops := labkit.ReadMD5Drops(t, labkit.CGW)
		labkit.EditAWSBird(t, labkit.Replace(md5Password, md5Wrong)) // BIRD restarts aws_dx and opens with the wrong key
		took := waitMD5Problem(t, offset, "bad signature from the peer")
		t.Logf("BIRD with a wrong password: named in %v", took.Round(time.Millisecond))
		if now := labkit.ReadMD5Drops(t, labkit.CGW); now.Failure <= drops.Failure {
			t.Errorf("lab-cgw's TcpExtTCPMD5Failure did not rise: %d, before %d", now.Failure, drops.Failure)
		}
		checkNoPassword(t)
	})

	t.Run("BIRDMissingPasswordNamed", func(t *testing.T) {
		_, offset := labkit.LogSince(t, 0)
		drops := labkit.ReadMD5Drops(t, labkit.CGW)
		labkit.EditAWSBird(t, labkit.Replace("\tpassword \""+md5Wrong+"\";\n", "")) // BIRD opens unsigned
		took := waitMD5Problem(t, offset, "no signature from the peer")
		t.Logf("BIRD without a password: named in %v", took.Round(time.Millisecond))
		if now := labkit.ReadMD5Drops(t, labkit.CGW); now.NotFound <= drops.NotFound {
			t.Errorf("lab-cgw's TcpExtTCPMD5NotFound did not rise: %d, before %d", now.NotFound, drops.NotFound)
		}
		bird.C(t, "disable", labkit.BirdDX)
	})

	// FRR takes lab-aws's end of DX and opens the session: cgwd's SYNs are
	// dropped until FRR has it.
	exec.Command("ip", "netns", "del", frrNS).Run()
	t.Cleanup(func() { exec.Command("ip", "netns", "del", frrNS).Run() })
	for _, c := range [][]string{
		{"netns", "add", frrNS},
		{"-n", labkit.AWS, "link", "set", labkit.DX, "netns", frrNS},
		{"-n", frrNS, "addr", "add", labkit.DXPeer + "/30", "dev", labkit.DX},
		{"-n", frrNS, "link", "set", labkit.DX, "up"},
		{"-n", frrNS, "link", "set", "lo", "up"},
	} {
		if out, err := exec.Command("ip", c...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v %s", strings.Join(c, " "), err, out)
		}
	}
	frrBefore := labkit.ReadMD5Drops(t, labkit.CGW)
	lift := blockCgwdSYNs(t)
	frr := labkit.StartFRR(t, frrNS, "md5-dx", frrDXConf)

	t.Run("FRROpens", func(t *testing.T) {
		defer lift()
		waitOpenedBy(t, "peer")
		frr.WaitEstablished(t, 10*time.Second, labkit.DXLocal)
		labkit.WaitRoute(t, 30*time.Second, frrNet, labkit.DXPeer, labkit.DX)
		labkit.Eventually(t, 10*time.Second, "FRR has "+labkit.OnPremNet+" from cgwd", func() error {
			var r struct{ Paths []any }
			if err := frr.TryVtyshJSON(&r, "show bgp ipv4 unicast "+labkit.OnPremNet+" json"); err != nil {
				return err
			}
			if len(r.Paths) == 0 {
				return fmt.Errorf("no path")
			}
			return nil
		})
		checkMD5Flat(t, frrBefore)
	})

	t.Run("FRRCgwdOpens", func(t *testing.T) {
		frr.Vtysh(t, "configure terminal", "router bgp 64512", "neighbor "+labkit.DXLocal+" passive")
		frr.Vtysh(t, "clear bgp "+labkit.DXLocal)
		waitOpenedBy(t, "local")
		frr.WaitEstablished(t, 10*time.Second, labkit.DXLocal)
		labkit.WaitRoute(t, 30*time.Second, frrNet, labkit.DXPeer, labkit.DX)
		checkMD5Flat(t, frrBefore)
	})

	t.Run("FRRWrongPasswordNamed", func(t *testing.T) {
		// FRR passive with another password: cgwd's signed SYNs go
		// unanswered, and lab-dxfrr's kernel counts them.
		_, offset := labkit.LogSince(t, 0)
		drops := labkit.ReadMD5Drops(t, frrNS)
		frr.Vtysh(t, "configure terminal", "router bgp 64512", "neighbor "+labkit.DXLocal+" password "+md5Wrong)
		took := waitMD5Problem(t, offset, "no answer to cgwd's signed SYNs")
		t.Logf("FRR with a wrong password: named in %v", took.Round(time.Millisecond))
		if now := labkit.ReadMD5Drops(t, frrNS); now.Failure <= drops.Failure {
			t.Errorf("lab-dxfrr's TcpExtTCPMD5Failure did not rise: %d, before %d", now.Failure, drops.Failure)
		}
		checkNoPassword(t)
	})

	t.Run("AwayPeerNotBlamed", func(t *testing.T) {
		// DX cut: BFD says the router is gone, so its silence is no
		// longer put on the password.
		defer labkit.CutDX(t)()
		labkit.Eventually(t, 10*time.Second, "dx1's md5 problem dropped while DX is cut", func() error {
			for _, p := range labkit.Status(t).BGP {
				if p.Name == labkit.DXPath && p.MD5 != "" {
					return fmt.Errorf("dx1 md5 %q", p.MD5)
				}
			}
			return nil
		})
	})
	t.Logf("TestMD5Lab: %v in all (shared, loaded machine)", time.Since(began).Round(time.Second))
}
