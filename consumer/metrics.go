package consumer

import (
	"context"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slatehq/slate/internal/promreg"
)

// WithMetrics registers the consumer's metrics (slate_consumer_*) and
// those of the [ToSinks] and [Deduplicate] handlers it runs (slate_sink_*,
// slate_consumer_duplicates_total and the other dedupe counters) on r;
// the default is prometheus.DefaultRegisterer. They are registered by
// [New], which fails if r holds a different collector under one of their
// names. Consumers on one Registerer share the collectors, each counting
// under its own group label.
func WithMetrics(r prometheus.Registerer) Option { return func(c *config) { c.metrics = r } }

// metrics are the collectors of a consumer and of the handlers it runs.
type metrics struct {
	records              *prometheus.CounterVec
	decodeErrors         *prometheus.CounterVec
	deadLetters          *prometheus.CounterVec
	deadLettersTruncated *prometheus.CounterVec
	handlerRetries       *prometheus.CounterVec
	commitFailures       *prometheus.CounterVec
	duplicates           *prometheus.CounterVec
	held                 *prometheus.CounterVec
	failOpen             *prometheus.CounterVec
	batchSeconds         *prometheus.HistogramVec
	freshness            *prometheus.HistogramVec
	pauses               *prometheus.CounterVec
	paused               *prometheus.GaugeVec
	rebalances           *prometheus.CounterVec
	lag                  *prometheus.GaugeVec
	stalledSeconds       *prometheus.GaugeVec

	sinkSeconds   *prometheus.HistogramVec
	sinkErrors    *prometheus.CounterVec
	sinkEvents    *prometheus.CounterVec
	sinkRejected  *prometheus.CounterVec
	sinkFreshness *prometheus.HistogramVec
}

// newMetrics registers the collectors on r, or finds the equal ones
// already there. The set it returns is usable even when it fails: a
// collector that could not be registered counts unseen.
func newMetrics(r prometheus.Registerer) (*metrics, error) {
	s := promreg.NewSet(r)
	m := &metrics{
		records: s.Counter(prometheus.CounterOpts{
			Name: "slate_consumer_records_total",
			Help: "Records read from Kafka, by consumer group and topic.",
		}, "group", "topic"),
		decodeErrors: s.Counter(prometheus.CounterOpts{
			Name: "slate_consumer_decode_errors_total",
			Help: "Records that could not be decoded as envelopes (poison), by group and topic.",
		}, "group", "topic"),
		deadLetters: s.Counter(prometheus.CounterOpts{
			Name: "slate_consumer_dead_letters_total",
			Help: "Records sent to a dead-letter topic, by group, source topic and stage (decode, sink, handler).",
		}, "group", "topic", "stage"),
		deadLettersTruncated: s.Counter(prometheus.CounterOpts{
			Name: "slate_consumer_dead_letters_truncated_total",
			Help: "Records too large for their dead-letter topic, dead-lettered as a truncated copy, by group, source topic and stage.",
		}, "group", "topic", "stage"),
		handlerRetries: s.Counter(prometheus.CounterOpts{
			Name: "slate_consumer_handler_retries_total",
			Help: "Batches retried after the handler failed, by group.",
		}, "group"),
		commitFailures: s.Counter(prometheus.CounterOpts{
			Name: "slate_consumer_commit_failures_total",
			Help: "Offset commits the group refused (kept and retried while the partitions stay assigned), by group.",
		}, "group"),
		duplicates: s.Counter(prometheus.CounterOpts{
			Name: "slate_consumer_duplicates_total",
			Help: "Events dropped as duplicates by the dedupe store, by group.",
		}, "group"),
		held: s.Counter(prometheus.CounterOpts{
			Name: "slate_consumer_dedupe_held_total",
			Help: "Events found held by another consumer's dedupe claim, each time a batch met them (the batch waits and retries), by group.",
		}, "group"),
		failOpen: s.Counter(prometheus.CounterOpts{
			Name: "slate_consumer_dedupe_fail_open_total",
			Help: "Batches passed to the sinks without dedupe because the store was unavailable (DedupeConfig.FailOpen), by group.",
		}, "group"),
		batchSeconds: s.Histogram(prometheus.HistogramOpts{
			Name:    "slate_consumer_batch_seconds",
			Help:    "Time to handle one batch, retries included, by group.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, "group"),
		freshness: s.Histogram(prometheus.HistogramOpts{
			Name:    "slate_consumer_freshness_seconds",
			Help:    "Now minus the event's time when the handler finished with it, by group and topic.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 20),
		}, "group", "topic"),
		pauses: s.Counter(prometheus.CounterOpts{
			Name: "slate_consumer_pauses_total",
			Help: "Times the consumer paused its partitions while a failed batch waited for a retry, by group.",
		}, "group"),
		paused: s.Gauge(prometheus.GaugeOpts{
			Name: "slate_consumer_paused",
			Help: "1 while the consumer's partitions are paused for a retry, by group.",
		}, "group"),
		rebalances: s.Counter(prometheus.CounterOpts{
			Name: "slate_consumer_rebalances_total",
			Help: "Partitions assigned or revoked by group rebalances, by group and kind (assigned, revoked).",
		}, "group", "kind"),
		lag: s.Gauge(prometheus.GaugeOpts{
			Name: "slate_consumer_lag",
			Help: "High watermark minus committed offset, by group, topic and partition; updated on commit and every second while paused.",
		}, "group", "topic", "partition"),
		stalledSeconds: s.Gauge(prometheus.GaugeOpts{
			Name: "slate_consumer_stalled_seconds",
			Help: "How long the current batch has been failing while the consumer waits to retry it (0 when none is), by group.",
		}, "group"),

		sinkSeconds: s.Histogram(prometheus.HistogramOpts{
			Name:    "slate_sink_write_seconds",
			Help:    "Time of one sink write, failed ones included, by sink.",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
		}, "sink"),
		sinkErrors: s.Counter(prometheus.CounterOpts{
			Name: "slate_sink_errors_total",
			Help: "Failed sink writes, by sink.",
		}, "sink"),
		sinkEvents: s.Counter(prometheus.CounterOpts{
			Name: "slate_sink_events_total",
			Help: "Events a sink wrote successfully (retries count again), by sink.",
		}, "sink"),
		sinkRejected: s.Counter(prometheus.CounterOpts{
			Name: "slate_sink_rejected_total",
			Help: "Events a sink refused for good (dead-lettered with stage sink when a dead-letter topic is set), by sink.",
		}, "sink"),
		sinkFreshness: s.Histogram(prometheus.HistogramOpts{
			Name:    "slate_sink_freshness_seconds",
			Help:    "Now minus the event's time when a sink finished writing it, by sink.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2, 20),
		}, "sink"),
	}
	return m, s.Err()
}

// metricsKey is the context key of the metrics of the consumer that runs
// a handler.
type metricsKey struct{}

// withMetrics returns ctx carrying m, for the handlers the consumer calls.
func withMetrics(ctx context.Context, m *metrics) context.Context {
	return context.WithValue(ctx, metricsKey{}, m)
}

// defaultMetrics are the metrics of a [ToSinks] or [Deduplicate] handler
// called outside a consumer, registered on prometheus.DefaultRegisterer at
// the first such call.
var defaultMetrics = sync.OnceValue(func() *metrics {
	m, _ := newMetrics(prometheus.DefaultRegisterer)
	return m
})

// metricsOf returns the metrics of the consumer running the handler that
// was given ctx, or the default ones outside a consumer.
func metricsOf(ctx context.Context) *metrics {
	if m, ok := ctx.Value(metricsKey{}).(*metrics); ok {
		return m
	}
	return defaultMetrics()
}
