package registry_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slatehq/slate/schema/registry"
)

// The registry serves its own metrics at GET /metrics, as every slate
// server does: requests by route and status, and how many schemas and
// subjects it holds.
func TestMetricsEndpoint(t *testing.T) {
	tr := newTestRegistry(t)
	if status, _ := tr.do(t, http.MethodPost, "/subjects/orders-value/versions", map[string]string{"schema": record(`{"name":"a","type":"string"}`)}); status != http.StatusOK {
		t.Fatalf("register: %d", status)
	}
	tr.do(t, http.MethodGet, "/subjects/none/versions", nil)
	status, body := tr.do(t, http.MethodGet, "/metrics", nil)
	if status != http.StatusOK {
		t.Fatalf("GET /metrics: %d", status)
	}
	for _, want := range []string{
		`slate_registry_requests_total{code="200",method="POST",route="POST /subjects/{subject}/versions"} 1`,
		`slate_registry_requests_total{code="404",method="GET",route="GET /subjects/{subject}/versions"} 1`,
		"slate_registry_schemas 1",
		"slate_registry_subjects 1",
		"go_goroutines",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// With WithMetrics the metrics go to the caller's registry.
func TestMetricsOnCallersRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	tr := newTestRegistry(t, registry.WithMetrics(reg))
	tr.do(t, http.MethodGet, "/subjects", nil)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, mf := range mfs {
		if mf.GetName() == "slate_registry_requests_total" {
			n = len(mf.GetMetric())
		}
	}
	if n != 1 {
		t.Fatalf("caller's registry holds %d request series, want 1", n)
	}
}
