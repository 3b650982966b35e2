package registry

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the registry's request and content gauges. They are
// registered on the Registerer of [WithMetrics], or on a registry of the
// server's own that GET /metrics serves (with the Go and process
// collectors) when none is given.
type metrics struct {
	requests *prometheus.CounterVec
	seconds  *prometheus.HistogramVec
	handler  http.Handler // GET /metrics
}

// WithMetrics registers the server's metrics on r instead of a registry of
// its own; GET /metrics then serves r's metrics when r is also a
// prometheus.Gatherer (a *prometheus.Registry), and 404 otherwise, for the
// caller to serve them itself.
func WithMetrics(r prometheus.Registerer) Option { return func(o *options) { o.metrics = r } }

func newMetrics(r prometheus.Registerer, s *Server) *metrics {
	var g prometheus.Gatherer
	if r == nil {
		own := prometheus.NewRegistry()
		own.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		r, g = own, own
	} else if gg, ok := r.(prometheus.Gatherer); ok {
		g = gg
	}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slate_registry_requests_total",
			Help: "Registry HTTP requests, by method, route and status code.",
		}, []string{"method", "route", "code"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "slate_registry_request_seconds",
			Help:    "Registry HTTP request durations, by method and route.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 4, 8),
		}, []string{"method", "route"}),
	}
	content := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "slate_registry_schemas",
		Help: "Distinct schemas the registry holds (hard-deleted ones not counted).",
	}, func() float64 { return float64(s.counts().schemas) })
	subjects := prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "slate_registry_subjects",
		Help: "Subjects with at least one version that is not soft-deleted.",
	}, func() float64 { return float64(s.counts().subjects) })
	r.MustRegister(m.requests, m.seconds, content, subjects)
	m.handler = http.NotFoundHandler()
	if g != nil {
		m.handler = promhttp.HandlerFor(g, promhttp.HandlerOpts{})
	}
	return m
}

func (m *metrics) observe(method, route string, code int, d time.Duration) {
	if route == "" {
		route = "unmatched"
	}
	m.requests.WithLabelValues(method, route, strconv.Itoa(code)).Inc()
	m.seconds.WithLabelValues(method, route).Observe(d.Seconds())
}
