package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cgwd/cgwd/pkg/control"
)

// descPathInstalled counts the kernel routes over each path, BGP's or a
// static connection's (which has no BGP peer for cgwd_bgp_prefixes_installed).
var descPathInstalled = prometheus.NewDesc("cgwd_path_routes_installed",
	"Kernel routes cgwd installed over the path (learnt by BGP, or a static connection's static routes).", []string{"path", "kind"}, nil)

func collectPaths(ch chan<- prometheus.Metric, st *control.Status) {
	for _, p := range st.Paths {
		ch <- prometheus.MustNewConstMetric(descPathInstalled, prometheus.GaugeValue, float64(p.Installed), p.Name, p.Kind)
	}
}
