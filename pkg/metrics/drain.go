package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cgwd/cgwd/pkg/control"
)

// What one box knows for the two-box alerts: whether it is drained, and how
// many of its paths to AWS are usable. Whether both boxes lost AWS is a sum
// over both boxes' cgwd_aws_paths_usable, made in Prometheus.
var (
	descDrained = prometheus.NewDesc("cgwd_drained",
		"Whether the box is drained or draining for maintenance (1) or in service (0).", nil, nil)
	descDrainedSince = prometheus.NewDesc("cgwd_drained_since_timestamp_seconds",
		"Unix time the box was drained; 0 while in service.", nil, nil)
	descAWSPathsUsable = prometheus.NewDesc("cgwd_aws_paths_usable",
		"Paths to AWS (DX links and tunnels) usable now: healthy, BGP up, in service.", nil, nil)
	haDescs = []*prometheus.Desc{descDrained, descDrainedSince, descAWSPathsUsable}
)

// collectHA exports st's drain state and usable paths.
func collectHA(ch chan<- prometheus.Metric, st *control.Status) {
	since := 0.0
	if st.Drain.Drained() && !st.Drain.Since.IsZero() {
		since = float64(st.Drain.Since.UnixNano()) / 1e9
	}
	usable := 0
	for _, p := range st.Paths {
		if p.Usable {
			usable++
		}
	}
	ch <- prometheus.MustNewConstMetric(descDrained, prometheus.GaugeValue, b2f(st.Drain.Drained()))
	ch <- prometheus.MustNewConstMetric(descDrainedSince, prometheus.GaugeValue, since)
	ch <- prometheus.MustNewConstMetric(descAWSPathsUsable, prometheus.GaugeValue, float64(usable))
}
