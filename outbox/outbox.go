// Package outbox is the transactional outbox of slate: a service that
// writes its own database inserts its change events into the slate_outbox
// table in the same transaction as the change ([Writer.WriteChange] for
// pgx, [Writer.WriteChangeMySQL] for database/sql on MySQL or MariaDB), and
// the CDC sidecar publishes each committed row to <prefix><entity>.changes
// (studio.<entity>.changes by default, see [WithTopicPrefix]), so an event
// exists exactly when its change was committed. The table's DDL is [DDLPostgres] / [DDLMySQL] ([Ensure],
// [EnsureMySQL]).
//
// The package needs only the schema codec and a database handle: it does
// not import a Kafka client, so a service that only writes its outbox, and
// the CDC sources that read it, build without cgo. *producer.Producer
// hands out a [Writer] with its own codec, source and topic prefix
// (Producer.Outbox).
package outbox

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.opentelemetry.io/otel/trace"

	"github.com/slatehq/slate/schema"
)

// Table is the table a [Writer] writes to.
const Table = "slate_outbox"

// DDLPostgres creates the outbox table in PostgreSQL. Its columns are
// those of Debezium's outbox event router: id (the envelope id),
// aggregatetype (the entity type), aggregateid (the entity id, the Kafka
// key), type (the op) and payload (the envelope, Confluent-framed Avro).
const DDLPostgres = `CREATE TABLE IF NOT EXISTS ` + Table + ` (
	id            uuid        PRIMARY KEY,
	aggregatetype text        NOT NULL,
	aggregateid   text        NOT NULL,
	type          text        NOT NULL,
	payload       bytea       NOT NULL,
	created_at    timestamptz NOT NULL DEFAULT now()
)`

// DDLMySQL creates the outbox table in MySQL or MariaDB, with the
// columns of [DDLPostgres]; created_at is kept in UTC with
// microseconds.
const DDLMySQL = `CREATE TABLE IF NOT EXISTS ` + Table + ` (
	id            char(36)     NOT NULL PRIMARY KEY,
	aggregatetype text         NOT NULL,
	aggregateid   text         NOT NULL,
	type          text         NOT NULL,
	payload       longblob     NOT NULL,
	created_at    timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
)`

const (
	insertPostgres = `INSERT INTO ` + Table +
		` (id, aggregatetype, aggregateid, type, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)`
	insertMySQL = `INSERT INTO ` + Table +
		` (id, aggregatetype, aggregateid, type, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)`
	// mysqlTimeLayout is a DATETIME/TIMESTAMP literal with microseconds.
	mysqlTimeLayout = "2006-01-02 15:04:05.000000"
)

// Errors a caller can branch on.
var (
	// ErrWrite is wrapped by every error of a [Writer] write that the
	// database returned. The caller's transaction should be rolled back.
	ErrWrite = errors.New("outbox: write failed")
	// ErrConfig is wrapped by every configuration error of [New].
	ErrConfig = errors.New("outbox: invalid config")
)

// PgExecer is what [Ensure] needs of a PostgreSQL connection:
// *pgx.Conn, *pgxpool.Pool and pgx.Tx all have it.
type PgExecer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// SQLExecer is what [EnsureMySQL] needs of a database/sql handle:
// *sql.DB, *sql.Conn and *sql.Tx all have it.
type SQLExecer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// Ensure creates the outbox table in PostgreSQL if it does not exist.
func Ensure(ctx context.Context, db PgExecer) error {
	if _, err := db.Exec(ctx, DDLPostgres); err != nil {
		return fmt.Errorf("outbox: create %s: %w", Table, err)
	}
	return nil
}

// EnsureMySQL creates the outbox table in MySQL or MariaDB if it does not
// exist.
func EnsureMySQL(ctx context.Context, db SQLExecer) error {
	if _, err := db.ExecContext(ctx, DDLMySQL); err != nil {
		return fmt.Errorf("outbox: create %s: %w", Table, err)
	}
	return nil
}

// Writer writes change events into the outbox table inside the caller's
// database transaction, so the event exists exactly when the change it
// reports was committed (no dual write). The CDC sidecar reads the table's
// inserts and publishes each payload to <prefix><aggregatetype>.changes
// (studio.<aggregatetype>.changes by default), keyed by aggregateid.
//
// Each row's payload is the envelope as a producer would put it on Kafka:
// Confluent-framed Avro, its schema registered under the value subject of
// the changes topic of the entity type ([WithTopicPrefix]). The row id is the envelope id,
// so a row published twice is dropped by dedupe. A Writer is safe for
// concurrent use.
type Writer struct {
	codec  *schema.Codec
	source string
	prefix string
}

// Option configures [New].
type Option func(*Writer)

// WithTopicPrefix sets the prefix of the changes topics the payloads are
// encoded for, <prefix><entity>.changes (default
// [schema.DefaultTopicPrefix]; "" is the default too). It should be the
// topic prefix of the CDC sidecar, which publishes the rows there.
func WithTopicPrefix(prefix string) Option { return func(w *Writer) { w.prefix = prefix } }

// New returns a writer that encodes with codec and stamps source on the
// change events it builds.
func New(codec *schema.Codec, source string, opts ...Option) (*Writer, error) {
	w := &Writer{codec: codec, source: source}
	for _, o := range opts {
		o(w)
	}
	switch {
	case codec == nil:
		return nil, fmt.Errorf("%w: codec is nil", ErrConfig)
	case source == "":
		return nil, fmt.Errorf("%w: source is empty", ErrConfig)
	}
	if err := schema.ValidateTopicPrefix(w.prefix); err != nil {
		return nil, fmt.Errorf("%w: WithTopicPrefix: %w", ErrConfig, err)
	}
	if w.prefix == "" {
		w.prefix = schema.DefaultTopicPrefix
	}
	return w, nil
}

// NewChange builds the ID-only change envelope [Writer.WriteChange] writes.
func (o *Writer) NewChange(ctx context.Context, entityType, id string, op schema.Op, seq int64) schema.Envelope {
	e := schema.NewEnvelope(o.source, op, entityType, id)
	e.Sequence = seq
	e.TraceParent = traceParent(ctx)
	return e
}

// WriteChange inserts an ID-only change event for one entity into the
// outbox within tx and returns the envelope written. It neither commits nor
// rolls back tx.
func (o *Writer) WriteChange(ctx context.Context, tx pgx.Tx, entityType, id string, op schema.Op, seq int64) (schema.Envelope, error) {
	e := o.NewChange(ctx, entityType, id, op, seq)
	return e, o.Write(ctx, tx, e)
}

// Write inserts envelopes into the outbox within tx, in order. Each is
// encoded for the changes topic of its entity type. An invalid envelope
// or a registry failure is reported before anything is inserted.
func (o *Writer) Write(ctx context.Context, tx pgx.Tx, envs ...schema.Envelope) error {
	rows, err := o.rows(ctx, envs)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if _, err := tx.Exec(ctx, insertPostgres, r...); err != nil {
			return fmt.Errorf("%w: insert %s: %w", ErrWrite, r[0], err)
		}
	}
	return nil
}

// WriteChangeMySQL is [Writer.WriteChange] for a MySQL or MariaDB
// transaction.
func (o *Writer) WriteChangeMySQL(ctx context.Context, tx *sql.Tx, entityType, id string, op schema.Op, seq int64) (schema.Envelope, error) {
	e := o.NewChange(ctx, entityType, id, op, seq)
	return e, o.WriteMySQL(ctx, tx, e)
}

// WriteMySQL is [Writer.Write] for a MySQL or MariaDB transaction (it uses
// ? placeholders). created_at is sent as a UTC 'YYYY-MM-DD hh:mm:ss.ffffff'
// string rather than a time.Time, which not every driver accepts (go-mysql's
// does not); it is stored as given when the session time zone is UTC, as
// go-sql-driver/mysql's default loc=UTC also assumes.
func (o *Writer) WriteMySQL(ctx context.Context, tx *sql.Tx, envs ...schema.Envelope) error {
	rows, err := o.rows(ctx, envs)
	if err != nil {
		return err
	}
	for _, r := range rows {
		r[5] = r[5].(time.Time).Format(mysqlTimeLayout)
		if _, err := tx.ExecContext(ctx, insertMySQL, r...); err != nil {
			return fmt.Errorf("%w: insert %s: %w", ErrWrite, r[0], err)
		}
	}
	return nil
}

// rows encodes every envelope first, so that nothing is inserted when one
// of them cannot be encoded.
func (o *Writer) rows(ctx context.Context, envs []schema.Envelope) ([][]any, error) {
	rows := make([][]any, 0, len(envs))
	for i := range envs {
		e := &envs[i]
		payload, err := o.codec.Encode(ctx, nil, schema.ChangesTopicIn(o.prefix, e.EntityType), e)
		if err != nil {
			return nil, fmt.Errorf("outbox: encode %s %s: %w", e.EntityType, e.Subject, err)
		}
		rows = append(rows, []any{e.ID, e.EntityType, e.Subject, string(e.Type), payload, e.Time.UTC()})
	}
	return rows, nil
}

// traceParent returns the W3C traceparent of the span in ctx, or "" when
// there is none: the one producer.TraceParent returns.
func traceParent(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return ""
	}
	return fmt.Sprintf("00-%s-%s-%s", sc.TraceID(), sc.SpanID(), sc.TraceFlags())
}
