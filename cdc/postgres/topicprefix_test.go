package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/cdc/postgres"
	"github.com/slatehq/slate/schema"
)

// With a topic prefix, row changes go to <prefix>cdc.<db>.<schema>.<table>
// and outbox rows to <prefix><aggregatetype>.changes, and nothing to the
// default studio. topics.
func TestTopicPrefixNamesEveryTopic(t *testing.T) {
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
	changes, rows := "acme.title.changes", "acme.cdc.postgres.public."+biz
	if got := cdc.TopicIn("acme.", "postgres", "public", biz); got != rows {
		t.Fatalf("TopicIn = %q, want %q", got, rows)
	}
	col := h.collect(changes, rows, schema.ChangesTopic("title"), cdc.Topic("postgres", "public", biz))
	cfg := h.config("public."+outbox, "public."+biz)
	cfg.Snapshot = false
	cfg.Outbox = outbox
	cfg.TopicPrefix = "acme."
	run := h.start(cfg)
	defer run.stop(t)
	h.waitActive()

	env := schema.NewEnvelope("//studio/titles", schema.OpUpdate, "title", "t-1")
	payload, err := codec.Encode(ctx, nil, changes, &env)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := h.db.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+biz+" VALUES ('t-1', 'Dune')"); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "INSERT INTO "+outbox+" (id, aggregatetype, aggregateid, type, payload) VALUES ($1, 'title', 't-1', 'UPDATE', $2)",
		env.ID, payload); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	col.waitFor(t, 30*time.Second, "the row and the outbox event", func(rs []record) bool { return len(rs) >= 2 })
	time.Sleep(300 * time.Millisecond) // anything published to a default topic would be in by now
	col.mu.Lock()
	recs := append([]record(nil), col.recs...)
	col.mu.Unlock()
	got := map[string]string{}
	for _, r := range recs {
		got[r.topic] = r.key
	}
	want := map[string]string{changes: "t-1", rows: "t-1"}
	if len(got) != len(want) || got[changes] != "t-1" || got[rows] != "t-1" {
		t.Fatalf("published (topic: key) %v, want %v", got, want)
	}
}

func TestConfigRefusesBadTopicPrefix(t *testing.T) {
	cfg := postgres.Config{DSN: "postgres://x", TopicPrefix: "acme prod."}
	err := cfg.Validate()
	if !errors.Is(err, cdc.ErrConfig) || !errors.Is(err, schema.ErrTopicPrefix) || !strings.Contains(err.Error(), "topic_prefix") {
		t.Fatalf("Validate = %v, want ErrConfig naming topic_prefix", err)
	}
	cfg = postgres.Config{DSN: "postgres://x"}
	if err := cfg.Validate(); err != nil || cfg.TopicPrefix != schema.DefaultTopicPrefix {
		t.Fatalf("Validate = %v, prefix %q; want the default %q", err, cfg.TopicPrefix, schema.DefaultTopicPrefix)
	}
}
