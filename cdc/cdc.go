package cdc

import (
	"context"
	"errors"
	"strings"

	"github.com/slatehq/slate/schema"
)

// Position is a point in a source's change stream (a PostgreSQL LSN, a
// MySQL binlog file and offset or GTID set). Only the Source that made a
// Position interprets it; String is for logs and metrics.
type Position interface {
	String() string
}

// Event is one envelope and the topic it is published to.
type Event struct {
	Topic    string
	Envelope schema.Envelope
}

// Batch is what a Source hands to the Runner at a time: events in source
// commit order and, optionally, the position that becomes safe to confirm
// once Kafka acknowledged every event of this batch and of all batches
// before it. A batch with a Position and no events moves the position
// forward without publishing (heartbeats, transactions with nothing to
// publish); a batch with events and a nil Position is part of a larger
// unit (a big transaction, a snapshot) whose position comes later.
type Batch struct {
	Events   []Event
	Position Position
}

// EmitFunc receives batches from a Source. It may return before the
// events are acknowledged (the Runner pipelines); it blocks while too many
// events are in flight, and returns an error once publishing failed, after
// which the Source must stop.
type EmitFunc func(ctx context.Context, b Batch) error

// Source streams database changes. Run blocks until ctx ends or the
// stream fails, emitting batches in commit order. Ack tells the Source
// that every event up to and including pos is acknowledged by Kafka, so it
// may confirm pos to the database (advance the replication slot, persist
// the binlog offset). Ack is called from another goroutine than Run, with
// positions in the order they were emitted; it must not block for long.
type Source interface {
	Run(ctx context.Context, emit EmitFunc) error
	Ack(pos Position) error
}

// Errors a caller can branch on.
var (
	// ErrConfig is wrapped by every configuration error.
	ErrConfig = errors.New("cdc: invalid config")
	// ErrClosed is returned by a Runner that was already run.
	ErrClosed = errors.New("cdc: runner already ran")
	// ErrPublish is wrapped when Kafka did not acknowledge a batch; the
	// source position was not confirmed past it, so a restart replays it.
	ErrPublish = errors.New("cdc: publish failed")
)

// Topic returns the CDC topic of a table under the default prefix:
// studio.cdc.<db>.<schema>.<table> (see [TopicIn]).
func Topic(db, schemaName, table string) string {
	return TopicIn(schema.DefaultTopicPrefix, db, schemaName, table)
}

// TopicIn returns the CDC topic of a table under prefix:
// <prefix>cdc.<db>.<schema>.<table>. An empty prefix is
// schema.DefaultTopicPrefix.
func TopicIn(prefix, db, schemaName, table string) string {
	if prefix == "" {
		prefix = schema.DefaultTopicPrefix
	}
	return prefix + "cdc." + db + "." + schemaName + "." + table
}

// Option configures [NewEncoder] and [NewOutboxRouter].
type Option func(*options)

type options struct {
	prefix string
}

func newOptions(opts []Option) options {
	o := options{}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// WithTopicPrefix sets the prefix of the topics events are published to:
// the CDC topics <prefix>cdc.<db>.<schema>.<table> of [Encoder] and the
// changes topics <prefix><aggregatetype>.changes of [OutboxRouter]
// (default schema.DefaultTopicPrefix, "studio."; "" is the default too).
// It should be the prefix of the services' producers and enrichers.
// [NewOutboxRouter] refuses a prefix that cannot start a topic name
// (schema.ValidateTopicPrefix); [NewEncoder] cannot fail and leaves that
// check to its caller (the sources' Config.Validate).
func WithTopicPrefix(prefix string) Option { return func(o *options) { o.prefix = prefix } }

// SourceURI returns the envelope source of a table's events:
// //<connector>/<db>/<schema>/<table>, for example //pg/finance/public/budget.
func SourceURI(connector, db, schemaName, table string) string {
	return "//" + connector + "/" + db + "/" + schemaName + "/" + table
}

// avroName makes s a valid Avro name part: letters, digits and
// underscores, not starting with a digit.
func avroName(s string) string {
	var b strings.Builder
	for i, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_':
			b.WriteRune(r)
		case r >= '0' && r <= '9':
			if i == 0 {
				b.WriteByte('_')
			}
			b.WriteRune(r)
		default:
			b.WriteByte('_')
		}
	}
	if b.Len() == 0 {
		return "_"
	}
	return b.String()
}
