package mysql_test

import (
	"fmt"
	"testing"

	"github.com/slatehq/slate/cdc/mysql"
	"github.com/slatehq/slate/schema"
)

// An UPDATE that changes the primary key is a DELETE of the old key (the
// full before image) and a CREATE of the new one, so a sink keyed by the
// primary key does not keep the old key's document; one that keeps the
// key stays an UPDATE.
func TestKeyChangeDeletesOldKey(t *testing.T) {
	s := newSource(t, "slk")
	db := connect(t)
	exec(t, db, "CREATE TABLE "+s.table+" (id int PRIMARY KEY, v bigint NOT NULL)")
	s.run(mysql.Config{})
	exec(t, db, "INSERT INTO "+s.table+" VALUES (1, 1), (2, 2)")
	exec(t, db, "UPDATE "+s.table+" SET id = id + 10, v = v + 2") // one rows event, two keys moved
	exec(t, db, "UPDATE "+s.table+" SET v = 5 WHERE id = 11")

	recs := s.collect(7)
	got := map[string][]rec{}
	for _, r := range recs {
		got[r.key] = append(got[r.key], r)
	}
	wants := map[string][]schema.Op{
		"1": {schema.OpCreate, schema.OpDelete}, "2": {schema.OpCreate, schema.OpDelete},
		"11": {schema.OpCreate, schema.OpUpdate}, "12": {schema.OpCreate},
	}
	movedV := map[string]int64{"11": 3, "12": 4} // after of the create of a moved row
	for key, ops := range wants {
		rs := got[key]
		if len(rs) != len(ops) {
			t.Errorf("key %s: %d events, want %v", key, len(rs), ops)
			continue
		}
		for i, op := range ops {
			r := rs[i]
			if r.env.Type != op {
				t.Errorf("key %s #%d: %s, want %s", key, i, r.env.Type, op)
			}
			switch {
			case op == schema.OpDelete && (r.before == nil || fmt.Sprint(r.before["id"]) != key || r.after != nil):
				t.Errorf("key %s delete: before %v after %v, want the old row", key, r.before, r.after)
			case i == 0 && movedV[key] != 0 && (r.after == nil || r.after["v"] != movedV[key] || r.before != nil):
				t.Errorf("key %s create: before %v after %v", key, r.before, r.after)
			}
		}
	}
	if len(got["1"]) == 2 && len(got["11"]) == 2 && got["1"][1].env.Sequence >= got["11"][0].env.Sequence {
		t.Errorf("delete of 1 has sequence %d, create of 11 %d", got["1"][1].env.Sequence, got["11"][0].env.Sequence)
	}
}
