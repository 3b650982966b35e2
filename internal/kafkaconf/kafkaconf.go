// Package kafkaconf builds the librdkafka settings every slate client starts
// from, so producers and consumers agree on safety settings and the
// embedded broker works without per-client tweaks.
package kafkaconf

import (
	"fmt"
	"strings"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Producer returns the settings of a safe producer: idempotent, acks=all,
// compressed, then overrides applied in order. linger.ms is 0: most
// publishes wait for their acknowledgement (one change event per service
// write), and a linger only adds its length to each; under asynchronous
// load librdkafka still batches what queues up while a request is in
// flight (measured in bench/RESULTS.md: async throughput is the same at 0
// and 5 ms, synchronous publishes are 20x faster at 0).
func Producer(brokers string, overrides ...kafka.ConfigMap) (*kafka.ConfigMap, error) {
	cm := kafka.ConfigMap{
		"bootstrap.servers":                     brokers,
		"enable.idempotence":                    true,
		"acks":                                  "all",
		"compression.type":                      "lz4",
		"linger.ms":                             0,
		"max.in.flight.requests.per.connection": 5,
		"enable.metrics.push":                   false,
		"go.logs.channel.enable":                false,
	}
	return merge(cm, overrides)
}

// Consumer returns the settings of a group consumer that commits only
// offsets it was told to (auto-commit off, no automatic offset store), then
// overrides applied in order. With enable.auto.commit turned back on, only
// offsets explicitly stored are committed in the background.
func Consumer(brokers, group string, overrides ...kafka.ConfigMap) (*kafka.ConfigMap, error) {
	cm := kafka.ConfigMap{
		"bootstrap.servers":                  brokers,
		"group.id":                           group,
		"enable.auto.commit":                 false,
		"enable.auto.offset.store":           false,
		"auto.offset.reset":                  "earliest",
		"partition.assignment.strategy":      "cooperative-sticky",
		"enable.partition.eof":               false,
		"enable.metrics.push":                false,
		"session.timeout.ms":                 10000,
		"heartbeat.interval.ms":              1000,
		"topic.metadata.refresh.interval.ms": 5000,
	}
	return merge(cm, overrides)
}

func merge(cm kafka.ConfigMap, overrides []kafka.ConfigMap) (*kafka.ConfigMap, error) {
	if s, _ := cm["bootstrap.servers"].(string); strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("kafkaconf: bootstrap.servers is empty")
	}
	for _, o := range overrides {
		for k, v := range o {
			cm[k] = v
		}
	}
	return &cm, nil
}
