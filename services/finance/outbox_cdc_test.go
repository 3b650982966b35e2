package finance_test

import (
	"context"
	"log/slog"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/cdc/postgres"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/producer"
	financev1 "github.com/slatehq/slate/proto/finance/v1"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/services/finance"
	"github.com/slatehq/slate/services/internal/servicetest"
)

// withSearchPath returns dsn with its sessions' search path set to name,
// in the URL or the keyword/value form.
func withSearchPath(t *testing.T, dsn, name string) string {
	t.Helper()
	if !strings.Contains(dsn, "://") {
		return dsn + " search_path=" + name
	}
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", name)
	u.RawQuery = q.Encode()
	return u.String()
}

// relay is the outbox router of `slate cdc` on one schema, running in the
// background: a slot and a publication of that schema's outbox table only,
// a new slot's snapshot, the default state table (in the schema), outbox
// rows kept, and the runner publishing through a producer stamped //pg.
type relay struct {
	pool   *pgxpool.Pool
	slot   string
	cancel context.CancelFunc
	done   chan error
}

func startRelay(t *testing.T, env testenv.Env, pool *pgxpool.Pool, schemaName string) *relay {
	t.Helper()
	r := &relay{pool: pool, slot: schemaName}
	t.Cleanup(r.drop)
	outbox := schemaName + "." + producer.OutboxTable
	cfg := postgres.Config{
		DSN: withSearchPath(t, pgDSN(), schemaName), Slot: r.slot, Publication: r.slot,
		CreateSlot: true, CreatePublication: true, Tables: []string{outbox},
		Snapshot: true, StatusInterval: 100 * time.Millisecond, Outbox: outbox,
	}
	m := cdc.NewMetrics(nil)
	log := slog.New(slog.DiscardHandler)
	src, err := postgres.New(cfg, postgres.WithRegistry(env.Registry), postgres.WithLogger(log), postgres.WithMetrics(m))
	if err != nil {
		t.Fatal(err)
	}
	run, err := cdc.NewRunner(env.Producer, cdc.WithLogger(log), cdc.WithMetrics(m))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel, r.done = cancel, make(chan error, 1)
	go func() { r.done <- run.Run(ctx, src) }()
	t.Cleanup(func() { r.stop(t) })
	testenv.WaitFor(t, 10*time.Second, "the slot streaming", func() bool {
		var active bool
		err := pool.QueryRow(context.Background(), `SELECT active FROM pg_replication_slots WHERE slot_name = $1`, r.slot).Scan(&active)
		return err == nil && active
	})
	return r
}

// stop ends the runner; it fails t if the runner ended with an error.
func (r *relay) stop(t *testing.T) {
	t.Helper()
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		if err != nil {
			t.Errorf("cdc runner: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("cdc runner did not stop")
	}
}

// drop removes the slot and the publication once the runner let go.
func (r *relay) drop() {
	ctx := context.Background()
	for range 50 {
		if _, err := r.pool.Exec(ctx, `SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1`, r.slot); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, _ = r.pool.Exec(ctx, `DROP PUBLICATION IF EXISTS `+r.slot)
}

// caughtUp waits until the slot confirmed everything written so far: the
// runner has had Kafka acknowledge every event committed before now.
func (r *relay) caughtUp(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	var now string
	if err := r.pool.QueryRow(ctx, `SELECT pg_current_wal_lsn()::text`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "the slot to confirm "+now, func() bool {
		var done bool
		err := r.pool.QueryRow(ctx, `SELECT confirmed_flush_lsn >= $2::pg_lsn FROM pg_replication_slots WHERE slot_name = $1`, r.slot, now).Scan(&done)
		return err == nil && done
	})
}

// wantChangeEvents checks that recs are exactly the ID-only change events
// want, keyed by their ids, as the finance outbox wrote them.
func wantChangeEvents(t *testing.T, recs []testenv.Record, want ...servicetest.Change) {
	t.Helper()
	if len(recs) != len(want) {
		t.Fatalf("%d records on %s, want %d: %+v", len(recs), schema.ChangesTopic(finance.EntityType), len(want), recs)
	}
	for i, r := range recs {
		w := want[i]
		got := servicetest.Change{EntityType: r.Env.EntityType, ID: r.Env.Subject, Op: r.Env.Type, Seq: r.Env.Sequence}
		switch {
		case got != w:
			t.Fatalf("record %d is %+v, want %+v", i, got, w)
		case r.Key != w.ID:
			t.Fatalf("record %d keyed %q, want %q", i, r.Key, w.ID)
		case len(r.Env.Data) != 0:
			t.Fatalf("record %d carries %d bytes of data, want an ID-only event", i, len(r.Env.Data))
		case r.Env.Source != "finance":
			t.Fatalf("record %d has source %q, want the finance outbox's", i, r.Env.Source)
		}
	}
}

// With PostgreSQL, a budget change and its event commit together or not
// at all: the finance server on a PostgresStore writes both in one
// transaction and the outbox router of slate cdc publishes the event; a
// write that fails inside its transaction, because the database refuses
// its outbox row or because its event cannot be encoded, leaves neither
// the budget nor an event.
func TestPostgresBudgetAndEventCommitTogether(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	env := testenv.Start(t, "//pg")
	codec, err := schema.NewCodec(env.Registry)
	if err != nil {
		t.Fatal(err)
	}
	pool, schemaName := pgSchema(t)
	store := pgStore(t, pool, codec)
	r := startRelay(t, env, pool, schemaName)
	c := serve(t, finance.NewServer(nil, store))
	topic := schema.ChangesTopic(finance.EntityType)

	put, err := c.PutBudget(ctx, &financev1.PutBudgetRequest{Budget: pbBudget("t1")})
	if err != nil || put.GetBudget().GetVersion() != 1 {
		t.Fatalf("PutBudget = %v, %v; want version 1", put, err)
	}
	testenv.WaitFor(t, 20*time.Second, "the CREATE on "+topic, func() bool {
		return len(testenv.ReadTopic(t, env.Brokers, env.Registry, topic)) > 0
	})
	r.caughtUp(t)
	wantChangeEvents(t, testenv.ReadTopic(t, env.Brokers, env.Registry, topic), ev("budget", "t1", schema.OpCreate, 1))
	before, err := c.GetBudget(ctx, &financev1.GetBudgetRequest{TitleId: "t1"})
	if err != nil {
		t.Fatal(err)
	}

	// The database refuses the update's outbox row: the budget's UPDATE
	// ran in the transaction and is rolled back with it. A constraint is
	// not something a retry gets past: INTERNAL.
	if _, err := pool.Exec(ctx, `ALTER TABLE `+producer.OutboxTable+` ADD CONSTRAINT refuse CHECK (type <> 'UPDATE')`); err != nil {
		t.Fatal(err)
	}
	changed := pbBudget("t1")
	changed.LineItems[0].Amount = 13_000_000_00
	_, err = c.PutBudget(ctx, &financev1.PutBudgetRequest{Budget: changed, ExpectedVersion: proto.Int64(1)})
	servicetest.WantCode(t, err, codes.Internal)

	// A second server on the same database whose registry is down cannot
	// encode the event of a new budget: no row and no event either.
	reg, err := schema.NewRegistryClient("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	down, err := schema.NewCodec(reg)
	if err != nil {
		t.Fatal(err)
	}
	c2 := serve(t, finance.NewServer(nil, pgStore(t, pool, down)))
	_, err = c2.PutBudget(ctx, &financev1.PutBudgetRequest{Budget: pbBudget("t2")})
	servicetest.WantCode(t, err, codes.Unavailable) // nothing written: a retry is safe

	r.caughtUp(t)
	wantChangeEvents(t, testenv.ReadTopic(t, env.Brokers, env.Registry, topic), ev("budget", "t1", schema.OpCreate, 1))
	after, err := c.GetBudget(ctx, &financev1.GetBudgetRequest{TitleId: "t1"})
	if err != nil || !proto.Equal(after.GetBudget(), before.GetBudget()) {
		t.Fatalf("GetBudget after the failed update = %v, %v; want it unchanged: %v", after, err, before)
	}
	batch, err := c.BatchGetBudgets(ctx, &financev1.BatchGetBudgetsRequest{Ids: []string{"t2"}})
	if err != nil || len(batch.GetBudgets()) != 0 || len(batch.GetMissingIds()) != 1 {
		t.Fatalf("BatchGetBudgets of the failed put = %v, %v; want t2 missing", batch, err)
	}
	if n := budgetRows(t, pool, "t2"); n != 0 {
		t.Fatalf("%d budget rows of t2 after its failed put, want 0", n)
	}
	wantEvents(t, outboxEvents(t, pool, codec), event{"budget", "t1", schema.OpCreate, 1})

	// Once the database takes the row again, the update publishes exactly
	// one UPDATE with the next version.
	if _, err := pool.Exec(ctx, `ALTER TABLE `+producer.OutboxTable+` DROP CONSTRAINT refuse`); err != nil {
		t.Fatal(err)
	}
	put, err = c.PutBudget(ctx, &financev1.PutBudgetRequest{Budget: changed, ExpectedVersion: proto.Int64(1)})
	if err != nil || put.GetBudget().GetVersion() != 2 {
		t.Fatalf("PutBudget over version 1 = %v, %v; want version 2", put, err)
	}
	r.caughtUp(t)
	wantChangeEvents(t, testenv.ReadTopic(t, env.Brokers, env.Registry, topic),
		ev("budget", "t1", schema.OpCreate, 1), ev("budget", "t1", schema.OpUpdate, 2))
	got, err := c.GetBudget(ctx, &financev1.GetBudgetRequest{TitleId: "t1"})
	if err != nil || got.GetBudget().GetVersion() != 2 || got.GetBudget().GetLineItems()[0].GetAmount() != 13_000_000_00 {
		t.Fatalf("GetBudget after the update = %v, %v; want version 2 with the new amount", got, err)
	}
}
