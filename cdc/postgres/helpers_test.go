package postgres_test

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/slatehq/slate/internal/testenv"

	"github.com/jackc/pgx/v5"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/cdc/postgres"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
)

func dsn() string {
	if d := os.Getenv("SLATE_PG_DSN"); d != "" {
		return d
	}
	return "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"
}

// pgConn connects to the test database or skips (fails under CI=true).
func pgConn(t testing.TB) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn())
	if err == nil {
		var level string
		if err = c.QueryRow(ctx, "SHOW wal_level").Scan(&level); err == nil && level != "logical" {
			err = fmt.Errorf("wal_level is %s, want logical", level)
		}
	}
	if err != nil {
		msg := fmt.Sprintf("PostgreSQL with wal_level=logical not reachable at SLATE_PG_DSN=%s (%v); start one, e.g. "+
			"docker run -p 5432:5432 -e POSTGRES_HOST_AUTH_METHOD=trust postgres:15 -c wal_level=logical", dsn(), err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func exec(t testing.TB, c *pgx.Conn, sql string, args ...any) {
	t.Helper()
	if _, err := c.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

type harness struct {
	t       testing.TB
	db      *pgx.Conn
	brokers string
	reg     *schema.RegistryClient
	regURL  string
	prod    *producer.Producer
	name    string // unique prefix of the slot, publication and tables
}

func newHarness(t testing.TB) *harness {
	t.Helper()
	db := pgConn(t)
	e := testenv.Start(t, "//pg/test")
	h := &harness{t: t, db: db, brokers: e.Brokers, reg: e.Registry, regURL: e.RegistryURL, prod: e.Producer, name: fmt.Sprintf("slt%d", rand.IntN(1e9))}
	t.Cleanup(h.dropSlot)
	return h
}

func (h *harness) table(suffix string) string { return h.name + "_" + suffix }

func (h *harness) config(tables ...string) postgres.Config {
	return postgres.Config{
		DSN: dsn(), Slot: h.name, Publication: h.name, CreateSlot: true, CreatePublication: true,
		Tables: tables, Snapshot: true, StatusInterval: 100 * time.Millisecond,
	}
}

func (h *harness) dropSlot() {
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		_, err := h.db.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", h.name)
		if err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	_, _ = h.db.Exec(ctx, "DROP PUBLICATION IF EXISTS "+h.name)
	_, _ = h.db.Exec(ctx, "DELETE FROM slate_cdc_state WHERE slot = $1", h.name)
}

// running is a source and runner working in the background.
type running struct {
	cancel context.CancelFunc
	done   chan error
}

func (h *harness) start(cfg postgres.Config) *running {
	h.t.Helper()
	log := slog.New(slog.DiscardHandler)
	if os.Getenv("SLATE_TEST_LOG") != "" {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	src, err := postgres.New(cfg, postgres.WithRegistry(h.reg), postgres.WithLogger(log))
	if err != nil {
		h.t.Fatal(err)
	}
	r, err := cdc.NewRunner(h.prod, cdc.WithLogger(log))
	if err != nil {
		h.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	run := &running{cancel: cancel, done: make(chan error, 1)}
	go func() { run.done <- r.Run(ctx, src) }()
	return run
}

func (r *running) stop(t testing.TB) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("runner: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("runner did not stop")
	}
}

// record is one consumed CDC event with its decoded row data.
type record struct {
	topic, key string
	env        schema.Envelope
	before     map[string]any
	after      map[string]any
	source     map[string]any
	raw        []byte
	// unchangedHeader is the value of the ce_unchanged header.
	unchangedHeader string
}

// collector reads topics from the start in the background.
type collector struct {
	mu   sync.Mutex
	recs []record
	err  error
	stop context.CancelFunc
	done chan struct{}
}

func (h *harness) collect(topics ...string) *collector {
	h.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(h.brokers), kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(100*time.Millisecond))
	if err != nil {
		h.t.Fatal(err)
	}
	codec, _ := schema.NewCodec(h.reg)
	ctx, cancel := context.WithCancel(context.Background())
	c := &collector{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(c.done)
		defer cl.Close()
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			for _, kr := range fs.Records() {
				e, err := codec.Decode(context.Background(), kr.Value)
				rec := record{topic: kr.Topic, key: string(kr.Key), env: e, raw: kr.Value}
				for _, hd := range kr.Headers {
					if hd.Key == schema.HeaderUnchanged {
						rec.unchangedHeader = string(hd.Value)
					}
				}
				if err == nil && len(e.Data) > 0 && e.DataContentType == schema.ContentTypeAvro && kr.Topic[:11] == "studio.cdc." {
					var m map[string]any
					if err = schema.DecodeData(context.Background(), h.reg, e.Data, &m); err == nil {
						rec.before, rec.after = unionRow(m["before"]), unionRow(m["after"])
						rec.source, _ = m["source"].(map[string]any)
					}
				}
				c.mu.Lock()
				if err != nil && c.err == nil {
					c.err = err
				}
				c.recs = append(c.recs, rec)
				c.mu.Unlock()
			}
		}
	}()
	h.t.Cleanup(func() { cancel(); <-c.done })
	return c
}

// waitFor waits until cond holds over the records collected so far.
func (c *collector) waitFor(t testing.TB, d time.Duration, what string, cond func([]record) bool) []record {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		c.mu.Lock()
		recs := append([]record(nil), c.recs...)
		err := c.err
		c.mu.Unlock()
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if cond(recs) {
			return recs
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s (%d records)", what, len(recs))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func unionRow(v any) map[string]any {
	m, _ := v.(map[string]any)
	for _, r := range m {
		row, _ := r.(map[string]any)
		return row
	}
	return nil
}

// waitActive waits until the slot exists and a source streams from it.
// waitSnapshotDone waits until the source recorded its initial snapshot
// as acknowledged, so a restart streams on instead of taking it again.
func (h *harness) waitSnapshotDone(cfg postgres.Config) {
	h.t.Helper()
	table := cfg.StateTable
	if table == "" {
		table = "slate_cdc_state"
	}
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		var done bool
		err := h.db.QueryRow(context.Background(), "SELECT snapshot_done FROM "+table+" WHERE slot = $1", h.name).Scan(&done)
		if err == nil && done {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatal("the snapshot was never recorded as done")
}

func (h *harness) waitActive() {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		var active bool
		err := h.db.QueryRow(context.Background(), "SELECT active FROM pg_replication_slots WHERE slot_name = $1", h.name).Scan(&active)
		if err == nil && active {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	h.t.Fatal("slot never became active")
}

// streamTable creates the table <name>_<suffix> with the given column
// list, dropped when the test ends, and streams it (no snapshot) into a
// collector from an active slot. The caller stops the returned runner.
func (h *harness) streamTable(suffix, columns string) (string, *collector, *running) {
	h.t.Helper()
	tbl := h.table(suffix)
	exec(h.t, h.db, fmt.Sprintf("CREATE TABLE %s (%s)", tbl, columns))
	h.t.Cleanup(func() { exec(h.t, h.db, "DROP TABLE IF EXISTS "+tbl) })
	col := h.collect(cdc.Topic("postgres", "public", tbl))
	cfg := h.config("public." + tbl)
	cfg.Snapshot = false
	run := h.start(cfg)
	h.waitActive()
	return tbl, col, run
}

// checkOnceInOrder checks records of rows whose v column counts the
// committed changes 1..total: every change arrives, each event id carries
// one content however often it is redelivered, and a key's changes come in
// commit order. It returns the number of exact replays.
func checkOnceInOrder(t testing.TB, recs []record, total int) (dups int) {
	t.Helper()
	byID := map[string]record{}
	lastV := map[string]int64{}
	for _, r := range recs {
		v := rowV(r)
		if v < 1 || v > int64(total) {
			t.Fatalf("unexpected v %d", v)
		}
		if prev, ok := byID[r.env.ID]; ok {
			dups++
			if rowV(prev) != v || string(prev.env.Data) != string(r.env.Data) || prev.env.Sequence != r.env.Sequence {
				t.Errorf("id %s delivered twice with different content", r.env.ID)
			}
			continue
		}
		byID[r.env.ID] = r
		if v <= lastV[r.key] {
			t.Errorf("key %s: v %d after %d", r.key, v, lastV[r.key])
		}
		lastV[r.key] = v
	}
	if len(byID) != total {
		t.Errorf("%d distinct events, want %d", len(byID), total)
	}
	return dups
}
