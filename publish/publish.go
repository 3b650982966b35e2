// Package publish holds the contracts between slate's components and the
// Kafka client that publishes for them: the CDC runner, the enricher, the
// Kafka sink and the dead-letter writers of the enricher and the consumer
// all take one of these interfaces, and *producer.Producer implements every
// one of them.
//
// The package imports neither confluent-kafka-go nor any other Kafka
// client, so a component that publishes only through these contracts (the
// CDC sources, for one) builds without cgo, and a test or another client
// can stand in for the producer.
//
// The packages that take a publisher keep their own names for it as type
// aliases (cdc.Publisher, cdc.AsyncPublisher, enricher.Publisher,
// kafka.Publisher, enricher.DeadLetterPublisher,
// consumer.DeadLetterPublisher, and producer.Delivery for [Delivery]), so
// that their docs read on their own and code that names them keeps
// compiling. An alias is the type declared here, not a copy: the contract
// is written once.
package publish

import (
	"context"

	"github.com/slatehq/slate/schema"
)

// Publisher sends envelopes to a topic, keyed by subject, and returns only
// after the broker acknowledged all of them, in order per key.
type Publisher interface {
	Publish(ctx context.Context, topic string, envs ...schema.Envelope) error
}

// AsyncPublisher is a [Publisher] that can also enqueue one envelope and
// report its acknowledgement later through fn, keeping the enqueue order
// per key. fn is called exactly once per envelope PublishAsync accepted
// (returned nil for); it must not block.
type AsyncPublisher interface {
	Publisher
	PublishAsync(ctx context.Context, topic string, e schema.Envelope, fn func(Delivery)) error
}

// Delivery is the outcome of one asynchronous publish.
type Delivery struct {
	Topic     string
	Partition int32
	Offset    int64
	ID        string // the envelope id
	Err       error  // nil when the broker acknowledged the record
}

// DeadLetterPublisher writes one record as given (no envelope encoding),
// as a dead-letter writer keeps the original bytes of a record, and
// returns after the broker acknowledged it.
type DeadLetterPublisher interface {
	PublishRaw(ctx context.Context, topic string, key, value []byte, headers []schema.Header) error
}
