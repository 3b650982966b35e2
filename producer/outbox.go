package producer

import (
	"context"

	"github.com/slatehq/slate/outbox"
	"github.com/slatehq/slate/schema"
)

// The transactional outbox lives in package outbox, which builds without
// cgo; these names keep it reachable from the producer, where a service
// that also publishes finds it.
const (
	// OutboxTable is the table an [Outbox] writes to ([outbox.Table]).
	OutboxTable = outbox.Table
	// OutboxDDLPostgres creates the outbox table in PostgreSQL
	// ([outbox.DDLPostgres]).
	OutboxDDLPostgres = outbox.DDLPostgres
	// OutboxDDLMySQL creates the outbox table in MySQL or MariaDB
	// ([outbox.DDLMySQL]).
	OutboxDDLMySQL = outbox.DDLMySQL
)

// ErrOutbox is wrapped by every error of an [Outbox] write that the
// database returned ([outbox.ErrWrite]). The caller's transaction should
// be rolled back.
var ErrOutbox = outbox.ErrWrite

// Outbox writes change events into the outbox table inside the caller's
// database transaction: it is [outbox.Writer].
type Outbox = outbox.Writer

// PgExecer is what [EnsureOutbox] needs of a PostgreSQL connection
// ([outbox.PgExecer]).
type PgExecer = outbox.PgExecer

// SQLExecer is what [EnsureOutboxMySQL] needs of a database/sql handle
// ([outbox.SQLExecer]).
type SQLExecer = outbox.SQLExecer

// EnsureOutbox creates the outbox table in PostgreSQL if it does not exist
// ([outbox.Ensure]).
func EnsureOutbox(ctx context.Context, db PgExecer) error { return outbox.Ensure(ctx, db) }

// EnsureOutboxMySQL creates the outbox table in MySQL or MariaDB if it does
// not exist ([outbox.EnsureMySQL]).
func EnsureOutboxMySQL(ctx context.Context, db SQLExecer) error { return outbox.EnsureMySQL(ctx, db) }

// NewOutbox returns an outbox that encodes with codec and stamps source on
// the change events it builds ([outbox.New]). Its configuration errors
// match both [ErrConfig] and outbox.ErrConfig.
func NewOutbox(codec *schema.Codec, source string, opts ...outbox.Option) (*Outbox, error) {
	o, err := outbox.New(codec, source, opts...)
	if err != nil {
		return nil, outboxConfigError{err}
	}
	return o, nil
}

// outboxConfigError is a configuration error of package outbox that also
// matches [ErrConfig].
type outboxConfigError struct{ err error }

func (e outboxConfigError) Error() string        { return e.err.Error() }
func (e outboxConfigError) Unwrap() error        { return e.err }
func (e outboxConfigError) Is(target error) bool { return target == ErrConfig }

// Outbox returns an outbox that encodes with the producer's codec, source
// and topic prefix. It does not use the Kafka connection, and keeps
// working after Close.
func (p *Producer) Outbox() *Outbox {
	o, err := outbox.New(p.codec, p.source, outbox.WithTopicPrefix(p.topicPrefix))
	if err != nil {
		// New refused a nil codec, an empty source or a bad prefix: all
		// were checked when the producer was built.
		panic(err)
	}
	return o
}
