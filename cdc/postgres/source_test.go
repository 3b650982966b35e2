package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pglogrepl"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/cdc/postgres"
	"github.com/slatehq/slate/schema"
)

type change struct {
	op string
	v  int64 // the row's v after the change; for DELETE the v before it
}

func rowV(rec record) int64 {
	row := rec.after
	if rec.env.Type == schema.OpDelete {
		row = rec.before
	}
	v, _ := row["v"].(int64)
	return v
}

// Every committed change appears once, in commit order per key; rolled
// back transactions never appear; the snapshot comes first.
func TestSnapshotThenStreamInCommitOrder(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	tbl := h.table("acct")
	exec(t, h.db, fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, v bigint NOT NULL, note text, at timestamptz, ok boolean)", tbl))
	t.Cleanup(func() { exec(t, h.db, "DROP TABLE IF EXISTS "+tbl) })
	exec(t, h.db, "ALTER TABLE "+tbl+" REPLICA IDENTITY FULL")
	const keys = 20
	exec(t, h.db, fmt.Sprintf("INSERT INTO %s SELECT g, 0, 'n'||g, now(), true FROM generate_series(1, %d) g", tbl, keys))

	topic := cdc.Topic("postgres", "public", tbl)
	col := h.collect(topic)
	run := h.start(h.config("public." + tbl))
	defer run.stop(t)
	col.waitFor(t, 20*time.Second, "snapshot", func(rs []record) bool { return len(rs) >= keys })

	want := map[string][]change{}
	exists := map[int]bool{}
	for k := 1; k <= keys; k++ {
		exists[k] = true
	}
	counter := int64(0)
	committed := 0
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 300; i++ {
		tx, err := h.db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var local []func()
		n := 1 + rng.IntN(3)
		for j := 0; j < n; j++ {
			k := 1 + rng.IntN(keys)
			counter++
			v := counter
			key := fmt.Sprint(k)
			switch {
			case !exists[k]:
				_, err = tx.Exec(ctx, "INSERT INTO "+tbl+" (id, v, note) VALUES ($1, $2, 'again')", k, v)
				local = append(local, func() { exists[k] = true; want[key] = append(want[key], change{"CREATE", v}) })
				exists[k] = true
			case rng.IntN(10) == 0:
				var old int64
				err = tx.QueryRow(ctx, "DELETE FROM "+tbl+" WHERE id = $1 RETURNING v", k).Scan(&old)
				local = append(local, func() { exists[k] = false; want[key] = append(want[key], change{"DELETE", old}) })
				exists[k] = false
			default:
				_, err = tx.Exec(ctx, "UPDATE "+tbl+" SET v = $2, at = now() WHERE id = $1", k, v)
				local = append(local, func() { want[key] = append(want[key], change{"UPDATE", v}) })
			}
			if err != nil {
				t.Fatal(err)
			}
		}
		if rng.IntN(5) == 0 {
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			// Undo the local view of existence.
			rows, err := h.db.Query(ctx, "SELECT id FROM "+tbl)
			if err != nil {
				t.Fatal(err)
			}
			clear(exists)
			for rows.Next() {
				var id int
				_ = rows.Scan(&id)
				exists[id] = true
			}
			rows.Close()
			continue
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		for _, f := range local {
			f()
			committed++
		}
	}
	exec(t, h.db, "TRUNCATE "+tbl)
	recs := col.waitFor(t, 30*time.Second, "all committed changes", func(rs []record) bool {
		return len(rs) >= keys+committed+1
	})
	time.Sleep(500 * time.Millisecond) // anything extra would show up now
	col.mu.Lock()
	recs = append([]record(nil), col.recs...)
	col.mu.Unlock()
	if len(recs) != keys+committed+1 {
		t.Fatalf("%d records, want %d snapshot + %d changes + 1 truncate", len(recs), keys, committed)
	}
	got := map[string][]change{}
	lastSeq := map[string]int64{}
	ids := map[string]bool{}
	truncates := 0
	for i, r := range recs {
		if ids[r.env.ID] {
			t.Fatalf("duplicate envelope id %s", r.env.ID)
		}
		ids[r.env.ID] = true
		_, seen := lastSeq[r.key]
		if r.env.Type == schema.OpTruncate {
			truncates++
			continue
		}
		if !seen {
			if r.env.Type != schema.OpSnapshot || r.source["snapshot"] != true || r.after["note"] != "n"+r.key {
				t.Fatalf("record %d = %s %v, want the snapshot first for key %s", i, r.env.Type, r.after, r.key)
			}
			lastSeq[r.key] = r.env.Sequence
			continue
		}
		if r.env.Sequence <= lastSeq[r.key] {
			t.Errorf("key %s: sequence %d after %d", r.key, r.env.Sequence, lastSeq[r.key])
		}
		lastSeq[r.key] = r.env.Sequence
		if r.env.Source != "//pg/postgres/public/"+tbl || r.env.EntityType != tbl || r.source["txid"].(int64) == 0 {
			t.Errorf("envelope %+v source %v", r.env, r.source)
		}
		if r.env.Type == schema.OpUpdate && r.before == nil {
			t.Errorf("update of %s without before under REPLICA IDENTITY FULL", r.key)
		}
		got[r.key] = append(got[r.key], change{string(r.env.Type), rowV(r)})
	}
	if truncates != 1 {
		t.Errorf("%d truncate events, want 1", truncates)
	}
	for k := 1; k <= keys; k++ {
		key := fmt.Sprint(k)
		if !slices.Equal(got[key], want[key]) {
			t.Errorf("key %s:\n got %v\nwant %v", key, got[key], want[key])
		}
	}
}

// Stopping mid-stream and starting again resumes with no gap; anything
// delivered twice is an exact replay (same envelope id and data).
func TestRestartResumesWithoutGap(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	tbl := h.table("bal")
	exec(t, h.db, fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, v bigint NOT NULL)", tbl))
	t.Cleanup(func() { exec(t, h.db, "DROP TABLE IF EXISTS "+tbl) })
	topic := cdc.Topic("postgres", "public", tbl)
	col := h.collect(topic)
	cfg := h.config("public." + tbl)
	run := h.start(cfg)
	h.waitActive()
	// Restarts mid-stream, not mid-snapshot: a restart before the snapshot
	// is recorded takes it again, by design.
	h.waitSnapshotDone(cfg)

	const total = 900
	var committed atomic.Int64
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for v := int64(1); v <= total; v++ {
			k := v % 30
			if _, err := h.db.Exec(ctx, "INSERT INTO "+tbl+" VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET v = EXCLUDED.v", k, v); err != nil {
				t.Error(err)
				return
			}
			committed.Store(v)
		}
	}()
	for _, at := range []int64{200, 500} {
		for committed.Load() < at {
			time.Sleep(5 * time.Millisecond)
		}
		run.stop(t)
		time.Sleep(100 * time.Millisecond)
		run = h.start(cfg)
	}
	wg.Wait()
	defer run.stop(t)
	recs := col.waitFor(t, 30*time.Second, "every committed change", func(rs []record) bool {
		seen := map[int64]bool{}
		for _, r := range rs {
			seen[rowV(r)] = true
		}
		return len(seen) >= total
	})
	dups := checkOnceInOrder(t, recs, total)
	t.Logf("%d records for %d committed changes across 2 restarts (%d exact replays)", len(recs), total, dups)
}

// An idle slot still moves: keepalives (and heartbeats) confirm the WAL
// other tables write, so the server can recycle it.
func TestIdleSlotAdvances(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	tbl, other := h.table("quiet"), h.table("busy")
	exec(t, h.db, fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY)", tbl))
	exec(t, h.db, fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY)", other))
	t.Cleanup(func() { exec(t, h.db, "DROP TABLE IF EXISTS "+tbl+", "+other) })
	cfg := h.config("public." + tbl)
	cfg.HeartbeatInterval = 200 * time.Millisecond
	run := h.start(cfg)
	defer run.stop(t)
	time.Sleep(500 * time.Millisecond)
	exec(t, h.db, fmt.Sprintf("INSERT INTO %s SELECT generate_series(1, 1000)", other))
	var target pglogrepl.LSN
	if err := h.db.QueryRow(ctx, "SELECT pg_current_wal_lsn()::text").Scan(&target); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var confirmed pglogrepl.LSN
		if err := h.db.QueryRow(ctx, "SELECT confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1", h.name).Scan(&confirmed); err != nil {
			t.Fatal(err)
		}
		if confirmed >= target {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("confirmed_flush_lsn %s never reached %s", confirmed, target)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Unchanged TOAST values: kept from the old row under REPLICA IDENTITY
// FULL, otherwise the placeholder (never null, which a sink replacing the
// whole document would store) and named in source.unchanged_toast. A
// delete under the default identity carries the key only.
func TestUnchangedToastAndKeyOnlyBefore(t *testing.T) {
	h := newHarness(t)
	tbl := h.table("doc")
	exec(t, h.db, fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, body text, n int)", tbl))
	t.Cleanup(func() { exec(t, h.db, "DROP TABLE IF EXISTS "+tbl) })
	exec(t, h.db, "ALTER TABLE "+tbl+" ALTER COLUMN body SET STORAGE EXTERNAL")
	body := strings.Repeat("0123456789abcdef", 4096)
	exec(t, h.db, "INSERT INTO "+tbl+" VALUES (1, $1, 0)", body)
	col := h.collect(cdc.Topic("postgres", "public", tbl))
	cfg := h.config("public." + tbl)
	cfg.Snapshot = false
	run := h.start(cfg)
	defer run.stop(t)
	h.waitActive()
	exec(t, h.db, "UPDATE "+tbl+" SET n = 1 WHERE id = 1")
	exec(t, h.db, "ALTER TABLE "+tbl+" REPLICA IDENTITY FULL")
	exec(t, h.db, "UPDATE "+tbl+" SET n = 2 WHERE id = 1")
	exec(t, h.db, "ALTER TABLE "+tbl+" REPLICA IDENTITY DEFAULT")
	exec(t, h.db, "DELETE FROM "+tbl+" WHERE id = 1")
	recs := col.waitFor(t, 20*time.Second, "3 changes", func(rs []record) bool { return len(rs) >= 3 })
	tests := []struct {
		name          string
		rec           record
		wantBody      string
		wantBefore    bool
		wantUnchanged []any
	}{
		{"default identity", recs[0], postgres.DefaultUnavailableValue, false, []any{"body"}},
		{"full identity", recs[1], body, true, []any{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, _ := tt.rec.after["body"].(string)
			if got != tt.wantBody || (tt.rec.before != nil) != tt.wantBefore {
				t.Errorf("after.body = %.40q (null: %v), want %.40q; before present = %v",
					got, tt.rec.after["body"] == nil, tt.wantBody, tt.rec.before != nil)
			}
			if tt.rec.after["n"] == nil {
				t.Errorf("after.n is null")
			}
			if fmt.Sprint(tt.rec.source["unchanged_toast"]) != fmt.Sprint(tt.wantUnchanged) {
				t.Errorf("unchanged_toast = %v, want %v", tt.rec.source["unchanged_toast"], tt.wantUnchanged)
			}
			// The header tells a sink to keep the values it has for these
			// fields rather than store the placeholder.
			wantHeader := strings.Trim(strings.ReplaceAll(fmt.Sprint(tt.wantUnchanged), " ", ","), "[]")
			if tt.rec.unchangedHeader != wantHeader {
				t.Errorf("header %s = %q, want %q", schema.HeaderUnchanged, tt.rec.unchangedHeader, wantHeader)
			}
		})
	}
	del := recs[2]
	if del.env.Type != schema.OpDelete || del.key != "1" || del.before["id"] != int64(1) || del.before["n"] != nil {
		t.Errorf("delete = %s key %s before %v, want the key only", del.env.Type, del.key, del.before)
	}
}

func TestMissingSlotOrPublication(t *testing.T) {
	h := newHarness(t)
	tests := []struct {
		name string
		mod  func(*postgres.Config)
		want error
	}{
		{"no publication", func(c *postgres.Config) { c.CreatePublication = false }, postgres.ErrNoPublication},
		{"no slot", func(c *postgres.Config) { c.CreateSlot = false }, postgres.ErrNoSlot},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := h.config()
			tt.mod(&cfg)
			src, err := postgres.New(cfg, postgres.WithRegistry(h.reg))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			err = src.Run(ctx, func(context.Context, cdc.Batch) error { return nil })
			if !errors.Is(err, tt.want) {
				t.Fatalf("run = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  postgres.Config
		ok   bool
	}{
		{"defaults", postgres.Config{DSN: "postgres://x"}, true},
		{"no dsn", postgres.Config{}, false},
		{"bad slot", postgres.Config{DSN: "postgres://x", Slot: "a-b"}, false},
		{"heartbeat without state", postgres.Config{DSN: "postgres://x", StateTable: "-", HeartbeatInterval: time.Second}, false},
		{"bad filter", postgres.Config{DSN: "postgres://x", Filter: cdc.Filter{ExcludeColumns: []string{"nodots"}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, cdc.ErrConfig)) {
				t.Fatalf("Validate = %v, ok want %v", err, tt.ok)
			}
		})
	}
}
