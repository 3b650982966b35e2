package postgres_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	osexec "os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/schema"
)

// pgbench (TPC-B-like, 4 clients, 10 s, or SLATE_PGBENCH_SECONDS) against
// a captured database: the UPDATE events of pgbench_accounts equal the
// transactions pgbench committed, each exactly once.
func TestPgbenchUpdatesAllArrive(t *testing.T) {
	seconds := 10
	if v := os.Getenv("SLATE_PGBENCH_SECONDS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("SLATE_PGBENCH_SECONDS=%q: want a positive number of seconds", v)
		}
		seconds = n
	}
	if testing.Short() {
		t.Skipf("pgbench runs for %ds; skipped with -short", seconds)
	}
	bin, err := osexec.LookPath("pgbench")
	if err != nil {
		bin = "/usr/lib/postgresql/15/bin/pgbench"
	}
	h := newHarness(t)
	ctx := context.Background()
	dbName := h.name + "_pgbench"
	exec(t, h.db, "CREATE DATABASE "+dbName)
	u, err := url.Parse(dsn())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + dbName
	benchDSN := u.String()
	t.Cleanup(func() {
		_, _ = h.db.Exec(ctx, "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = $1", h.name)
		_, _ = h.db.Exec(ctx, "DROP DATABASE IF EXISTS "+dbName+" WITH (FORCE)")
	})
	if out, err := osexec.Command(bin, "-i", "-q", "-s", "1", benchDSN).CombinedOutput(); err != nil {
		t.Skipf("pgbench -i: %v: %s", err, out)
	}
	topic := cdc.Topic(dbName, "public", "pgbench_accounts")
	col := h.collect(topic)
	cfg := h.config("public.pgbench_accounts")
	cfg.DSN = benchDSN
	cfg.Snapshot = false
	cfg.StateTable = "-"
	run := h.start(cfg)
	defer run.stop(t)
	bc, err := pgx.Connect(ctx, benchDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer bc.Close(ctx)
	for i := 0; ; i++ {
		var active bool
		_ = bc.QueryRow(ctx, "SELECT active FROM pg_replication_slots WHERE slot_name = $1", h.name).Scan(&active)
		if active {
			break
		}
		if i > 200 {
			t.Fatal("slot never became active")
		}
		time.Sleep(20 * time.Millisecond)
	}
	out, err := osexec.Command(bin, "-c", "4", "-j", "2", "-T", strconv.Itoa(seconds), "-n", benchDSN).CombinedOutput()
	if err != nil {
		t.Fatalf("pgbench: %v: %s", err, out)
	}
	m := regexp.MustCompile(`number of transactions actually processed: (\d+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("pgbench output without a transaction count: %s", out)
	}
	committed, _ := strconv.Atoi(string(m[1]))
	if fm := regexp.MustCompile(`number of failed transactions: (\d+)`).FindSubmatch(out); fm != nil && string(fm[1]) != "0" {
		t.Fatalf("pgbench had failed transactions: %s", out)
	}
	start := time.Now()
	recs := col.waitFor(t, 120*time.Second, fmt.Sprintf("%d updates", committed), func(rs []record) bool { return len(rs) >= committed })
	caughtUp := time.Since(start)
	time.Sleep(time.Second) // anything extra would show up now
	col.mu.Lock()
	recs = append([]record(nil), col.recs...)
	col.mu.Unlock()
	ids := map[string]bool{}
	for _, r := range recs {
		if r.env.Type != schema.OpUpdate {
			t.Fatalf("unexpected %s event", r.env.Type)
		}
		ids[r.env.ID] = true
	}
	if len(recs) != committed || len(ids) != committed {
		t.Fatalf("%d UPDATE events (%d distinct), pgbench committed %d", len(recs), len(ids), committed)
	}
	t.Logf("pgbench -c 4 -T %d committed %d transactions (%.0f tps); %d UPDATE events on %s, caught up %s after pgbench ended",
		seconds, committed, float64(committed)/float64(seconds), len(recs), topic, caughtUp.Round(time.Millisecond))
}
