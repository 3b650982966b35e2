package finance_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/services/finance"
)

// pgDSN is the test database: SLATE_PG_DSN, or the local server.
func pgDSN() string {
	if dsn := os.Getenv("SLATE_PG_DSN"); dsn != "" {
		return dsn
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// pgPool returns a pool whose search path is a schema of its own, dropped
// at the end of the test, so tests see only their own tables.
func pgPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	pool, _ := pgSchema(t)
	return pool
}

// pgSchema is [pgPool] that also returns the name of the schema.
func pgSchema(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	dsn := pgDSN()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, dsn)
	if err != nil {
		testenv.Unavailable(t, "PostgreSQL", "start one and set SLATE_PG_DSN", err)
	}
	t.Cleanup(func() { admin.Close(context.Background()) })
	b := make([]byte, 6)
	rand.Read(b)
	name := "finance_test_" + hex.EncodeToString(b)
	if _, err := admin.Exec(ctx, `CREATE SCHEMA `+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.Exec(context.Background(), `DROP SCHEMA `+name+` CASCADE`) })
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = name
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, name
}

func newCodec(t *testing.T) *schema.Codec {
	t.Helper()
	_, reg := testenv.Registry(t)
	c, err := schema.NewCodec(reg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func pgStore(t *testing.T, pool *pgxpool.Pool, codec *schema.Codec) *finance.PostgresStore {
	t.Helper()
	outbox, err := producer.NewOutbox(codec, "finance")
	if err != nil {
		t.Fatal(err)
	}
	s, err := finance.NewPostgresStore(context.Background(), pool, outbox)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// event is an outbox row, its payload decoded.
type event struct {
	EntityType, ID string
	Op             schema.Op
	Seq            int64
}

// outboxEvents returns the events in the outbox, in the order written.
func outboxEvents(t *testing.T, pool *pgxpool.Pool, codec *schema.Codec) []event {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT aggregatetype, aggregateid, type, payload FROM `+producer.OutboxTable+` ORDER BY created_at, id`)
	if err != nil {
		t.Fatal(err)
	}
	var out []event
	for rows.Next() {
		var (
			e       event
			payload []byte
		)
		if err := rows.Scan(&e.EntityType, &e.ID, &e.Op, &payload); err != nil {
			t.Fatal(err)
		}
		env, err := codec.Decode(ctx, payload)
		if err != nil {
			t.Fatal(err)
		}
		if env.EntityType != e.EntityType || env.Subject != e.ID || env.Type != e.Op {
			t.Fatalf("outbox row %+v carries the envelope %+v", e, env)
		}
		e.Seq = env.Sequence
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func wantEvents(t *testing.T, got []event, want ...event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("outbox events %+v, want %+v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("outbox events %+v, want %+v", got, want)
		}
	}
}

func budgetRows(t *testing.T, pool *pgxpool.Pool, id string) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), `SELECT count(*) FROM `+finance.BudgetsTable+` WHERE title_id = $1`, id).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPostgresStore(t *testing.T) {
	codec := newCodec(t)
	testStore(t, func(t *testing.T) finance.Store { return pgStore(t, pgPool(t), codec) })
}

func TestPostgresStoreWritesOneEventPerWrite(t *testing.T) {
	ctx := context.Background()
	codec := newCodec(t)
	pool := pgPool(t)
	s := pgStore(t, pool, codec)
	steps := []func() error{
		func() error { _, _, err := s.PutBudget(ctx, budget("t1", 1), 0); return err },
		func() error { _, _, err := s.PutBudget(ctx, budget("t1", 2), 1); return err },
		func() error { _, err := s.DeleteBudget(ctx, "t1", 2); return err },
		func() error { _, _, err := s.PutBudget(ctx, budget("t1", 3), 0); return err },
		func() error { _, _, err := s.PutRate(ctx, rate("EUR", "USD", "1.08")); return err },
		func() error { _, _, err := s.PutRate(ctx, rate("EUR", "USD", "1.08345")); return err },
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
	}
	wantEvents(t, outboxEvents(t, pool, codec),
		event{"budget", "t1", schema.OpCreate, 1},
		event{"budget", "t1", schema.OpUpdate, 2},
		event{"budget", "t1", schema.OpDelete, 3},
		event{"budget", "t1", schema.OpCreate, 4},
		event{"rate", "EUR-USD", schema.OpCreate, 1},
		event{"rate", "EUR-USD", schema.OpUpdate, 2},
	)

	// A second store on the same database, as after a restart, sees it all.
	again := pgStore(t, pool, codec)
	found, err := again.GetBudgets(ctx, []string{"t1"})
	if err != nil || found["t1"].Version != 4 || found["t1"].LineItems[0].Amount != 3 {
		t.Fatalf("GetBudgets from a new store = %+v, %v", found, err)
	}
}

func TestPostgresStoreFailedWriteLeavesNoRowAndNoEvent(t *testing.T) {
	ctx := context.Background()

	t.Run("the event cannot be encoded", func(t *testing.T) {
		pool := pgPool(t)
		reg, err := schema.NewRegistryClient("http://127.0.0.1:1")
		if err != nil {
			t.Fatal(err)
		}
		down, err := schema.NewCodec(reg)
		if err != nil {
			t.Fatal(err)
		}
		s := pgStore(t, pool, down)
		if _, _, err := s.PutBudget(ctx, budget("t1", 1), 0); err == nil {
			t.Fatal("PutBudget with the registry down succeeded")
		}
		if _, _, err := s.PutRate(ctx, rate("EUR", "USD", "1.08")); err == nil {
			t.Fatal("PutRate with the registry down succeeded")
		}
		if n := budgetRows(t, pool, "t1"); n != 0 {
			t.Fatalf("%d budget rows after the failed put, want 0", n)
		}
		if rates, err := s.ListRates(ctx, "USD"); err != nil || len(rates) != 0 {
			t.Fatalf("ListRates after the failed put = %+v, %v; want none", rates, err)
		}
		wantEvents(t, outboxEvents(t, pool, newCodec(t)))
	})

	t.Run("the database refuses the outbox row", func(t *testing.T) {
		codec := newCodec(t)
		pool := pgPool(t)
		s := pgStore(t, pool, codec)
		if _, _, err := s.PutBudget(ctx, budget("kept", 1), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `ALTER TABLE `+producer.OutboxTable+
			` ADD CONSTRAINT refuse CHECK (aggregateid <> 'poison' AND type <> 'DELETE')`); err != nil {
			t.Fatal(err)
		}
		_, _, err := s.PutBudget(ctx, budget("poison", 1), 0)
		if !errors.Is(err, producer.ErrOutbox) {
			t.Fatalf("PutBudget whose event is refused = %v, want ErrOutbox", err)
		}
		if _, err := s.DeleteBudget(ctx, "kept", 0); !errors.Is(err, producer.ErrOutbox) {
			t.Fatalf("DeleteBudget whose event is refused = %v, want ErrOutbox", err)
		}
		if n := budgetRows(t, pool, "poison"); n != 0 {
			t.Fatalf("%d budget rows after the failed put, want 0", n)
		}
		found, err := s.GetBudgets(ctx, []string{"kept", "poison"})
		if err != nil || len(found) != 1 || found["kept"].Version != 1 {
			t.Fatalf("GetBudgets after the failed writes = %+v, %v; want kept at version 1", found, err)
		}
		wantEvents(t, outboxEvents(t, pool, codec), event{"budget", "kept", schema.OpCreate, 1})
	})
}
