package consumer

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	recordsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_consumer_records_total",
		Help: "Records read from Kafka, by consumer group and topic.",
	}, []string{"group", "topic"})
	decodeErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_consumer_decode_errors_total",
		Help: "Records that could not be decoded as envelopes (poison), by group and topic.",
	}, []string{"group", "topic"})
	deadLetters = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_consumer_dead_letters_total",
		Help: "Records sent to a dead-letter topic, by group, source topic and stage (decode, sink, handler).",
	}, []string{"group", "topic", "stage"})
	handlerRetries = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_consumer_handler_retries_total",
		Help: "Batches retried after the handler failed, by group.",
	}, []string{"group"})
	commitFailures = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_consumer_commit_failures_total",
		Help: "Offset commits the group refused (kept and retried while the partitions stay assigned), by group.",
	}, []string{"group"})
	duplicatesTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_consumer_duplicates_total",
		Help: "Events dropped as duplicates by the dedupe store, by group.",
	}, []string{"group"})
	batchSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "slate_consumer_batch_seconds",
		Help:    "Time to handle one batch, retries included, by group.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"group"})
	freshness = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "slate_consumer_freshness_seconds",
		Help:    "Now minus the event's time when the handler finished with it, by group and topic.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 20),
	}, []string{"group", "topic"})
	failOpen = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_consumer_dedupe_fail_open_total",
		Help: "Batches passed to the sinks without dedupe because the store was unavailable (DedupeConfig.FailOpen), by group.",
	}, []string{"group"})
	pauses = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_consumer_pauses_total",
		Help: "Times the consumer paused its partitions while a failed batch waited for a retry, by group.",
	}, []string{"group"})
	paused = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "slate_consumer_paused",
		Help: "1 while the consumer's partitions are paused for a retry, by group.",
	}, []string{"group"})
	rebalances = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_consumer_rebalances_total",
		Help: "Partitions assigned or revoked by group rebalances, by group and kind (assigned, revoked).",
	}, []string{"group", "kind"})
	sinkSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "slate_sink_write_seconds",
		Help:    "Time of one sink write, failed ones included, by sink.",
		Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16),
	}, []string{"sink"})
	sinkErrors = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_sink_errors_total",
		Help: "Failed sink writes, by sink.",
	}, []string{"sink"})
	sinkEvents = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_sink_events_total",
		Help: "Events a sink wrote successfully (retries count again), by sink.",
	}, []string{"sink"})
	sinkFreshness = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "slate_sink_freshness_seconds",
		Help:    "Now minus the event's time when a sink finished writing it, by sink.",
		Buckets: prometheus.ExponentialBuckets(0.001, 2, 20),
	}, []string{"sink"})
	lag = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "slate_consumer_lag",
		Help: "High watermark minus committed offset, by group, topic and partition; updated on commit and every second while paused.",
	}, []string{"group", "topic", "partition"})
	stalledSeconds = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "slate_consumer_stalled_seconds",
		Help: "How long the current batch has been failing while the consumer waits to retry it (0 when none is), by group.",
	}, []string{"group"})
	deadLettersTruncated = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_consumer_dead_letters_truncated_total",
		Help: "Records too large for their dead-letter topic, dead-lettered as a truncated copy, by group, source topic and stage.",
	}, []string{"group", "topic", "stage"})
)

var sinkRejected = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "slate_sink_rejected_total",
	Help: "Events a sink refused for good (dead-lettered with stage sink when a dead-letter topic is set), by sink.",
}, []string{"sink"})

var held = promauto.NewCounterVec(prometheus.CounterOpts{
	Name: "slate_consumer_dedupe_held_total",
	Help: "Events found held by another consumer's dedupe claim, each time a batch met them (the batch waits and retries), by group.",
}, []string{"group"})
