package labkit

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/control"
)

// The HA lab (HA=1 lab.sh up, ha.sh; README "Two boxes"): the one-box lab
// plus an on-prem core router, a LAN shared by it and both boxes, and a
// second box with its own WAN address, VPN connection and Direct Connect.
// lab-onprem's eth0 goes to the core instead of lab-cgw.
const (
	Core = "lab-core" // the on-prem core router: FRR, ASN 65010
	LAN  = "lab-lan"  // the LAN switch: bridge br-lan, chain `bridge lab_lan cut`
	CGW2 = "lab-cgw2" // the second cgwd box
)

// Addresses of the HA lab.
const (
	CoreOnPrem  = "10.10.0.1"     // lab-core onprem0, lab-onprem's default gateway
	CoreLAN     = "10.10.100.254" // lab-core lan0
	CGWLANHA    = "10.10.100.1"   // lab-cgw lan0 in the HA lab
	CGW2LAN     = "10.10.100.2"   // lab-cgw2 lan0
	CGW2WAN     = "198.51.100.3"  // lab-cgw2 wan0
	AWSOut3     = "203.0.113.30"  // AWS's endpoint of tunnel 3 (lab-cgw2's first)
	AWSOut4     = "203.0.113.40"  // AWS's endpoint of tunnel 4
	DX2Peer     = "169.254.254.1" // AWS's end of lab-cgw2's Direct Connect (dx2 in lab-aws)
	DX2Local    = "169.254.254.2" // lab-cgw2's end (its dx0)
	T3Peer      = "169.254.12.1"  // AWS's inside address of tunnel 3
	T4Peer      = "169.254.13.1"  // AWS's inside address of tunnel 4
	T3Local     = "169.254.12.2"  // lab-cgw2's inside address of tunnel 3
	T4Local     = "169.254.13.2"  // lab-cgw2's inside address of tunnel 4
	CoreASN     = 65010           // lab-core's ASN
	OnPremNet16 = "10.10.0.0/16"  // what lab-core announces to both boxes
)

// Devices and names of the HA lab.
const (
	T3      = "cgw-t3" // lab-cgw2's tunnel 1 (to 203.0.113.30)
	T4      = "cgw-t4" // lab-cgw2's tunnel 2 (to 203.0.113.40)
	AWSDX2  = "dx2"    // lab-aws's end of lab-cgw2's Direct Connect
	LANDev  = "lan0"   // the LAN netdev of lab-core and of both boxes
	BirdT3  = "aws_t3"
	BirdT4  = "aws_t4"
	BirdDX2 = "aws_dx2"
)

// A Box is one of the HA lab's two cgwd boxes.
type Box struct {
	Name      string // "box 1", "box 2" in messages
	NS        string // its namespace
	Sock      string // cgwd's control socket
	Config    string // cgwd's config (edit with EditFile)
	LogFile   string
	PIDFile   string
	LANAddr   string   // its lan0 address: lab-core's BGP neighbor
	DXPeer    string   // AWS's end of its Direct Connect
	DXAddr    string   // its own end: lab-aws's gateway toward it
	AWSDX     string   // lab-aws's device toward its Direct Connect
	Tunnels   []string // its tunnels
	TunnelIPs []string // its inside addresses of them: lab-aws's gateways through them
	Bird      []string // BIRD's sessions with it in lab-aws
	start     string   // lab.sh subcommand that starts its cgwd
	metricURL string
	num       string // "1", "2" for lab.sh box-*
}

// Box1 is lab-cgw, the primary; Box2 is lab-cgw2.
var (
	Box1 = Box{Name: "box 1", NS: CGW, Sock: Sock, Config: Config, LogFile: LogFile, PIDFile: PIDFile,
		LANAddr: CGWLANHA, DXPeer: DXPeer, DXAddr: DXLocal, AWSDX: DX, Tunnels: []string{T1, T2},
		TunnelIPs: []string{T1Local, T2Local},
		Bird:      []string{BirdT1, BirdT2, BirdDX}, start: "start-cgwd", metricURL: MetricsURL, num: "1"}
	Box2 = Box{Name: "box 2", NS: CGW2, Sock: State + "/cgw2/cgwd.sock", Config: State + "/cgw2/cgwd.yaml",
		LogFile: State + "/logs/cgwd2.log", PIDFile: State + "/pids/cgwd2.pid",
		LANAddr: CGW2LAN, DXPeer: DX2Peer, DXAddr: DX2Local, AWSDX: AWSDX2, Tunnels: []string{T3, T4},
		TunnelIPs: []string{T3Local, T4Local},
		Bird:      []string{BirdT3, BirdT4, BirdDX2}, start: "start-cgwd2", metricURL: MetricsURL, num: "2"}
)

// CoreFRR is lab-core's FRR, which ha.sh starts as instance "core" the way
// StartFRR would (its Stop does nothing: lab.sh down stops it by PID).
var CoreFRR = &FRR{NS: Core, Name: "core", Dir: FRRDir + "/core"}

// UpHA builds the HA lab with WireGuard tunnels (HA=1 lab.sh up) and tears
// it down when the test ends.
func UpHA(t testing.TB) { t.Helper(); upHA(t, "wireguard") }

// UpHAIPsec builds the HA lab with IPsec tunnels (HA=1 TUNNEL=ipsec lab.sh
// up: four strongSwan endpoints, tunnels 1 and 2 to box 1, 3 and 4 to box
// 2) and tears it down when the test ends.
func UpHAIPsec(t testing.TB) {
	t.Helper()
	RequireStrongSwan(t)
	upHA(t, "ipsec")
}

func upHA(t testing.TB, tunnel string) {
	t.Helper()
	RequireTools(t, "vtysh", "bird")
	script(t, LabSh, []string{"HA=1", "TUNNEL=" + tunnel}, "up")
	t.Cleanup(func() { Down(t) })
}

// LogHAOnFailure logs, if the test has failed by its end, the end of both
// boxes' cgwd logs and lab-core's BGP, routes and BFD.
func LogHAOnFailure(t testing.TB) {
	t.Helper()
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		for _, b := range []Box{Box1, Box2} {
			lines := strings.Split(b.Log(), "\n")
			t.Logf("%s's cgwd log (last 40 lines):\n%s", b.Name, strings.Join(lines[max(0, len(lines)-40):], "\n"))
		}
		out, _ := CoreFRR.TryVtysh("-c", "show bgp ipv4 unicast summary", "-c", "show ip route", "-c", "show bfd peers brief")
		t.Logf("lab-core:\n%s", out)
	})
}

// TunnelBytes is the bytes the box's tunnels received and sent, summed over
// them, from its cgwd's status.
func (b Box) TunnelBytes(t testing.TB) (rx, tx uint64) {
	t.Helper()
	for _, tn := range b.Status(t).Tunnels {
		if slices.Contains(b.Tunnels, tn.Name) {
			rx, tx = rx+tn.RxBytes, tx+tn.TxBytes
		}
	}
	return rx, tx
}

// WaitVia waits until traffic between on-prem and the VPC goes through the
// box's tunnels in both directions: lab-core routes the VPC via its LAN
// address and lab-aws routes on-prem via one or more of its tunnels.
func (b Box) WaitVia(t testing.TB, timeout time.Duration) {
	t.Helper()
	WaitGateways(t, timeout, Core, VPCNet, b.LANAddr)
	Eventually(t, timeout, fmt.Sprintf("%s routes %s through %s's tunnels %v", AWS, OnPremNet16, b.Name, b.TunnelIPs), func() error {
		gws := Gateways(t, AWS, OnPremNet16)
		for _, gw := range gws {
			if !slices.Contains(b.TunnelIPs, gw) {
				return fmt.Errorf("via %v", gws)
			}
		}
		if len(gws) == 0 {
			return fmt.Errorf("no route")
		}
		return nil
	})
}

// StartHA starts both boxes' cgwd and waits until every tunnel is up, BIRD
// has its six sessions and lab-core its two (what make lab HA=1 runs).
func StartHA(t testing.TB) {
	t.Helper()
	for _, c := range []string{"start-cgwd", "start-cgwd2", "wait-tunnels", "wait-bgp", "wait-core"} {
		Sh(t, c)
	}
}

// Start starts the box's cgwd and returns once it answers on its socket.
func (b Box) Start(t testing.TB) { t.Helper(); Sh(t, b.start) }

// PID is the box's cgwd process.
func (b Box) PID(t testing.TB) int {
	t.Helper()
	p, err := os.ReadFile(b.PIDFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(p)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// Signal sends the box's cgwd sig and, for SIGKILL and SIGTERM, waits (at
// most 10 s) until it has exited.
func (b Box) Signal(t testing.TB, sig syscall.Signal) {
	t.Helper()
	pid := b.PID(t)
	if err := syscall.Kill(pid, sig); err != nil {
		t.Fatal(err)
	}
	if sig != syscall.SIGKILL && sig != syscall.SIGTERM {
		return
	}
	Eventually(t, 10*time.Second, b.Name+"'s cgwd exits", func() error {
		if Running(pid) {
			return fmt.Errorf("pid %d still running", pid)
		}
		return nil
	}, Every(10*time.Millisecond))
}

// Reload sends the box's cgwd SIGHUP and waits until it logs "reload: applied".
func (b Box) Reload(t testing.TB) {
	t.Helper()
	reload(t, b.PID(t), b.Log, "reload: applied")
}

// Status asks the box's cgwd for its status.
func (b Box) Status(t testing.TB) *control.Status {
	t.Helper()
	st, err := QueryStatus(b.Sock)
	if err != nil {
		t.Fatalf("%s: %v", b.Name, err)
	}
	return st
}

// Log is the box's cgwd log so far.
func (b Box) Log() string {
	p, _ := os.ReadFile(b.LogFile)
	return string(p)
}

// Scrape fetches the box's cgwd metrics from inside its namespace.
func (b Box) Scrape(t testing.TB) Metrics {
	t.Helper()
	body, err := HTTPGet(b.NS, b.metricURL)
	if err != nil {
		t.Fatalf("%s: %v", b.Name, err)
	}
	return Metrics(body)
}

// DXPackets is the packets the box's dx0 sent and received.
func (b Box) DXPackets(t testing.TB) uint64 {
	t.Helper()
	rx, tx := LinkPackets(t, b.NS, DX)
	return rx + tx
}

// Isolate is a power loss of the box (lab.sh box-isolate): every packet
// into, out of and through its namespace dropped at once, in one nftables
// transaction, while its links keep carrier. The returned function lets
// traffic through again.
func (b Box) Isolate(t testing.TB) (restore func()) {
	t.Helper()
	Sh(t, "box-isolate", b.num)
	return func() { Sh(t, "box-unisolate", b.num) }
}

// CutAWS cuts every AWS path of the box and leaves its LAN alone (lab.sh
// box-aws-cut): its DX cross-connect in lab-dx and its internet link in
// lab-inet drop every packet, both ways; the returned function restores both.
func (b Box) CutAWS(t testing.TB) (restore func()) {
	t.Helper()
	Sh(t, "box-aws-cut", b.num)
	return func() { Sh(t, "box-aws-restore", b.num) }
}

// nsRoute is one route of `ip -j route`, with its ECMP nexthops.
type nsRoute struct {
	Dst      string `json:"dst"`
	Gateway  string `json:"gateway"`
	Dev      string `json:"dev"`
	NHID     uint32 `json:"nhid"`
	Nexthops []struct {
		Gateway string `json:"gateway"`
		Dev     string `json:"dev"`
	} `json:"nexthops"`
}

// Gateways is the sorted gateways namespace ns's main table uses for
// prefix (several with ECMP; none when it has no route), read from `ip
// route` and, for a route through a nexthop object (FRR's zebra), `ip
// nexthop`.
func Gateways(t testing.TB, ns, prefix string) []string {
	t.Helper()
	out := MustInNS(t, ns, "ip", "-j", "route", "show", "exact", prefix)
	var rs []nsRoute
	if err := json.Unmarshal([]byte(out), &rs); err != nil {
		t.Fatalf("ip -j route show exact %s in %s: %v\n%s", prefix, ns, err, out)
	}
	if len(rs) == 0 {
		return nil
	}
	r := rs[0] // the one in use
	var gws []string
	if r.Gateway != "" {
		gws = append(gws, r.Gateway)
	}
	for _, nh := range r.Nexthops {
		gws = append(gws, nh.Gateway)
	}
	if len(gws) == 0 && r.NHID != 0 {
		gws = nexthopGateways(t, ns, r.NHID)
	}
	slices.Sort(gws)
	return gws
}

// nexthopGateways is the gateways of nexthop object id in ns (of each
// member when it is a group).
func nexthopGateways(t testing.TB, ns string, id uint32) []string {
	t.Helper()
	out := MustInNS(t, ns, "ip", "-j", "nexthop", "show", "id", strconv.Itoa(int(id)))
	var nhs []struct {
		Gateway string `json:"gateway"`
		Group   []struct {
			ID uint32 `json:"id"`
		} `json:"group"`
	}
	if err := json.Unmarshal([]byte(out), &nhs); err != nil || len(nhs) != 1 {
		t.Fatalf("ip -j nexthop show id %d in %s: %v\n%s", id, ns, err, out)
	}
	if nhs[0].Gateway != "" {
		return []string{nhs[0].Gateway}
	}
	var gws []string
	for _, m := range nhs[0].Group {
		gws = append(gws, nexthopGateways(t, ns, m.ID)...)
	}
	return gws
}

// WaitGateways waits until ns routes prefix via exactly gws (sorted).
func WaitGateways(t testing.TB, timeout time.Duration, ns, prefix string, gws ...string) {
	t.Helper()
	want := slices.Sorted(slices.Values(gws))
	Eventually(t, timeout, fmt.Sprintf("%s routes %s via %v", ns, prefix, want), func() error {
		if got := Gateways(t, ns, prefix); !slices.Equal(got, want) {
			return fmt.Errorf("via %v", got)
		}
		return nil
	})
}

// WaitActive waits until traffic between on-prem and the VPC goes through
// the given boxes in both directions: lab-core routes the VPC via their
// LAN addresses and lab-aws routes on-prem via their Direct Connects.
func WaitActive(t testing.TB, timeout time.Duration, boxes ...Box) {
	t.Helper()
	var lan, dx []string
	for _, b := range boxes {
		lan, dx = append(lan, b.LANAddr), append(dx, b.DXAddr)
	}
	WaitGateways(t, timeout, Core, VPCNet, lan...)
	WaitGateways(t, timeout, AWS, OnPremNet16, dx...)
}

// UDPFlows sends count UDP packets on each of flows sockets (each its own
// source port, so that ECMP hashing on ports spreads them) from namespace ns
// to port 9200 of dst, one packet per flow every millisecond; nothing needs
// to listen there.
func UDPFlows(t testing.TB, ns, dst string, flows, count int) {
	t.Helper()
	conns := make([]net.Conn, flows)
	for i := range conns {
		if err := Do(ns, func() (err error) {
			conns[i], err = net.Dial("udp4", net.JoinHostPort(dst, "9200"))
			return err
		}); err != nil {
			t.Fatalf("udp socket in %s: %v", ns, err)
		}
		defer conns[i].Close()
	}
	buf := make([]byte, 64)
	for range count {
		for _, c := range conns {
			_, _ = c.Write(buf) // an ICMP error from an earlier packet may fail a write: a packet less
		}
		time.Sleep(time.Millisecond)
	}
}
