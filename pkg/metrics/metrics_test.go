package metrics

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/cgwd/cgwd/pkg/control"
	"github.com/prometheus/client_golang/prometheus"
)

// get fetches path from s and returns the status code.
func get(t *testing.T, s *Server, path string) int {
	t.Helper()
	r, err := http.Get("http://" + s.Addr().String() + path)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, r.Body)
	r.Body.Close()
	return r.StatusCode
}

func serve(t *testing.T, s *Server) {
	ctx, cancel := context.WithCancel(context.Background())
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); <-s.Done() })
}

func TestPprofHasItsOwnLoopbackListener(t *testing.T) {
	ms, err := Listen("127.0.0.1:0", prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	serve(t, ms)
	ps, err := ListenPprof("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, ps)
	if c := get(t, ms, "/metrics"); c != http.StatusOK {
		t.Errorf("/metrics: %d", c)
	}
	if c := get(t, ms, "/debug/pprof/"); c != http.StatusNotFound {
		t.Errorf("the metrics listener serves /debug/pprof/: %d", c)
	}
	if c := get(t, ps, "/debug/pprof/"); c != http.StatusOK {
		t.Errorf("pprof listener /debug/pprof/: %d", c)
	}
	if c := get(t, ps, "/metrics"); c != http.StatusNotFound {
		t.Errorf("the pprof listener serves /metrics: %d", c)
	}
	if _, err := ListenPprof("0.0.0.0:0"); err == nil {
		t.Error("pprof on every address accepted")
	}
}

func TestFailClosedRoutesGauge(t *testing.T) {
	reg := NewRegistry(func() control.Status { return control.Status{FailClosedRoutes: 3} })
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "cgwd_fail_closed_routes" {
			if v := mf.GetMetric()[0].GetGauge().GetValue(); v != 3 {
				t.Fatalf("cgwd_fail_closed_routes = %v, want 3", v)
			}
			return
		}
	}
	t.Fatal("no cgwd_fail_closed_routes")
}
