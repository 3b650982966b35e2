package mysql_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/cdc/mysql"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

// rec is one consumed CDC event with its decoded rows.
type rec struct {
	key           string
	env           schema.Envelope
	before, after map[string]any
}

func (r rec) v() int64 {
	row := r.after
	if row == nil {
		row = r.before
	}
	v, _ := row["v"].(int64)
	return v
}

// source runs a source for the test's table (named name_acct) with its
// own offsets row and returns a function that waits for n events.
type source struct {
	t     *testing.T
	name  string
	table string
	env   testenv.Env
}

func newSource(t *testing.T, prefix string) *source {
	db := connect(t)
	name := fmt.Sprintf("%s%d", prefix, time.Now().UnixNano()%1e9)
	s := &source{t: t, name: name, table: name + "_acct", env: testenv.Start(t, "//mysql/test")}
	t.Cleanup(func() {
		exec(t, db, "DROP TABLE IF EXISTS "+s.table)
		exec(t, db, "DELETE FROM slate_cdc_offsets WHERE name = ?", name)
	})
	return s
}

// run starts the source and waits until it stored its first offset (with
// Snapshot: until the snapshot is acknowledged).
func (s *source) run(cfg mysql.Config) {
	t := s.t
	cfg.DSN, cfg.Name, cfg.FlushInterval = dsn(), s.name, 50*time.Millisecond
	cfg.Filter = cdc.Filter{IncludeTables: []string{"test." + s.table}}
	src, err := mysql.New(cfg, mysql.WithRegistry(s.env.Registry))
	if err != nil {
		t.Fatal(err)
	}
	r, _ := cdc.NewRunner(s.env.Producer)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, src) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	})
	db := connect(t)
	for i := 0; ; i++ {
		r, err := db.Execute("SELECT count(*) FROM slate_cdc_offsets WHERE name = ?", s.name)
		if err == nil {
			if n, _ := r.GetInt(0, 0); n == 1 {
				return
			}
		}
		if i > 300 {
			t.Fatal("no offset stored")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// collect reads the table's topic until n events arrived.
func (s *source) collect(n int) []rec {
	t := s.t
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.env.Brokers), kgo.ConsumeTopics(cdc.Topic(s.name, "test", s.table)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	codec, _ := schema.NewCodec(s.env.Registry)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var mu sync.Mutex
	var out []rec
	for len(out) < n && ctx.Err() == nil {
		for _, kr := range cl.PollFetches(ctx).Records() {
			e, m, err := decodeRow(ctx, codec, s.env.Registry, kr.Value)
			if err != nil {
				t.Fatal(err)
			}
			r := rec{key: string(kr.Key), env: e, before: rowOf(m, "before"), after: rowOf(m, "after")}
			mu.Lock()
			out = append(out, r)
			mu.Unlock()
		}
	}
	if len(out) < n {
		t.Fatalf("%d events, want %d", len(out), n)
	}
	return out
}

// decodeRow decodes a CDC record into its envelope and its data.
func decodeRow(ctx context.Context, codec *schema.Codec, reg schema.Registry, value []byte) (schema.Envelope, map[string]any, error) {
	e, err := codec.Decode(ctx, value)
	if err != nil {
		return e, nil, err
	}
	var m map[string]any
	err = schema.DecodeData(ctx, reg, e.Data, &m)
	return e, m, err
}

// rowOf returns the before or after row of a record's data, nil when absent.
func rowOf(m map[string]any, field string) map[string]any {
	u, _ := m[field].(map[string]any)
	for _, r := range u {
		row, _ := r.(map[string]any)
		return row
	}
	return nil
}

// Sequences grow in commit order, across the snapshot boundary (a
// transaction open before the snapshot and committed after it) and
// between the rows of one statement, which share one rows event.
func TestSequenceFollowsCommitOrderAndRowOrder(t *testing.T) {
	s := newSource(t, "slq")
	db := connect(t)
	exec(t, db, "CREATE TABLE "+s.table+" (id int PRIMARY KEY, v bigint NOT NULL)")
	exec(t, db, "INSERT INTO "+s.table+" VALUES (1, 0), (2, 0), (3, 0)")
	// v numbers the streamed changes in commit order.
	open := connect(t)
	exec(t, open, "BEGIN")
	exec(t, open, "UPDATE "+s.table+" SET v = id WHERE id IN (1, 2, 3)")
	s.run(mysql.Config{Snapshot: true})
	exec(t, open, "COMMIT")
	exec(t, db, "INSERT INTO "+s.table+" VALUES (4, 4), (5, 5), (6, 6)")
	exec(t, db, "BEGIN")
	exec(t, db, "UPDATE "+s.table+" SET v = 7 WHERE id = 4")
	exec(t, db, "UPDATE "+s.table+" SET v = 8 WHERE id = 4")
	exec(t, db, "DELETE FROM "+s.table+" WHERE id IN (5, 6)") // v 5 and 6: ordered by the second rows event
	exec(t, db, "COMMIT")

	recs := s.collect(3 + 8)
	snap := map[string]int64{}
	var streamed []rec
	for _, r := range recs {
		if r.env.Type == schema.OpSnapshot {
			if r.after["v"] != int64(0) {
				t.Fatalf("snapshot row %v: the open transaction was not committed yet", r.after)
			}
			snap[r.key] = r.env.Sequence
			continue
		}
		streamed = append(streamed, r)
	}
	for _, r := range streamed {
		if seq, ok := snap[r.key]; ok && r.env.Sequence <= seq {
			t.Errorf("key %s: streamed %s sequence %d, snapshot %d", r.key, r.env.Type, r.env.Sequence, seq)
		}
	}
	// Deletes carry v 5 and 6 but come last: order by commit, then v.
	slices.SortFunc(streamed, func(a, b rec) int {
		ad, bd := a.env.Type == schema.OpDelete, b.env.Type == schema.OpDelete
		if ad != bd {
			if ad {
				return 1
			}
			return -1
		}
		return int(a.v() - b.v())
	})
	var last int64
	for _, r := range streamed {
		if r.env.Sequence <= last {
			t.Errorf("%s of key %s (v %d): sequence %d after %d", r.env.Type, r.key, r.v(), r.env.Sequence, last)
		}
		last = r.env.Sequence
	}
}
