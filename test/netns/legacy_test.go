package netns

import (
	"testing"
	"time"

	"github.com/cgwd/cgwd/pkg/control"
	"github.com/cgwd/cgwd/test/netns/labkit"
)

// The names the tests not yet on labkit still use, each now labkit's.
// Delete each as its last user moves onto labkit.

const labState = labkit.State

func requireLab(t *testing.T)                         { t.Helper(); labkit.Require(t) }
func lab(t *testing.T, args ...string)                { t.Helper(); labkit.Sh(t, args...) }
func inNS(ns string, args ...string) (string, error)  { return labkit.InNS(ns, args...) }
func status(t *testing.T) *control.Status             { t.Helper(); return labkit.Status(t) }
func httpGetInNS(ns, url string) (string, error)      { return labkit.HTTPGet(ns, url) }
func metricValue(body, prefix string) (float64, bool) { return labkit.Metrics(body).Value(prefix) }
func cgwRoutes(t *testing.T) map[string]labkit.Route  { t.Helper(); return labkit.CgwdRoutes(t) }
func eventually(t *testing.T, timeout time.Duration, what string, cond func() error) {
	t.Helper()
	labkit.Eventually(t, timeout, what, cond)
}
