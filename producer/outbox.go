package producer

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/slatehq/slate/schema"
)

// OutboxTable is the table an [Outbox] writes to.
const OutboxTable = "slate_outbox"

// OutboxDDLPostgres creates the outbox table in PostgreSQL. Its columns are
// those of Debezium's outbox event router: id (the envelope id),
// aggregatetype (the entity type), aggregateid (the entity id, the Kafka
// key), type (the op) and payload (the envelope, Confluent-framed Avro).
const OutboxDDLPostgres = `CREATE TABLE IF NOT EXISTS ` + OutboxTable + ` (
	id            uuid        PRIMARY KEY,
	aggregatetype text        NOT NULL,
	aggregateid   text        NOT NULL,
	type          text        NOT NULL,
	payload       bytea       NOT NULL,
	created_at    timestamptz NOT NULL DEFAULT now()
)`

// OutboxDDLMySQL creates the outbox table in MySQL or MariaDB, with the
// columns of [OutboxDDLPostgres]; created_at is kept in UTC with
// microseconds.
const OutboxDDLMySQL = `CREATE TABLE IF NOT EXISTS ` + OutboxTable + ` (
	id            char(36)     NOT NULL PRIMARY KEY,
	aggregatetype text         NOT NULL,
	aggregateid   text         NOT NULL,
	type          text         NOT NULL,
	payload       longblob     NOT NULL,
	created_at    timestamp(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
)`

const (
	outboxInsertPostgres = `INSERT INTO ` + OutboxTable +
		` (id, aggregatetype, aggregateid, type, payload, created_at) VALUES ($1, $2, $3, $4, $5, $6)`
	outboxInsertMySQL = `INSERT INTO ` + OutboxTable +
		` (id, aggregatetype, aggregateid, type, payload, created_at) VALUES (?, ?, ?, ?, ?, ?)`
	// mysqlTimeLayout is a DATETIME/TIMESTAMP literal with microseconds.
	mysqlTimeLayout = "2006-01-02 15:04:05.000000"
)

// ErrOutbox is wrapped by every error of an [Outbox] write that the
// database returned. The caller's transaction should be rolled back.
var ErrOutbox = errors.New("producer: outbox write failed")

// PgExecer is what [EnsureOutbox] needs of a PostgreSQL connection:
// *pgx.Conn, *pgxpool.Pool and pgx.Tx all have it.
type PgExecer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// SQLExecer is what [EnsureOutboxMySQL] needs of a database/sql handle:
// *sql.DB, *sql.Conn and *sql.Tx all have it.
type SQLExecer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

// EnsureOutbox creates the outbox table in PostgreSQL if it does not exist.
func EnsureOutbox(ctx context.Context, db PgExecer) error {
	if _, err := db.Exec(ctx, OutboxDDLPostgres); err != nil {
		return fmt.Errorf("producer: create %s: %w", OutboxTable, err)
	}
	return nil
}

// EnsureOutboxMySQL creates the outbox table in MySQL or MariaDB if it does
// not exist.
func EnsureOutboxMySQL(ctx context.Context, db SQLExecer) error {
	if _, err := db.ExecContext(ctx, OutboxDDLMySQL); err != nil {
		return fmt.Errorf("producer: create %s: %w", OutboxTable, err)
	}
	return nil
}

// Outbox writes change events into the outbox table inside the caller's
// database transaction, so the event exists exactly when the change it
// reports was committed (no dual write). The CDC sidecar reads the table's
// inserts and publishes each payload to studio.<aggregatetype>.changes,
// keyed by aggregateid.
//
// Each row's payload is the envelope as a [Producer] would put it on Kafka:
// Confluent-framed Avro, its schema registered under the value subject of
// [schema.ChangesTopic] of the entity type. The row id is the envelope id,
// so a row published twice is dropped by dedupe. An Outbox is safe for
// concurrent use.
type Outbox struct {
	codec  *schema.Codec
	source string
}

// NewOutbox returns an outbox that encodes with codec and stamps source on
// the change events it builds.
func NewOutbox(codec *schema.Codec, source string) (*Outbox, error) {
	switch {
	case codec == nil:
		return nil, fmt.Errorf("%w: outbox codec is nil", ErrConfig)
	case source == "":
		return nil, fmt.Errorf("%w: outbox source is empty", ErrConfig)
	}
	return &Outbox{codec: codec, source: source}, nil
}

// Outbox returns an outbox that encodes with the producer's codec and
// source. It does not use the Kafka connection, and keeps working after
// Close.
func (p *Producer) Outbox() *Outbox { return &Outbox{codec: p.codec, source: p.source} }

// NewChange builds the ID-only change envelope [Outbox.WriteChange] writes.
func (o *Outbox) NewChange(ctx context.Context, entityType, id string, op schema.Op, seq int64) schema.Envelope {
	e := schema.NewEnvelope(o.source, op, entityType, id)
	e.Sequence = seq
	e.TraceParent = TraceParent(ctx)
	return e
}

// WriteChange inserts an ID-only change event for one entity into the
// outbox within tx and returns the envelope written. It neither commits nor
// rolls back tx.
func (o *Outbox) WriteChange(ctx context.Context, tx pgx.Tx, entityType, id string, op schema.Op, seq int64) (schema.Envelope, error) {
	e := o.NewChange(ctx, entityType, id, op, seq)
	return e, o.Write(ctx, tx, e)
}

// Write inserts envelopes into the outbox within tx, in order. Each is
// encoded for [schema.ChangesTopic] of its entity type. An invalid envelope
// or a registry failure is reported before anything is inserted.
func (o *Outbox) Write(ctx context.Context, tx pgx.Tx, envs ...schema.Envelope) error {
	rows, err := o.rows(ctx, envs)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if _, err := tx.Exec(ctx, outboxInsertPostgres, r...); err != nil {
			return fmt.Errorf("%w: insert %s: %w", ErrOutbox, r[0], err)
		}
	}
	return nil
}

// WriteChangeMySQL is [Outbox.WriteChange] for a MySQL or MariaDB
// transaction.
func (o *Outbox) WriteChangeMySQL(ctx context.Context, tx *sql.Tx, entityType, id string, op schema.Op, seq int64) (schema.Envelope, error) {
	e := o.NewChange(ctx, entityType, id, op, seq)
	return e, o.WriteMySQL(ctx, tx, e)
}

// WriteMySQL is [Outbox.Write] for a MySQL or MariaDB transaction (it uses
// ? placeholders). created_at is sent as a UTC 'YYYY-MM-DD hh:mm:ss.ffffff'
// string rather than a time.Time, which not every driver accepts (go-mysql's
// does not); it is stored as given when the session time zone is UTC, as
// go-sql-driver/mysql's default loc=UTC also assumes.
func (o *Outbox) WriteMySQL(ctx context.Context, tx *sql.Tx, envs ...schema.Envelope) error {
	rows, err := o.rows(ctx, envs)
	if err != nil {
		return err
	}
	for _, r := range rows {
		r[5] = r[5].(time.Time).Format(mysqlTimeLayout)
		if _, err := tx.ExecContext(ctx, outboxInsertMySQL, r...); err != nil {
			return fmt.Errorf("%w: insert %s: %w", ErrOutbox, r[0], err)
		}
	}
	return nil
}

// rows encodes every envelope first, so that nothing is inserted when one
// of them cannot be encoded.
func (o *Outbox) rows(ctx context.Context, envs []schema.Envelope) ([][]any, error) {
	rows := make([][]any, 0, len(envs))
	for i := range envs {
		e := &envs[i]
		payload, err := o.codec.Encode(ctx, nil, schema.ChangesTopic(e.EntityType), e)
		if err != nil {
			return nil, fmt.Errorf("producer: outbox: encode %s %s: %w", e.EntityType, e.Subject, err)
		}
		rows = append(rows, []any{e.ID, e.EntityType, e.Subject, string(e.Type), payload, e.Time.UTC()})
	}
	return rows, nil
}
