package finance

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
)

// The tables of a [PostgresStore], created by [NewPostgresStore] in the
// connection's search path, next to the outbox table
// ([producer.OutboxTable]).
const (
	BudgetsTable = "finance_budgets"
	RatesTable   = "finance_rates"
)

const postgresDDL = `CREATE TABLE IF NOT EXISTS ` + BudgetsTable + ` (
	title_id   text        PRIMARY KEY,
	version    bigint      NOT NULL,
	budget     jsonb,      -- NULL once deleted: the row keeps the delete's version
	updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS ` + RatesTable + ` (
	from_currency text        NOT NULL,
	to_currency   text        NOT NULL,
	rate          text        NOT NULL,
	version       bigint      NOT NULL,
	updated_at    timestamptz NOT NULL,
	PRIMARY KEY (to_currency, from_currency)
)`

// PostgresStore is a [TransactionalStore] in PostgreSQL: every write and
// its change event (a row of the outbox table, which the CDC sidecar
// publishes to studio.budget.changes or studio.rate.changes) commit in one
// transaction, so a write that is rolled back leaves no event and a
// committed one always has its event. A deleted budget keeps its row, with
// no budget and the delete's version, so versions stay monotonic per id.
type PostgresStore struct {
	pool   *pgxpool.Pool
	outbox *producer.Outbox
	owned  bool
}

var _ TransactionalStore = (*PostgresStore)(nil)

// OpenPostgresStore connects to the PostgreSQL database at dsn and returns
// a store on it (see [NewPostgresStore]); Close closes the connections.
func OpenPostgresStore(ctx context.Context, dsn string, outbox *producer.Outbox) (*PostgresStore, error) {
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("finance: postgres: %w", err)
	}
	s, err := NewPostgresStore(ctx, pool, outbox)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

// NewPostgresStore returns a store on pool that writes change events with
// outbox. It creates the store's tables and the outbox table if they do not
// exist. Close leaves pool open.
func NewPostgresStore(ctx context.Context, pool *pgxpool.Pool, outbox *producer.Outbox) (*PostgresStore, error) {
	if pool == nil || outbox == nil {
		return nil, errors.New("finance: NewPostgresStore needs a pool and an outbox")
	}
	if _, err := pool.Exec(ctx, postgresDDL); err != nil {
		return nil, fmt.Errorf("finance: create tables: %w", err)
	}
	if err := producer.EnsureOutbox(ctx, pool); err != nil {
		return nil, fmt.Errorf("finance: %w", err)
	}
	return &PostgresStore{pool: pool, outbox: outbox}, nil
}

// Close closes the connections if [OpenPostgresStore] opened them.
func (s *PostgresStore) Close() error {
	if s.owned {
		s.pool.Close()
	}
	return nil
}

// WritesChangeEvents implements [TransactionalStore].
func (s *PostgresStore) WritesChangeEvents() {}

// inTx runs f in a transaction and commits it if f returns nil; otherwise,
// or if the commit fails, nothing of it stays.
//
// A failure that a retry can get past wraps [ErrUnavailable]: the
// database or the registry unreachable, a serialization failure or a
// deadlock, a server shutting down or out of resources.
func (s *PostgresStore) inTx(ctx context.Context, f func(tx pgx.Tx) error) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return retryable(fmt.Errorf("finance: postgres: begin: %w", err))
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	if err := f(tx); err != nil {
		return retryable(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return retryable(fmt.Errorf("finance: postgres: commit: %w", err))
	}
	return nil
}

// retryable wraps err with [ErrUnavailable] when a retry of the whole
// transaction can succeed; other errors (a constraint the database
// refuses, an encoding error) are returned as they are.
func retryable(err error) error {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exception
			strings.HasPrefix(pgErr.Code, "40"),  // serialization failure, deadlock
			strings.HasPrefix(pgErr.Code, "53"),  // insufficient resources
			strings.HasPrefix(pgErr.Code, "57P"): // admin or crash shutdown
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) || pgconn.Timeout(err) || pgconn.SafeToRetry(err) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

// lockBudget locks the row of titleID, inserting a placeholder (version 0,
// no budget) that only a committed write keeps, and returns its version and
// whether it holds a budget.
func lockBudget(ctx context.Context, tx pgx.Tx, titleID string) (version int64, exists bool, err error) {
	if _, err := tx.Exec(ctx, `INSERT INTO `+BudgetsTable+` (title_id, version) VALUES ($1, 0) ON CONFLICT (title_id) DO NOTHING`, titleID); err != nil {
		return 0, false, fmt.Errorf("finance: postgres: budget %s: %w", titleID, err)
	}
	err = tx.QueryRow(ctx, `SELECT version, budget IS NOT NULL FROM `+BudgetsTable+` WHERE title_id = $1 FOR UPDATE`, titleID).Scan(&version, &exists)
	if err != nil {
		return 0, false, fmt.Errorf("finance: postgres: budget %s: %w", titleID, err)
	}
	return version, exists, nil
}

// checkVersion applies the rules of [Store.PutBudget] to the locked row.
func checkVersion(titleID string, version int64, exists bool, expected int64) error {
	switch {
	case expected == 0:
		return nil
	case !exists:
		return fmt.Errorf("budget %w: %s", ErrNotFound, titleID)
	case expected != version:
		return fmt.Errorf("budget %w: %s is at version %d, expected %d", ErrVersionMismatch, titleID, version, expected)
	}
	return nil
}

// PutBudget implements [Store].
func (s *PostgresStore) PutBudget(ctx context.Context, b Budget, expectedVersion int64) (Budget, bool, error) {
	body, err := json.Marshal(b)
	if err != nil {
		return Budget{}, false, fmt.Errorf("finance: encode budget %s: %w", b.TitleID, err)
	}
	var created bool
	err = s.inTx(ctx, func(tx pgx.Tx) error {
		version, exists, err := lockBudget(ctx, tx, b.TitleID)
		if err != nil {
			return err
		}
		if err := checkVersion(b.TitleID, version, exists, expectedVersion); err != nil {
			return err
		}
		b.Version, created = version+1, !exists
		if _, err := tx.Exec(ctx, `UPDATE `+BudgetsTable+` SET version = $2, budget = $3, updated_at = $4 WHERE title_id = $1`,
			b.TitleID, b.Version, body, b.UpdatedAt); err != nil {
			return fmt.Errorf("finance: postgres: put budget %s: %w", b.TitleID, err)
		}
		_, err = s.outbox.WriteChange(ctx, tx, EntityType, b.TitleID, putOp(created), b.Version)
		return err
	})
	if err != nil {
		return Budget{}, false, err
	}
	return b, created, nil
}

// DeleteBudget implements [Store].
func (s *PostgresStore) DeleteBudget(ctx context.Context, titleID string, expectedVersion int64) (int64, error) {
	var version int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		cur, exists, err := lockBudget(ctx, tx, titleID)
		if err != nil {
			return err
		}
		if !exists {
			return fmt.Errorf("budget %w: %s", ErrNotFound, titleID)
		}
		if err := checkVersion(titleID, cur, exists, expectedVersion); err != nil {
			return err
		}
		version = cur + 1
		if _, err := tx.Exec(ctx, `UPDATE `+BudgetsTable+` SET version = $2, budget = NULL, updated_at = now() WHERE title_id = $1`,
			titleID, version); err != nil {
			return fmt.Errorf("finance: postgres: delete budget %s: %w", titleID, err)
		}
		_, err = s.outbox.WriteChange(ctx, tx, EntityType, titleID, schema.OpDelete, version)
		return err
	})
	if err != nil {
		return 0, err
	}
	return version, nil
}

// GetBudgets implements [Store].
func (s *PostgresStore) GetBudgets(ctx context.Context, titleIDs []string) (map[string]Budget, error) {
	rows, err := s.pool.Query(ctx, `SELECT title_id, version, budget FROM `+BudgetsTable+` WHERE title_id = ANY($1)`, titleIDs)
	if err != nil {
		return nil, fmt.Errorf("finance: postgres: get budgets: %w", err)
	}
	defer rows.Close()
	found := make(map[string]Budget, len(titleIDs))
	for rows.Next() {
		var (
			id      string
			version int64
			body    []byte
		)
		if err := rows.Scan(&id, &version, &body); err != nil {
			return nil, fmt.Errorf("finance: postgres: get budgets: %w", err)
		}
		if body == nil {
			found[id] = Budget{TitleID: id, Version: version, Deleted: true}
			continue
		}
		var b Budget
		if err := json.Unmarshal(body, &b); err != nil {
			return nil, fmt.Errorf("finance: stored budget %s: %w", id, err)
		}
		b.TitleID, b.Version = id, version
		found[id] = b
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("finance: postgres: get budgets: %w", err)
	}
	return found, nil
}

// PutRate implements [Store].
func (s *PostgresStore) PutRate(ctx context.Context, r Rate) (Rate, bool, error) {
	var created bool
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		// xmax is 0 on a row the statement inserted, not on one it updated.
		err := tx.QueryRow(ctx, `INSERT INTO `+RatesTable+` AS r (from_currency, to_currency, rate, version, updated_at)
			VALUES ($1, $2, $3, 1, $4)
			ON CONFLICT (to_currency, from_currency) DO UPDATE
			SET rate = EXCLUDED.rate, version = r.version + 1, updated_at = EXCLUDED.updated_at
			RETURNING r.version, r.xmax = 0`, r.From, r.To, r.Rate, r.UpdatedAt).Scan(&r.Version, &created)
		if err != nil {
			return fmt.Errorf("finance: postgres: put rate %s: %w", r.ID(), err)
		}
		_, err = s.outbox.WriteChange(ctx, tx, RateEntityType, r.ID(), putOp(created), r.Version)
		return err
	})
	if err != nil {
		return Rate{}, false, err
	}
	return r, created, nil
}

// ListRates implements [Store].
func (s *PostgresStore) ListRates(ctx context.Context, to string) ([]Rate, error) {
	rows, err := s.pool.Query(ctx, `SELECT from_currency, to_currency, rate, version, updated_at FROM `+RatesTable+
		` WHERE to_currency = $1 ORDER BY from_currency`, to)
	if err != nil {
		return nil, fmt.Errorf("finance: postgres: list rates: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Rate, error) {
		var r Rate
		err := row.Scan(&r.From, &r.To, &r.Rate, &r.Version, &r.UpdatedAt)
		return r, err
	})
	if err != nil {
		return nil, fmt.Errorf("finance: postgres: list rates: %w", err)
	}
	return out, nil
}
