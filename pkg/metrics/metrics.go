// Package metrics exports cgwd's state to Prometheus. State (tunnels, IKE,
// BGP sessions, routes) it reads from the daemon's status snapshot on each
// scrape; nothing in cgwd pushes into it. Events a snapshot cannot show
// (failovers by cause, detection-to-kernel durations, BFD state, probe RTTs)
// are counted where they happen, by pkg/failover, whose collectors the
// daemon registers here (NewRegistry's extra).
package metrics

import (
	"fmt"
	"net"
	"net/http"
	httppprof "net/http/pprof"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/cgwd/cgwd/pkg/control"
	"github.com/cgwd/cgwd/pkg/lifecycle"
	"github.com/cgwd/cgwd/pkg/tunnel"
)

var (
	tunnelLabels = []string{"vpn", "tunnel", "kind"}

	descTunnelUp = prometheus.NewDesc("cgwd_tunnel_up",
		"Whether the tunnel has a fresh session with its AWS endpoint (1) or not (0).", tunnelLabels, nil)
	descTunnelRx = prometheus.NewDesc("cgwd_tunnel_rx_bytes_total",
		"Bytes received from the AWS endpoint on the tunnel's outside socket.", tunnelLabels, nil)
	descTunnelTx = prometheus.NewDesc("cgwd_tunnel_tx_bytes_total",
		"Bytes sent to the AWS endpoint on the tunnel's outside socket.", tunnelLabels, nil)
	descTunnelHandshake = prometheus.NewDesc("cgwd_tunnel_last_handshake_timestamp_seconds",
		"Unix time of the tunnel's last completed handshake; 0 if none.", tunnelLabels, nil)
	peerLabels        = []string{"peer", "address"}
	descBGPSessionUp  = prometheus.NewDesc("cgwd_bgp_session_up", "Whether the BGP session is Established (1) or not (0).", peerLabels, nil)
	descBGPReceived   = prometheus.NewDesc("cgwd_bgp_prefixes_received", "Prefixes the peer sent, before cgwd's import policy.", peerLabels, nil)
	descBGPAccepted   = prometheus.NewDesc("cgwd_bgp_prefixes_accepted", "Prefixes from the peer that passed cgwd's import policy.", peerLabels, nil)
	descBGPAdvertised = prometheus.NewDesc("cgwd_bgp_prefixes_advertised", "Prefixes cgwd advertises to the peer.", peerLabels, nil)
	descBGPInstalled  = prometheus.NewDesc("cgwd_bgp_prefixes_installed", "Kernel routes cgwd installed over this peer's path.", peerLabels, nil)
	descBGPHeldBack   = prometheus.NewDesc("cgwd_bgp_prefixes_held_back", "On-prem prefixes cgwd does not send to the peer: more than the session's advertise limit.", peerLabels, nil)
	descBGPMD5        = prometheus.NewDesc("cgwd_bgp_md5_problem", "Whether a TCP MD5 problem (wrong or missing password, either side) keeps the session down (1) or none is seen (0); cgwd status and the log name it.", peerLabels, nil)
	descBGPInfo       = prometheus.NewDesc("cgwd_bgp_session_info", "Always 1: the session's kind, aws (a tunnel or DX link) or lan (an on-prem router).", []string{"peer", "address", "kind"}, nil)
	descBGPBFDUp      = prometheus.NewDesc("cgwd_bgp_bfd_up", "Whether a LAN peer's BFD session is Up (1) or not (0); absent without BFD.", peerLabels, nil)
	descRoutesProg    = prometheus.NewDesc("cgwd_routes_programmed_total", "Kernel route operations (add, replace, delete) that succeeded.", nil, nil)
	descRouteErrors   = prometheus.NewDesc("cgwd_route_programming_errors_total", "Kernel route operations that failed.", nil, nil)
	descFailClosed    = prometheus.NewDesc("cgwd_fail_closed_routes", "Unreachable routes cgwd keeps below its own for AWS prefixes (fail closed).", nil, nil)

	descIKEUp = prometheus.NewDesc("cgwd_ipsec_ike_sa_up",
		"Whether the ipsec tunnel's IKE SA is established (1) or not (0).", []string{"vpn", "tunnel"}, nil)
	descChildRekeys = prometheus.NewDesc("cgwd_ipsec_child_sa_rekeys_total",
		"Child SA rekeys of the ipsec tunnel.", []string{"vpn", "tunnel"}, nil)
	descESPDropped = prometheus.NewDesc("cgwd_ipsec_esp_dropped_packets_total",
		"ESP packets dropped on receive, by reason (replay, auth, ts, malformed, ...).", []string{"vpn", "tunnel", "reason"}, nil)
	descIKEDropped = prometheus.NewDesc("cgwd_ike_dropped_total",
		"IKE messages dropped before they changed any state, by reason (unencrypted, bad_icv, malformed, unknown_spi, window, cookie, half_open, rate, retransmit_mismatch, ikev1).",
		[]string{"vpn", "tunnel", "reason"}, nil)
	descIKEVersion = prometheus.NewDesc("cgwd_ipsec_ike_version_info",
		"Always 1: the IKE version the ipsec tunnel speaks now (ikev2 or ikev1; ike_version any switches between them).", []string{"vpn", "tunnel", "version"}, nil)
	descIKEVersionSwitches = prometheus.NewDesc("cgwd_ipsec_ike_version_switches_total",
		"Switches of an ike_version any tunnel between IKEv2 and IKEv1.", []string{"vpn", "tunnel"}, nil)
	descIKEFragments = prometheus.NewDesc("cgwd_ike_fragments_total",
		"RFC 7383 IKE fragments sent (first transmissions) and received with a valid ICV, by direction (sent, received).",
		[]string{"vpn", "tunnel", "direction"}, nil)
	descIKEEstablish = prometheus.NewDesc("cgwd_ipsec_ike_establish_seconds",
		"Time the last IKE SA establishment took (IKE_SA_INIT to the first Child SA).", []string{"vpn", "tunnel"}, nil)

	descBuildInfo = prometheus.NewDesc("cgwd_build_info",
		"Always 1; labels say which cgwd build is running.", []string{"version", "goversion"}, nil)
)

// collector turns a status snapshot into metrics at scrape time.
type collector struct {
	status control.StatusFunc
}

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTunnelUp, descTunnelRx, descTunnelTx, descTunnelHandshake, descBuildInfo,
		descIKEUp, descChildRekeys, descESPDropped, descIKEDropped, descIKEFragments, descIKEEstablish, descIKEVersion, descIKEVersionSwitches,
		descBGPSessionUp, descBGPReceived, descBGPAccepted, descBGPAdvertised, descBGPInstalled, descBGPHeldBack, descBGPMD5, descBGPInfo, descBGPBFDUp, descRoutesProg, descRouteErrors, descFailClosed} {
		ch <- d
	}
	for _, d := range haDescs {
		ch <- d
	}
	ch <- descPathInstalled
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	st := c.status()
	ch <- prometheus.MustNewConstMetric(descBuildInfo, prometheus.GaugeValue, 1, st.Version, runtime.Version())
	vpnOf := map[string]string{}
	for _, v := range st.VPN {
		for _, t := range v.Tunnels {
			vpnOf[t] = v.Name
		}
	}
	for _, t := range st.Tunnels {
		labels := []string{vpnOf[t.Name], t.Name, string(t.Kind)}
		up := b2f(t.State == tunnel.StateUp)
		hs := 0.0
		if !t.LastHandshake.IsZero() {
			hs = float64(t.LastHandshake.UnixNano()) / 1e9
		}
		ch <- prometheus.MustNewConstMetric(descTunnelUp, prometheus.GaugeValue, up, labels...)
		ch <- prometheus.MustNewConstMetric(descTunnelRx, prometheus.CounterValue, float64(t.RxBytes), labels...)
		ch <- prometheus.MustNewConstMetric(descTunnelTx, prometheus.CounterValue, float64(t.TxBytes), labels...)
		ch <- prometheus.MustNewConstMetric(descTunnelHandshake, prometheus.GaugeValue, hs, labels...)
		if ip := t.IPsec; ip != nil {
			vt := labels[:2]
			ch <- prometheus.MustNewConstMetric(descIKEUp, prometheus.GaugeValue, b2f(ip.IKEState == "established"), vt...)
			ch <- prometheus.MustNewConstMetric(descChildRekeys, prometheus.CounterValue, float64(ip.ChildRekeys), vt...)
			ch <- prometheus.MustNewConstMetric(descIKEEstablish, prometheus.GaugeValue, ip.EstablishSeconds, vt...)
			if ip.IKEVersion != "" {
				ch <- prometheus.MustNewConstMetric(descIKEVersion, prometheus.GaugeValue, 1, vt[0], vt[1], ip.IKEVersion)
			}
			ch <- prometheus.MustNewConstMetric(descIKEVersionSwitches, prometheus.CounterValue, float64(ip.IKEVersionSwitches), vt...)
			for reason, n := range ip.ESPDropped {
				ch <- prometheus.MustNewConstMetric(descESPDropped, prometheus.CounterValue, float64(n), vt[0], vt[1], reason)
			}
			for reason, n := range ip.IKEDropped {
				ch <- prometheus.MustNewConstMetric(descIKEDropped, prometheus.CounterValue, float64(n), vt[0], vt[1], reason)
			}
			if f := ip.IKEFragments; f != nil {
				ch <- prometheus.MustNewConstMetric(descIKEFragments, prometheus.CounterValue, float64(f["sent"]), vt[0], vt[1], "sent")
				ch <- prometheus.MustNewConstMetric(descIKEFragments, prometheus.CounterValue, float64(f["received"]), vt[0], vt[1], "received")
			}
		}
	}
	for _, p := range st.BGP {
		labels := []string{p.Name, p.Address}
		ch <- prometheus.MustNewConstMetric(descBGPSessionUp, prometheus.GaugeValue, b2f(p.Up), labels...)
		ch <- prometheus.MustNewConstMetric(descBGPReceived, prometheus.GaugeValue, float64(p.Received), labels...)
		ch <- prometheus.MustNewConstMetric(descBGPAccepted, prometheus.GaugeValue, float64(p.Accepted), labels...)
		ch <- prometheus.MustNewConstMetric(descBGPAdvertised, prometheus.GaugeValue, float64(p.Advertised), labels...)
		ch <- prometheus.MustNewConstMetric(descBGPInstalled, prometheus.GaugeValue, float64(p.Installed), labels...)
		ch <- prometheus.MustNewConstMetric(descBGPHeldBack, prometheus.GaugeValue, float64(p.HeldBack), labels...)
		ch <- prometheus.MustNewConstMetric(descBGPMD5, prometheus.GaugeValue, b2f(p.MD5 != ""), labels...)
		ch <- prometheus.MustNewConstMetric(descBGPInfo, prometheus.GaugeValue, 1, p.Name, p.Address, p.Kind)
		if p.BFD != "" {
			ch <- prometheus.MustNewConstMetric(descBGPBFDUp, prometheus.GaugeValue, b2f(p.BFD == "Up"), labels...)
		}
	}
	ch <- prometheus.MustNewConstMetric(descRoutesProg, prometheus.CounterValue, float64(st.RoutesProgrammed))
	ch <- prometheus.MustNewConstMetric(descRouteErrors, prometheus.CounterValue, float64(st.RouteErrors))
	ch <- prometheus.MustNewConstMetric(descFailClosed, prometheus.GaugeValue, float64(st.FailClosedRoutes))
	collectHA(ch, &st)
	collectPaths(ch, &st)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// NewRegistry returns a registry with cgwd's collector, the Go runtime
// collector and the process collector, plus any extra collectors given.
func NewRegistry(status control.StatusFunc, extra ...prometheus.Collector) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collector{status: status},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(extra...)
	return reg
}

// Server serves one HTTP listener: /metrics, or Go's profiles. Start it
// (pkg/lifecycle); it stops when its context ends.
type Server struct {
	*lifecycle.HTTPServer
	ln net.Listener
}

// Listen binds addr for the metrics endpoint, /metrics.
func Listen(addr string, reg *prometheus.Registry) (*Server, error) {
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	return listen("metrics", addr, mux)
}

// ListenPprof binds addr, which must be a loopback address, for Go's
// /debug/pprof/ profiles alone: they show memory contents and cost CPU, so
// they never share the metrics listener.
func ListenPprof(addr string) (*Server, error) {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", httppprof.Index)
	mux.HandleFunc("/debug/pprof/profile", httppprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", httppprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", httppprof.Trace)
	s, err := listen("pprof", addr, mux)
	if err != nil {
		return nil, err
	}
	if a, ok := s.ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		s.ln.Close()
		return nil, fmt.Errorf("pprof %s: not a loopback address", addr)
	}
	return s, nil
}

func listen(name, addr string, h http.Handler) (*Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", name, addr, err)
	}
	return &Server{lifecycle.NewHTTPServer(&http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}, ln), ln}, nil
}

// Addr is the address actually bound.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }
