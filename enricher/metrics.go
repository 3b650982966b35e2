package enricher

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/slatehq/slate/internal/promreg"
)

// WithMetrics registers the enricher's metrics (slate_enricher_*) on r;
// the default is prometheus.DefaultRegisterer. They are registered by
// [New], which fails if r holds a different collector under one of their
// names. Enrichers on one Registerer share the collectors, each counting
// under its own entity label.
func WithMetrics(r prometheus.Registerer) Option { return func(c *config) { c.metrics = r } }

// metrics are the collectors of an enricher, all named slate_enricher_*.
type metrics struct {
	eventsIn             *prometheus.CounterVec
	lookups              *prometheus.CounterVec
	materialized         *prometheus.CounterVec
	lookupBatch          *prometheus.HistogramVec
	batchSize            *prometheus.HistogramVec
	coalescing           *prometheus.HistogramVec
	unversionedDeletes   *prometheus.CounterVec
	fannedOut            *prometheus.CounterVec
	retries              *prometheus.CounterVec
	lookupErrors         *prometheus.CounterVec
	deadLetters          *prometheus.CounterVec
	deadLettersTruncated *prometheus.CounterVec
	batchFailures        *prometheus.CounterVec
	breakerState         *prometheus.GaugeVec
	breakerTransitions   *prometheus.CounterVec
}

// newMetrics registers the collectors on r, or finds the equal ones
// already there.
func newMetrics(r prometheus.Registerer) (*metrics, error) {
	s := promreg.NewSet(r)
	m := &metrics{
		eventsIn: s.Counter(prometheus.CounterOpts{
			Name: "slate_enricher_events_total",
			Help: "Change events consumed, by entity type.",
		}, "entity"),
		lookups: s.Counter(prometheus.CounterOpts{
			Name: "slate_enricher_lookups_total",
			Help: "Entity ids looked up after coalescing, by entity type and resolver.",
		}, "entity", "resolver"),
		materialized: s.Counter(prometheus.CounterOpts{
			Name: "slate_enricher_materialized_total",
			Help: "Materialized events published, by entity type and TYPE.",
		}, "entity", "type"),
		lookupBatch: s.Histogram(prometheus.HistogramOpts{
			Name:    "slate_enricher_lookup_batch_size",
			Help:    "Ids per resolver call, by entity type and resolver.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 12),
		}, "entity", "resolver"),
		batchSize: s.Histogram(prometheus.HistogramOpts{
			Name:    "slate_enricher_batch_size",
			Help:    "Events per handled batch, by entity type.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 14),
		}, "entity"),
		coalescing: s.Histogram(prometheus.HistogramOpts{
			Name:    "slate_enricher_coalescing_ratio",
			Help:    "Events of the entity type per distinct id in a batch (1 = nothing coalesced).",
			Buckets: []float64{1, 1.5, 2, 3, 5, 10, 20, 50, 100},
		}, "entity"),
		unversionedDeletes: s.Counter(prometheus.CounterOpts{
			Name: "slate_enricher_unversioned_deletes_total",
			Help: "DELETEs published with the tombstone sequence because neither the change events nor the resolver gave the delete a version, by entity type.",
		}, "entity"),
		fannedOut: s.Counter(prometheus.CounterOpts{
			Name: "slate_enricher_fanout_ids_total",
			Help: "Dependent ids re-materialized because an entity they depend on changed, by entity type and source entity type.",
		}, "entity", "source"),
		retries: s.Counter(prometheus.CounterOpts{
			Name: "slate_enricher_retries_total",
			Help: "Resolver calls retried, by entity type, resolver and gRPC code of the failure.",
		}, "entity", "resolver", "code"),
		lookupErrors: s.Counter(prometheus.CounterOpts{
			Name: "slate_enricher_lookup_errors_total",
			Help: "Failed resolver calls (each attempt), by entity type, resolver and gRPC code.",
		}, "entity", "resolver", "code"),
		deadLetters: s.Counter(prometheus.CounterOpts{
			Name: "slate_enricher_dead_letters_total",
			Help: "Input events sent to <topic>.dlq after a batch failed too often, by entity type and input topic.",
		}, "entity", "topic"),
		deadLettersTruncated: s.Counter(prometheus.CounterOpts{
			Name: "slate_enricher_dead_letters_truncated_total",
			Help: "Input events too large for their dead-letter topic, dead-lettered as a truncated copy, by entity type and input topic.",
		}, "entity", "topic"),
		batchFailures: s.Counter(prometheus.CounterOpts{
			Name: "slate_enricher_batch_failures_total",
			Help: "Handle calls that failed (the consumer retries them), by entity type.",
		}, "entity"),
		breakerState: s.Gauge(prometheus.GaugeOpts{
			Name: "slate_enricher_breaker_state",
			Help: "Circuit breaker state per resolver: 0 closed, 1 open, 2 half-open.",
		}, "resolver"),
		breakerTransitions: s.Counter(prometheus.CounterOpts{
			Name: "slate_enricher_breaker_transitions_total",
			Help: "Circuit breaker state changes, by resolver and new state.",
		}, "resolver", "state"),
	}
	return m, s.Err()
}

// WithSideInputMetrics registers the side input's metrics
// (slate_enricher_side_input_*) on r; the default is
// prometheus.DefaultRegisterer. They are registered by [NewSideInput],
// which fails if r holds a different collector under one of their names.
// Side inputs on one Registerer share the collectors, each under its own
// name label.
func WithSideInputMetrics(r prometheus.Registerer) SideInputOption {
	return func(c *sideConfig) { c.metrics = r }
}

// sideMetrics are the collectors of a side input.
type sideMetrics struct {
	refreshes *prometheus.CounterVec
	stale     *prometheus.GaugeVec
	loaded    *prometheus.GaugeVec
}

// newSideMetrics registers the collectors on r, or finds the equal ones
// already there.
func newSideMetrics(r prometheus.Registerer) (*sideMetrics, error) {
	s := promreg.NewSet(r)
	m := &sideMetrics{
		refreshes: s.Counter(prometheus.CounterOpts{
			Name: "slate_enricher_side_input_refreshes_total",
			Help: "Side input loads, by side input and result (ok, error).",
		}, "name", "result"),
		stale: s.Gauge(prometheus.GaugeOpts{
			Name: "slate_enricher_side_input_stale",
			Help: "1 while a side input serves a value whose last refresh failed, else 0.",
		}, "name"),
		loaded: s.Gauge(prometheus.GaugeOpts{
			Name: "slate_enricher_side_input_loaded_timestamp_seconds",
			Help: "Unix time of the last successful load of a side input.",
		}, "name"),
	}
	return m, s.Err()
}
