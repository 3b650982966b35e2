package postgres_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/schema"
)

// Outbox rows written by 1,000+ transactions, a random fifth rolled back:
// the changes topic holds exactly the committed events, as the envelopes
// the rows carried, keyed by aggregateid; published rows are deleted.
func TestOutboxPublishesExactlyTheCommitted(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	outbox, biz := h.table("outbox"), h.table("title")
	exec(t, h.db, strings.Replace(cdc.OutboxDDL, cdc.OutboxTable, outbox, 1))
	exec(t, h.db, fmt.Sprintf("CREATE TABLE %s (id text PRIMARY KEY, name text)", biz))
	t.Cleanup(func() { exec(t, h.db, "DROP TABLE IF EXISTS "+outbox+", "+biz) })
	codec, err := schema.NewCodec(h.reg)
	if err != nil {
		t.Fatal(err)
	}
	topic := schema.ChangesTopic("title")
	col := h.collect(topic, cdc.Topic("postgres", "public", outbox))
	cfg := h.config("public."+outbox, "public."+biz)
	cfg.Outbox = outbox
	cfg.OutboxDelete = true
	cfg.Filter.ExcludeTables = []string{"public." + biz} // only the outbox matters here
	run := h.start(cfg)
	defer run.stop(t)
	h.waitActive()

	const txs = 10_000 // the acceptance scale: every one a real transaction
	rng := rand.New(rand.NewPCG(3, 4))
	committed := map[string]string{} // envelope id -> aggregate id
	rolledBack := map[string]bool{}
	for i := 0; i < txs; i++ {
		agg := fmt.Sprintf("t-%d", rng.IntN(50))
		env := schema.NewEnvelope("//studio/titles", schema.OpUpdate, "title", agg)
		env.Sequence = int64(i + 1)
		payload, err := codec.Encode(ctx, nil, topic, &env)
		if err != nil {
			t.Fatal(err)
		}
		tx, err := h.db.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+biz+" VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name", agg, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.Exec(ctx, "INSERT INTO "+outbox+" (id, aggregatetype, aggregateid, type, payload) VALUES ($1, 'title', $2, 'UPDATE', $3)",
			env.ID, agg, payload); err != nil {
			t.Fatal(err)
		}
		if rng.IntN(5) == 0 {
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
			rolledBack[env.ID] = true
			continue
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
		committed[env.ID] = agg
	}
	recs := col.waitFor(t, 60*time.Second, "every committed outbox event", func(rs []record) bool { return len(rs) >= len(committed) })
	time.Sleep(500 * time.Millisecond)
	col.mu.Lock()
	recs = append([]record(nil), col.recs...)
	col.mu.Unlock()
	if len(recs) != len(committed) {
		t.Fatalf("%d records, want %d committed (%d rolled back)", len(recs), len(committed), len(rolledBack))
	}
	lastSeq := map[string]int64{}
	for _, r := range recs {
		agg, ok := committed[r.env.ID]
		switch {
		case r.topic != topic:
			t.Fatalf("outbox row published as a row event on %s", r.topic)
		case rolledBack[r.env.ID]:
			t.Fatalf("rolled back event %s published", r.env.ID)
		case !ok:
			t.Fatalf("unknown event %s", r.env.ID)
		case r.key != agg || r.env.Subject != agg || r.env.Source != "//studio/titles":
			t.Fatalf("event %s keyed %q source %s, want key %s", r.env.ID, r.key, r.env.Source, agg)
		case r.env.Sequence <= lastSeq[agg]:
			t.Fatalf("aggregate %s: sequence %d after %d", agg, r.env.Sequence, lastSeq[agg])
		}
		lastSeq[agg] = r.env.Sequence
		delete(committed, r.env.ID)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		var left int
		if err := h.db.QueryRow(ctx, "SELECT count(*) FROM "+outbox).Scan(&left); err != nil {
			t.Fatal(err)
		}
		if left == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d published outbox rows not deleted", left)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d transactions, %d rolled back, topic holds exactly the %d committed", txs, len(rolledBack), txs-len(rolledBack))
}

// A bare outbox name matches the table in any schema, and a published row
// is deleted from the table it was read from: a service keeping its
// outbox in a schema of its own gets its rows deleted there, and a table
// of the same name in the connection's search path keeps its rows.
func TestOutboxDeleteFromTheRowsSchema(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	outbox := h.table("outbox")
	svc := h.name + "_svc"
	exec(t, h.db, "CREATE SCHEMA "+svc)
	t.Cleanup(func() { exec(t, h.db, "DROP SCHEMA IF EXISTS "+svc+" CASCADE") })
	for _, s := range []string{svc, "public"} {
		exec(t, h.db, strings.Replace(cdc.OutboxDDL, cdc.OutboxTable, s+"."+outbox, 1))
	}
	t.Cleanup(func() { exec(t, h.db, "DROP TABLE IF EXISTS public."+outbox) })
	codec, err := schema.NewCodec(h.reg)
	if err != nil {
		t.Fatal(err)
	}
	topic := schema.ChangesTopic("title")
	col := h.collect(topic)
	cfg := h.config(svc + "." + outbox)
	cfg.Outbox = outbox
	cfg.OutboxDelete = true
	run := h.start(cfg)
	defer run.stop(t)
	h.waitActive()

	env := schema.NewEnvelope("//studio/titles", schema.OpUpdate, "title", "t-1")
	env.Sequence = 1
	payload, err := codec.Encode(ctx, nil, topic, &env)
	if err != nil {
		t.Fatal(err)
	}
	// The same row in both tables; only the service's is published.
	for _, s := range []string{"public", svc} {
		exec(t, h.db, "INSERT INTO "+s+"."+outbox+" (id, aggregatetype, aggregateid, type, payload) VALUES ($1, 'title', 't-1', 'UPDATE', $2)",
			env.ID, payload)
	}
	recs := col.waitFor(t, 20*time.Second, "the outbox event", func(rs []record) bool { return len(rs) >= 1 })
	if recs[0].env.ID != env.ID || recs[0].key != "t-1" {
		t.Fatalf("published %s keyed %q, want %s keyed t-1", recs[0].env.ID, recs[0].key, env.ID)
	}
	count := func(table string) int {
		var n int
		if err := h.db.QueryRow(ctx, "SELECT count(*) FROM "+table).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	deadline := time.Now().Add(10 * time.Second)
	for count(svc+"."+outbox) != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("the published row is still in %s.%s", svc, outbox)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := count("public." + outbox); n != 1 {
		t.Fatalf("public.%s holds %d rows, want its unpublished one", outbox, n)
	}
}
