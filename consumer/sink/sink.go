// Package sink defines the contract between the consumer runtime and the
// stores it keeps in step (Elasticsearch, the Hive audit table, Kafka), and
// the event type they receive. Each sink lives in its own subpackage and
// passes the shared suite in sinktest.
package sink

import (
	"context"
	"errors"

	"github.com/slatehq/slate/schema"
)

// Event is one decoded envelope with the Kafka coordinates it was read from.
// Sinks that write files derive names from the coordinates so that a replay
// of the same offsets overwrites instead of doubling.
type Event struct {
	schema.Envelope
	Topic     string
	Partition int32
	Offset    int64
}

// Sink applies batches of events to a store.
//
// Write returns nil only when every event of the batch is durably applied;
// an error means none may be marked done, and the whole batch will be
// retried. Sinks are idempotent by the envelope's id and sequence, so a
// retry or a replay is safe. Write is not called concurrently.
//
// Close flushes what is buffered and releases resources within ctx's
// deadline; calls after Close return [ErrClosed].
type Sink interface {
	Write(ctx context.Context, batch []Event) error
	Close(ctx context.Context) error
}

// ErrClosed is returned by calls on a closed sink.
var ErrClosed = errors.New("sink: closed")

// Func adapts a function to a [Sink] whose Close does nothing.
type Func func(ctx context.Context, batch []Event) error

// Write calls f.
func (f Func) Write(ctx context.Context, batch []Event) error { return f(ctx, batch) }

// Close does nothing.
func (Func) Close(context.Context) error { return nil }
