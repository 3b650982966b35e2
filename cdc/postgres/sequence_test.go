package postgres_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/schema"
)

// begin opens a transaction on a connection of its own.
func begin(t *testing.T) pgx.Tx {
	t.Helper()
	tx, err := pgConn(t).Begin(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(context.Background()) })
	return tx
}

func txExec(t *testing.T, tx pgx.Tx, sql string, args ...any) {
	t.Helper()
	if _, err := tx.Exec(context.Background(), sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func commit(t *testing.T, tx pgx.Tx) {
	t.Helper()
	if err := tx.Commit(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// quiesce waits until no session but the given ones holds a transaction
// id, so that the next CHECKPOINT's running-transactions record moves the
// new slot's snapshot builder exactly one phase on.
func (h *harness) quiesce(except ...pgx.Tx) {
	h.t.Helper()
	ctx := context.Background()
	var pids []int32
	for _, tx := range except {
		pids = append(pids, int32(tx.Conn().PgConn().PID()))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		err := h.db.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE backend_xid IS NOT NULL AND pid <> pg_backend_pid() AND NOT pid = ANY($1)`, pids).Scan(&n)
		if err != nil {
			h.t.Fatal(err)
		}
		if n == 0 {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("%d other sessions keep a transaction open", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A transaction that writes before the snapshot's consistent point and
// commits after it is streamed with changes whose LSNs are below the
// consistent point; its sequence must still be above the snapshot's, or a
// versioned sink refuses it as old.
func TestSequenceAboveSnapshotForTxOpenAcrossConsistentPoint(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	tbl, other := h.table("acct"), h.table("other")
	exec(t, h.db, fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, v bigint NOT NULL)", tbl))
	exec(t, h.db, fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY)", other))
	t.Cleanup(func() { exec(t, h.db, "DROP TABLE IF EXISTS "+tbl+", "+other) })
	exec(t, h.db, "INSERT INTO "+tbl+" VALUES (1, 0), (2, 0)")

	// A logical slot is consistent once every transaction that was running
	// when its snapshot builder reached the "full snapshot" phase ended;
	// transactions that began after that phase are decoded whole, even
	// those that wrote before the consistent point. So: a runs when the
	// slot is created; b begins after that and runs when a's end moves
	// the builder to the full phase; late begins then and writes; b's end
	// makes the slot consistent; late commits after the snapshot.
	a := begin(t)
	txExec(t, a, "INSERT INTO "+other+" VALUES (1)")
	col := h.collect(cdc.Topic("postgres", "public", tbl))
	run := h.start(h.config("public." + tbl))
	defer run.stop(t)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var n int
		if err := h.db.QueryRow(ctx, "SELECT count(*) FROM pg_replication_slots WHERE slot_name = $1", h.name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the slot creation never started")
		}
		time.Sleep(20 * time.Millisecond)
	}
	b := begin(t)
	txExec(t, b, "INSERT INTO "+other+" VALUES (2)")
	commit(t, a)
	h.quiesce(b)
	exec(t, h.db, "CHECKPOINT")
	late := begin(t)
	txExec(t, late, "UPDATE "+tbl+" SET v = 1 WHERE id = 1")
	txExec(t, late, "UPDATE "+tbl+" SET v = 1 WHERE id = 2")
	commit(t, b)
	h.quiesce(late)
	exec(t, h.db, "CHECKPOINT")
	col.waitFor(t, 20*time.Second, "the snapshot", func(rs []record) bool { return len(rs) >= 2 })
	commit(t, late)
	recs := col.waitFor(t, 20*time.Second, "the late updates", func(rs []record) bool { return len(rs) >= 4 })

	snap := map[string]record{}
	for _, r := range recs {
		if r.env.Type == schema.OpSnapshot {
			if r.after["v"] != int64(0) {
				t.Fatalf("snapshot of %s = %v, want v 0 (the late transaction was not committed)", r.key, r.after)
			}
			snap[r.key] = r
		}
	}
	for _, r := range recs {
		if r.env.Type != schema.OpUpdate {
			continue
		}
		s, ok := snap[r.key]
		if !ok {
			t.Fatalf("update of %s without its snapshot row", r.key)
		}
		if r.source["lsn"].(int64) >= s.source["lsn"].(int64) {
			t.Fatalf("update of %s at LSN %d, snapshot at %d: the update was not written before the consistent point",
				r.key, r.source["lsn"], s.source["lsn"])
		}
		if r.env.Sequence <= s.env.Sequence {
			t.Errorf("key %s: streamed update has sequence %d, snapshot %d: a versioned sink drops the update",
				r.key, r.env.Sequence, s.env.Sequence)
		}
	}
}

// Sequences follow commit order across transactions, whichever began or
// wrote first, and the order of changes inside one transaction, also for
// several rows of one statement.
func TestSequenceFollowsCommitOrder(t *testing.T) {
	h := newHarness(t)
	tbl := h.table("acct")
	exec(t, h.db, fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, v bigint NOT NULL)", tbl))
	t.Cleanup(func() { exec(t, h.db, "DROP TABLE IF EXISTS "+tbl) })
	exec(t, h.db, "INSERT INTO "+tbl+" VALUES (1, 0)")
	col := h.collect(cdc.Topic("postgres", "public", tbl))
	cfg := h.config("public." + tbl)
	run := h.start(cfg)
	defer run.stop(t)
	h.waitSnapshotDone(cfg)

	// v numbers the changes in commit order.
	first := begin(t)
	txExec(t, first, "INSERT INTO "+tbl+" VALUES (10, 4), (11, 5), (12, 6)")
	txExec(t, first, "UPDATE "+tbl+" SET v = 7 WHERE id = 10")
	second := begin(t)
	txExec(t, second, "INSERT INTO "+tbl+" VALUES (20, 1), (21, 2)")
	txExec(t, second, "UPDATE "+tbl+" SET v = 3 WHERE id = 1")
	commit(t, second)
	commit(t, first)
	exec(t, h.db, "INSERT INTO "+tbl+" VALUES (30, 8), (31, 9)")
	third := begin(t)
	for v := 10; v <= 12; v++ {
		txExec(t, third, "UPDATE "+tbl+" SET v = $1 WHERE id = 31", v)
	}
	commit(t, third)

	const changes = 12
	recs := col.waitFor(t, 20*time.Second, "every change", func(rs []record) bool { return len(rs) >= 1+changes })
	var snapSeq int64
	var streamed []record
	for _, r := range recs {
		if r.env.Type == schema.OpSnapshot {
			snapSeq = r.env.Sequence
			continue
		}
		streamed = append(streamed, r)
	}
	slices.SortFunc(streamed, func(a, b record) int { return int(rowV(a) - rowV(b)) })
	if len(streamed) != changes {
		t.Fatalf("%d streamed changes, want %d", len(streamed), changes)
	}
	last := snapSeq
	for i, r := range streamed {
		if rowV(r) != int64(i+1) {
			t.Fatalf("change %d has v %d", i+1, rowV(r))
		}
		if r.env.Sequence <= last {
			t.Errorf("change v=%d (key %s, txid %v, lsn %v): sequence %d after %d", rowV(r), r.key,
				r.source["txid"], r.source["lsn"], r.env.Sequence, last)
		}
		last = r.env.Sequence
	}
}
