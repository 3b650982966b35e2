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
		Help: "Records sent to a dead-letter topic, by group and source topic.",
	}, []string{"group", "topic"})
	handlerRetries = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_consumer_handler_retries_total",
		Help: "Batches retried after the handler failed, by group.",
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
	lag = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Name: "slate_consumer_lag",
		Help: "High watermark minus committed offset, by group, topic and partition.",
	}, []string{"group", "topic", "partition"})
)
