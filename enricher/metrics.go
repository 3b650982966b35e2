package enricher

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

// The enricher's metrics, all named slate_enricher_*.
var (
	eventsIn = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_enricher_events_total",
		Help: "Change events consumed, by entity type.",
	}, []string{"entity"})
	lookups = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_enricher_lookups_total",
		Help: "Entity ids looked up after coalescing, by entity type and resolver.",
	}, []string{"entity", "resolver"})
	materialized = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_enricher_materialized_total",
		Help: "Materialized events published, by entity type and TYPE.",
	}, []string{"entity", "type"})
	lookupBatch = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "slate_enricher_lookup_batch_size",
		Help:    "Ids per resolver call, by entity type and resolver.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 12),
	}, []string{"entity", "resolver"})
	batchSize = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "slate_enricher_batch_size",
		Help:    "Events per handled batch, by entity type.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 14),
	}, []string{"entity"})
	coalescing = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "slate_enricher_coalescing_ratio",
		Help:    "Events of the entity type per distinct id in a batch (1 = nothing coalesced).",
		Buckets: []float64{1, 1.5, 2, 3, 5, 10, 20, 50, 100},
	}, []string{"entity"})
	unversionedDeletes = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_enricher_unversioned_deletes_total",
		Help: "DELETEs published with the tombstone sequence because neither the change events nor the resolver gave the delete a version, by entity type.",
	}, []string{"entity"})
	fannedOut = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_enricher_fanout_ids_total",
		Help: "Dependent ids re-materialized because an entity they depend on changed, by entity type and source entity type.",
	}, []string{"entity", "source"})
	retries = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_enricher_retries_total",
		Help: "Resolver calls retried, by entity type, resolver and gRPC code of the failure.",
	}, []string{"entity", "resolver", "code"})
	lookupErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_enricher_lookup_errors_total",
		Help: "Failed resolver calls (each attempt), by entity type, resolver and gRPC code.",
	}, []string{"entity", "resolver", "code"})
	deadLetters = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_enricher_dead_letters_total",
		Help: "Input events sent to <topic>.dlq after a batch failed too often, by entity type and input topic.",
	}, []string{"entity", "topic"})
	deadLettersTruncated = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_enricher_dead_letters_truncated_total",
		Help: "Input events too large for their dead-letter topic, dead-lettered as a truncated copy, by entity type and input topic.",
	}, []string{"entity", "topic"})
	batchFailures = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_enricher_batch_failures_total",
		Help: "Handle calls that failed (the consumer retries them), by entity type.",
	}, []string{"entity"})
	breakerState = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "slate_enricher_breaker_state",
		Help: "Circuit breaker state per resolver: 0 closed, 1 open, 2 half-open.",
	}, []string{"resolver"})
	breakerTransitions = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_enricher_breaker_transitions_total",
		Help: "Circuit breaker state changes, by resolver and new state.",
	}, []string{"resolver", "state"})
	sideRefreshes = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_enricher_side_input_refreshes_total",
		Help: "Side input loads, by side input and result (ok, error).",
	}, []string{"name", "result"})
	sideStale = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "slate_enricher_side_input_stale",
		Help: "1 while a side input serves a value whose last refresh failed, else 0.",
	}, []string{"name"})
	sideLoaded = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "slate_enricher_side_input_loaded_timestamp_seconds",
		Help: "Unix time of the last successful load of a side input.",
	}, []string{"name"})
)
