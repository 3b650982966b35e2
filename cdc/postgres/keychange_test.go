package postgres_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/slatehq/slate/schema"
)

// An UPDATE that changes the primary key is a DELETE of the old key and a
// CREATE of the new one, under the default replica identity (the old key
// comes alone) and under FULL (the whole old row), so a sink keyed by the
// primary key does not keep the old key's document.
func TestKeyChangeDeletesOldKey(t *testing.T) {
	h := newHarness(t)
	tbl, col, run := h.streamTable("acct", "id int PRIMARY KEY, v bigint NOT NULL")
	defer run.stop(t)
	exec(t, h.db, "INSERT INTO "+tbl+" VALUES (1, 1), (2, 2)")
	exec(t, h.db, "UPDATE "+tbl+" SET id = 10, v = 3 WHERE id = 1")
	exec(t, h.db, "ALTER TABLE "+tbl+" REPLICA IDENTITY FULL")
	exec(t, h.db, "UPDATE "+tbl+" SET id = 20, v = 4 WHERE id = 2")
	exec(t, h.db, "UPDATE "+tbl+" SET v = 5 WHERE id = 20") // same key: an update
	recs := col.waitFor(t, 20*time.Second, "7 changes", func(rs []record) bool { return len(rs) >= 7 })
	time.Sleep(200 * time.Millisecond)
	col.mu.Lock()
	recs = append([]record(nil), col.recs...)
	col.mu.Unlock()

	type want struct {
		op       schema.Op
		key      string
		beforeV  any
		afterV   any
		identity string
	}
	wants := map[string][]want{ // per key, in order
		"1":  {{schema.OpCreate, "1", nil, int64(1), ""}, {schema.OpDelete, "1", nil, nil, "default"}},
		"10": {{schema.OpCreate, "10", nil, int64(3), "default"}},
		"2":  {{schema.OpCreate, "2", nil, int64(2), ""}, {schema.OpDelete, "2", int64(2), nil, "full"}},
		"20": {{schema.OpCreate, "20", nil, int64(4), "full"}, {schema.OpUpdate, "20", int64(4), int64(5), "full"}},
	}
	got := map[string][]record{}
	for _, r := range recs {
		got[r.key] = append(got[r.key], r)
	}
	if len(recs) != 7 {
		t.Errorf("%d records, want 7", len(recs))
	}
	for key, ws := range wants {
		rs := got[key]
		if len(rs) != len(ws) {
			t.Errorf("key %s: %d records, want %d", key, len(rs), len(ws))
			continue
		}
		for i, w := range ws {
			r := rs[i]
			if r.env.Type != w.op || r.env.Subject != w.key {
				t.Errorf("key %s #%d: %s subject %s, want %s", key, i, r.env.Type, r.env.Subject, w.op)
			}
			if w.op == schema.OpDelete && (r.before == nil || fmt.Sprint(r.before["id"]) != key || r.after != nil) {
				t.Errorf("key %s delete: before %v after %v, want the old key and no after", key, r.before, r.after)
			}
			if w.op == schema.OpCreate && (r.after == nil || r.after["v"] != w.afterV || r.before != nil) {
				t.Errorf("key %s create: before %v after %v, want after v %v", key, r.before, r.after, w.afterV)
			}
			if w.beforeV != nil && (r.before == nil || r.before["v"] != w.beforeV) {
				t.Errorf("key %s %s: before %v, want v %v (%s identity)", key, w.op, r.before, w.beforeV, w.identity)
			}
		}
	}
	// The delete of the old key orders before the create of the new one.
	if len(got["1"]) == 2 && len(got["10"]) == 1 && got["1"][1].env.Sequence >= got["10"][0].env.Sequence {
		t.Errorf("delete of 1 has sequence %d, create of 10 %d", got["1"][1].env.Sequence, got["10"][0].env.Sequence)
	}
}
