package mysql_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/slatehq/slate/internal/testenv"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/cdc/mysql"
	"github.com/slatehq/slate/schema"
)

// With Snapshot, the rows a table held before the first run arrive as
// SNAPSHOT events, before the changes committed afterwards, and only then
// is an offset stored.
func TestSnapshotThenStream(t *testing.T) {
	db := connect(t)
	name := fmt.Sprintf("sls%d", time.Now().UnixNano()%1e9)
	tbl := name + "_acct"
	exec(t, db, "CREATE TABLE "+tbl+" (id int PRIMARY KEY, v bigint NOT NULL, note varchar(64), at datetime(6))")
	t.Cleanup(func() {
		exec(t, db, "DROP TABLE IF EXISTS "+tbl)
		exec(t, db, "DELETE FROM slate_cdc_offsets WHERE name = ?", name)
	})
	const existing = 25
	for i := 1; i <= existing; i++ {
		exec(t, db, "INSERT INTO "+tbl+" VALUES (?, ?, 'before', '2026-01-02 03:04:05.123456')", i, i)
	}
	e := testenv.Start(t, "//mysql/test")
	reg, p := e.Registry, e.Producer
	src, err := mysql.New(mysql.Config{DSN: dsn(), Name: name, FlushInterval: 50 * time.Millisecond, Snapshot: true, MaxTxEvents: 10,
		Filter: cdc.Filter{IncludeTables: []string{"test." + tbl}}}, mysql.WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := cdc.NewRunner(p)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, src) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()
	for i := 0; ; i++ { // stored once the snapshot is acknowledged
		r, err := db.Execute("SELECT count(*) FROM slate_cdc_offsets WHERE name = ?", name)
		if err == nil {
			if n, _ := r.GetInt(0, 0); n == 1 {
				break
			}
		}
		if i > 300 {
			t.Fatal("no offset stored after the snapshot")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for i := existing + 1; i <= existing+5; i++ {
		exec(t, db, "INSERT INTO "+tbl+" VALUES (?, ?, 'after', NOW(6))", i, i)
	}

	cl, _ := kgo.NewClient(kgo.SeedBrokers(e.Brokers), kgo.ConsumeTopics(cdc.Topic(name, "test", tbl)), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cl.Close()
	codec, _ := schema.NewCodec(reg)
	cctx, ccancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer ccancel()
	// Partitions interleave: check per event, not the overall order.
	got := map[int64]schema.Op{}
	var maxSnapSeq, minStreamSeq int64
	for len(got) < existing+5 && cctx.Err() == nil {
		for _, kr := range cl.PollFetches(cctx).Records() {
			e, m, err := decodeRow(cctx, codec, reg, kr.Value)
			if err != nil {
				t.Fatal(err)
			}
			after := rowOf(m, "after")
			v := after["v"].(int64)
			if _, dup := got[v]; dup {
				t.Errorf("v %d twice", v)
			}
			got[v] = e.Type
			switch e.Type {
			case schema.OpSnapshot:
				if after["note"] != "before" || m["source"].(map[string]any)["snapshot"] != true {
					t.Errorf("snapshot row %v, source %v", after, m["source"])
				}
				maxSnapSeq = max(maxSnapSeq, e.Sequence)
			default:
				if minStreamSeq == 0 || e.Sequence < minStreamSeq {
					minStreamSeq = e.Sequence
				}
			}
		}
	}
	for v := int64(1); v <= existing+5; v++ {
		want := schema.OpSnapshot
		if v > existing {
			want = schema.OpCreate
		}
		if got[v] != want {
			t.Errorf("v %d: %q, want %s", v, got[v], want)
		}
	}
	if len(got) != existing+5 {
		t.Errorf("%d events, want %d", len(got), existing+5)
	}
	if maxSnapSeq >= minStreamSeq {
		t.Errorf("snapshot sequence %d not below the first streamed one %d", maxSnapSeq, minStreamSeq)
	}
}
