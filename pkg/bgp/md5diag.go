package bgp

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	api "github.com/osrg/gobgp/v3/api"
)

// A wrong or missing TCP MD5 password shows nowhere in BGP: the kernel
// drops the peer's segments before any socket sees them, and the session
// just stays active. cgwd tells it from two things the kernel does show,
// in its own network namespace, once a second:
//
//   - the MD5 counters of /proc/self/net/netstat, which rise when the peer
//     opens: TcpExtTCPMD5Failure (both sides keyed, signatures differ),
//     TcpExtTCPMD5NotFound (cgwd has a password, the peer signs nothing),
//     TcpExtTCPMD5Unexpected (the peer signs, cgwd has no password). The
//     kernel counts per namespace, not per peer: a rise is put on the
//     sessions that are down and keyed (unkeyed for Unexpected);
//   - cgwd's own signed SYNs that the peer leaves unanswered (a socket in
//     SYN-SENT to port 179 that has retransmitted, /proc/self/net/tcp and
//     tcp6), which is how a peer's kernel drops them when its password
//     differs or it has none, when cgwd opens.
//
// A problem is logged once when seen or changed ("bgp: md5 authentication
// failing") and shown by cgwd status until the session is Established.
// A session whose path says its peer is gone (PeerReachable: BFD or probes
// down) gets none: an unreachable peer leaves SYNs unanswered too.

// md5Interval is how often the kernel's counters and sockets are read.
const md5Interval = time.Second

// md5Counters are the kernel's TCP MD5 drop counters (TcpExt).
type md5Counters struct{ Failure, NotFound, Unexpected uint64 }

func (c md5Counters) sub(o md5Counters) md5Counters {
	return md5Counters{c.Failure - o.Failure, c.NotFound - o.NotFound, c.Unexpected - o.Unexpected}
}

// readMD5Counters parses /proc/net/netstat's TcpExt lines (a header line of
// names, then one of values).
func readMD5Counters(r io.Reader) (md5Counters, error) {
	var c md5Counters
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	var names []string
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 || f[0] != "TcpExt:" {
			continue
		}
		if names == nil {
			names = f
			continue
		}
		if len(f) != len(names) {
			return c, fmt.Errorf("netstat: TcpExt has %d names and %d values", len(names), len(f))
		}
		found := 0
		for i, n := range names {
			var dst *uint64
			switch n {
			case "TCPMD5Failure":
				dst = &c.Failure
			case "TCPMD5NotFound":
				dst = &c.NotFound
			case "TCPMD5Unexpected":
				dst = &c.Unexpected
			default:
				continue
			}
			v, err := strconv.ParseUint(f[i], 10, 64)
			if err != nil {
				return c, fmt.Errorf("netstat: TcpExt %s: %w", n, err)
			}
			*dst = v
			found++
		}
		if found != 3 {
			return c, fmt.Errorf("netstat: TcpExt has no TCP MD5 counters")
		}
		return c, nil
	}
	if err := sc.Err(); err != nil {
		return c, err
	}
	return c, fmt.Errorf("netstat: no TcpExt lines")
}

// unansweredSYNs adds to out the remote addresses of the sockets in
// /proc/net/tcp or tcp6 format that sit in SYN-SENT to port 179 after at
// least one retransmission of their SYN.
func unansweredSYNs(r io.Reader, out map[netip.Addr]bool) error {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		// sl local rem st tx:rx tr:when retrnsmt ...
		f := strings.Fields(sc.Text())
		if len(f) < 7 || f[3] != "02" { // TCP_SYN_SENT
			continue
		}
		host, port, ok := strings.Cut(f[2], ":")
		if !ok || port != "00B3" { // 179
			continue
		}
		if n, err := strconv.ParseUint(f[6], 16, 32); err != nil || n == 0 {
			continue
		}
		if a, ok := procAddr(host); ok {
			out[a.Unmap()] = true
		}
	}
	return sc.Err()
}

// procAddr decodes an address as /proc/net/tcp prints it: the raw bytes
// as 32-bit words in host byte order, each in hex.
func procAddr(s string) (netip.Addr, bool) {
	b, err := hex.DecodeString(s)
	if err != nil || (len(b) != 4 && len(b) != 16) {
		return netip.Addr{}, false
	}
	raw := make([]byte, len(b))
	for i := 0; i < len(b); i += 4 {
		binary.NativeEndian.PutUint32(raw[i:], binary.BigEndian.Uint32(b[i:]))
	}
	a, _ := netip.AddrFromSlice(raw)
	return a, true
}

// md5Peer is what diagnose knows of one session.
type md5Peer struct {
	Name  string
	Addr  netip.Addr
	Keyed bool // cgwd has a password for it
	Up    bool // Established
	// Gone is set when the session's path knows its peer is not there
	// (BFD or probes down): it sends nothing and answers nothing, so no
	// MD5 evidence is put on it.
	Gone bool
}

// diagnose names, per session that is down, the TCP MD5 problem that the
// counters' rise since the last reading and the unanswered signed SYNs
// point at.
func diagnose(peers []md5Peer, rise md5Counters, unanswered map[netip.Addr]bool) map[string]string {
	out := map[string]string{}
	blame := func(n uint64, keyed bool, counter, what string) {
		if n == 0 {
			return
		}
		var down []string
		for _, p := range peers {
			if !p.Up && !p.Gone && p.Keyed == keyed {
				down = append(down, p.Name)
			}
		}
		for _, name := range down {
			if _, done := out[name]; done {
				continue
			}
			r := fmt.Sprintf("%s (kernel %s +%d)", what, counter, n)
			if len(down) > 1 {
				r += fmt.Sprintf("; the kernel counts per namespace: one or more of %s", strings.Join(down, ", "))
			}
			out[name] = r
		}
	}
	blame(rise.Failure, true, "TcpExtTCPMD5Failure", "bad signature from the peer: its password differs from cgwd's")
	blame(rise.NotFound, true, "TcpExtTCPMD5NotFound", "no signature from the peer: it has no password, cgwd has one")
	blame(rise.Unexpected, false, "TcpExtTCPMD5Unexpected", "the peer signs its segments, cgwd has no password for it")
	for _, p := range peers {
		if _, done := out[p.Name]; !done && !p.Up && !p.Gone && p.Keyed && unanswered[p.Addr] {
			out[p.Name] = "no answer to cgwd's signed SYNs: the peer's password differs or it has none (or the peer is unreachable)"
		}
	}
	return out
}

// md5Watch is the speaker's TCP MD5 diagnosis.
type md5Watch struct {
	// reachable, when set, says whether a session's peer is known alive
	// or known gone (known false: no liveness check on its path).
	reachable func(name string) (alive, known bool)
	mu        sync.Mutex
	problems  map[string]string // by peer name, while the session is down
	// Where the kernel's files are: /proc/self/net/... (tests point them
	// elsewhere).
	netstat string
	tcp     []string
}

func newMD5Watch() *md5Watch {
	return &md5Watch{problems: map[string]string{}, netstat: "/proc/self/net/netstat",
		tcp: []string{"/proc/self/net/tcp", "/proc/self/net/tcp6"}}
}

// problem is the named peer's current TCP MD5 problem, "" for none.
func (w *md5Watch) problem(name string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.problems[name]
}

// counters reads the kernel's MD5 counters.
func (w *md5Watch) counters() (md5Counters, error) {
	f, err := os.Open(w.netstat)
	if err != nil {
		return md5Counters{}, err
	}
	defer f.Close()
	return readMD5Counters(f)
}

// unanswered reads which peers leave cgwd's SYNs unanswered.
func (w *md5Watch) unanswered() map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for _, path := range w.tcp {
		if f, err := os.Open(path); err == nil {
			unansweredSYNs(f, out)
			f.Close()
		}
	}
	return out
}

// watchMD5 reads the kernel's view once a second until ctx ends, and records,
// logs and clears each session's problem.
func (s *Speaker) watchMD5(ctx context.Context, w *md5Watch) {
	last, err := w.counters()
	if err != nil {
		s.log.Warn("bgp: cannot read the kernel's TCP MD5 counters: md5 problems of sessions the peer opens go unnamed", "err", err)
	}
	t := time.NewTicker(md5Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var rise md5Counters
		if now, err := w.counters(); err == nil {
			rise, last = now.sub(last), now
		}
		unanswered := w.unanswered()
		w.mu.Lock()
		idle := len(w.problems) == 0
		w.mu.Unlock()
		if idle && rise == (md5Counters{}) && len(unanswered) == 0 {
			continue // nothing to name or clear: gobgp is not asked
		}
		peers := s.md5Peers(ctx)
		found := diagnose(peers, rise, unanswered)
		w.mu.Lock()
		for name := range w.problems {
			if !slices.ContainsFunc(peers, func(p md5Peer) bool { return p.Name == name }) {
				delete(w.problems, name) // removed by a reload
			}
		}
		for _, p := range peers {
			old, r := w.problems[p.Name], found[p.Name]
			switch {
			case p.Up && old != "":
				delete(w.problems, p.Name)
				s.log.Info("bgp: md5 authentication ok again", "peer", p.Name, "address", p.Addr)
			case p.Gone && old != "":
				delete(w.problems, p.Name) // unknowable while the peer is away
			case r != "" && r != old:
				w.problems[p.Name] = r
				s.log.Warn("bgp: md5 authentication failing", "peer", p.Name, "address", p.Addr, "reason", r)
			}
		}
		w.mu.Unlock()
	}
}

// md5Peers is every configured session with its state, for diagnose.
func (s *Speaker) md5Peers(ctx context.Context) []md5Peer {
	v := s.v.Load()
	up := map[string]bool{}
	_ = s.srv.ListPeer(ctx, &api.ListPeerRequest{}, func(p *api.Peer) {
		up[p.GetConf().GetNeighborAddress()] = p.GetState().GetSessionState() == api.PeerState_ESTABLISHED
	})
	out := make([]md5Peer, 0, len(v.cfg.Peers))
	for _, p := range v.cfg.Peers {
		mp := md5Peer{Name: p.Name, Addr: p.Address, Keyed: p.Password != "", Up: up[p.Address.String()]}
		if s.md5.reachable != nil {
			alive, known := s.md5.reachable(p.Name)
			mp.Gone = known && !alive
		}
		out = append(out, mp)
	}
	return out
}

// PeerReachable tells the speaker, before Start, how to learn whether a
// session's peer is there: fn returns known false when the session's path
// has no liveness check, else whether the peer is alive (BFD or probes
// up). A session whose peer is known gone gets no TCP MD5 problem named.
func (s *Speaker) PeerReachable(fn func(name string) (alive, known bool)) { s.md5.reachable = fn }
