package stack_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/consumer/sink/hive"
	"github.com/slatehq/slate/internal/stack"
	"github.com/slatehq/slate/internal/testenv"
	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
	"github.com/slatehq/slate/schema"
)

func startStack(t *testing.T, transactional bool) *stack.Stack {
	t.Helper()
	s, err := stack.Start(context.Background(), stack.Config{DataDir: t.TempDir(), Transactional: transactional})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return s
}

type row struct {
	ID, Type, Subject, Data string
	Sequence                int64
}

func readTable(t *testing.T, s *stack.Stack) []row {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	glob := filepath.Join(s.HiveRoot, s.HiveTable, "**", "*.parquet")
	rows, err := db.Query(fmt.Sprintf(`SELECT id, type, subject, sequence, data FROM read_parquet('%s', hive_partitioning=true) ORDER BY subject, sequence`, glob))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []row
	for rows.Next() {
		var r row
		var data sql.NullString // NULL for ID-only and DELETE events
		if err := rows.Scan(&r.ID, &r.Type, &r.Subject, &r.Sequence, &data); err != nil {
			t.Fatal(err)
		}
		r.Data = data.String
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// One title's life through the whole system: gRPC writes publish ID-only
// events, the enricher materializes the current state, the consumer appends
// each event once to the Hive table, read back with DuckDB.
func TestEndToEnd(t *testing.T) {
	t.Run("at-least-once", func(t *testing.T) { endToEnd(t, false) })
	t.Run("transactional", func(t *testing.T) { endToEnd(t, true) })
}

func endToEnd(t *testing.T, transactional bool) {
	s := startStack(t, transactional)
	ctx := context.Background()

	created, err := s.Titles.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: &titlesv1.Title{
		Name: "The Long Night", Kind: "FEATURE", Status: "DEVELOPMENT", ReleaseDate: "2027-07-01"}})
	if err != nil {
		t.Fatal(err)
	}
	keep := created.GetTitle()
	keep.ReleaseDate = "2027-06-01"
	if _, err := s.Titles.UpdateTitle(ctx, &titlesv1.UpdateTitleRequest{Title: keep}); err != nil {
		t.Fatal(err)
	}
	keep.ReleaseDate = "2027-07-04"
	keep.Status = "PRODUCTION"
	final, err := s.Titles.UpdateTitle(ctx, &titlesv1.UpdateTitleRequest{Title: keep})
	if err != nil {
		t.Fatal(err)
	}
	gone, err := s.Titles.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: &titlesv1.Title{
		Name: "Cancelled Pilot", Kind: "EPISODE", Status: "DEVELOPMENT"}})
	if err != nil {
		t.Fatal(err)
	}
	del, err := s.Titles.DeleteTitle(ctx, &titlesv1.DeleteTitleRequest{Id: gone.GetTitle().GetId()})
	if err != nil {
		t.Fatal(err)
	}

	want := map[string]stack.Expectation{
		keep.GetId():            {Version: final.GetTitle().GetVersion()},
		gone.GetTitle().GetId(): {Version: del.GetVersion(), Deleted: true},
	}
	testenv.WaitFor(t, 30*time.Second, "every change in the sink", func() bool { return len(s.Tracker.Missing(want)) == 0 })
	// /metrics serves the stack's own registry: its enricher, consumers
	// and sinks, and the Go runtime.
	resp, err := http.Get(s.MetricsURL())
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %d %v", resp.StatusCode, err)
	}
	for _, series := range []string{`slate_enricher_events_total{entity="title"}`, `slate_consumer_records_total{group="title-sink"`,
		`slate_sink_events_total{`, "go_goroutines "} {
		if !bytes.Contains(body, []byte(series)) {
			t.Errorf("/metrics has no %s", series)
		}
	}

	rows := readTable(t, s)
	seen := map[string]bool{}
	latest := map[string]row{}
	for _, r := range rows {
		if seen[r.ID] {
			t.Errorf("event %s written twice", r.ID)
		}
		seen[r.ID] = true
		if !schema.Op(r.Type).Valid() {
			t.Errorf("row type %q", r.Type)
		}
		latest[r.Subject] = r
	}
	k := latest[keep.GetId()]
	var rec struct {
		ReleaseDate string `json:"release_date"`
		Status      string `json:"status"`
		Version     int64  `json:"version"`
	}
	if err := json.Unmarshal([]byte(k.Data), &rec); err != nil {
		t.Fatalf("data of %s: %v (%q)", k.Subject, err, k.Data)
	}
	// CREATE when the enricher coalesced the create with the updates,
	// UPDATE when they fell into different batches. The title view joins
	// the schedule and the budget (none here): its sequence is the view
	// version of the title's.
	view := func(v int64) int64 { return v << 32 }
	if (k.Type != "UPDATE" && k.Type != "CREATE") || rec.ReleaseDate != "2027-07-04" || rec.Status != "PRODUCTION" || k.Sequence != view(final.GetTitle().GetVersion()) {
		t.Errorf("latest row of kept title = %+v, data %+v; want CREATE/UPDATE 2027-07-04 PRODUCTION v%d", k, rec, final.GetTitle().GetVersion())
	}
	if g := latest[gone.GetTitle().GetId()]; g.Type != "DELETE" || g.Sequence != view(del.GetVersion()) {
		t.Errorf("latest row of deleted title = %+v, want DELETE v%d", g, del.GetVersion())
	}
	var creates int
	for _, r := range rows {
		if r.Type == "CREATE" {
			creates++
		}
	}
	if creates == 0 {
		t.Error("no CREATE row")
	}

	// The embedded search index holds the kept title at its last version
	// and not the deleted one.
	doc, v, found, err := s.Search.Get(ctx, "title", keep.GetId())
	if err != nil || !found || v != view(final.GetTitle().GetVersion()) || doc["release_date"] != "2027-07-04" {
		t.Errorf("search: kept title = %v, v%d, found %v, err %v", doc, v, found, err)
	}
	if _, _, found, err := s.Search.Get(ctx, "title", gone.GetTitle().GetId()); err != nil || found {
		t.Errorf("search: deleted title found=%v err=%v", found, err)
	}

	// Running the same events again writes nothing new: a second consumer
	// group replays the materialized topic from the start through the same
	// dedupe store into the same table.
	before := len(rows)
	replaySink, err := hive.New(s.HiveRoot, s.HiveTable, hive.WithRegistry(s.Registry))
	if err != nil {
		t.Fatal(err)
	}
	var dropped atomic.Int64
	h := consumer.Deduplicate(s.Dedupe, consumer.DedupeConfig{OnDuplicates: func(n int) { dropped.Add(int64(n)) }}, consumer.ToSinks(replaySink))
	c, err := consumer.New(h, consumer.WithBrokers(s.Brokers), consumer.WithGroup("replay"),
		consumer.WithTopics(schema.MaterializedTopic("title")), consumer.WithRegistry(s.Registry))
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(rctx) }()
	testenv.WaitFor(t, 30*time.Second, "the replay to see every event", func() bool { return dropped.Load() >= int64(before) })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_ = replaySink.Close(ctx)
	if after := len(readTable(t, s)); after != before {
		t.Errorf("replay changed the table: %d rows, want %d", after, before)
	}
}

// With --transactional the enricher publishes in Kafka transactions; its
// dead letters and the sink consumer's must not: a poison record on each
// consumer's input reaches its dead-letter topic, visible to a
// read_committed reader, and the consumers move on.
func TestTransactionalDeadLetters(t *testing.T) {
	s := startStack(t, true)
	ctx := context.Background()
	poison := []byte("not an envelope")
	topics := []string{schema.ChangesTopic("title"), schema.MaterializedTopic("title")}
	for _, topic := range topics {
		if err := s.Producer.PublishRaw(ctx, topic, []byte("poison:"+topic), poison, nil); err != nil {
			t.Fatal(err)
		}
	}
	for _, topic := range topics {
		t.Run(topic, func(t *testing.T) {
			key := "poison:" + topic
			if got := readCommittedKey(t, s.Brokers, schema.DLQTopic(topic), key); string(got) != string(poison) {
				t.Fatalf("dead letter of %s = %q, want the record as read", topic, got)
			}
		})
	}
	// Both consumers are past their poison: a title still reaches the sink.
	created, err := s.Titles.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: &titlesv1.Title{
		Name: "After the Poison", Kind: "FEATURE", Status: "DEVELOPMENT"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]stack.Expectation{created.GetTitle().GetId(): {Version: created.GetTitle().GetVersion()}}
	testenv.WaitFor(t, 30*time.Second, "a title after the poison records in the sink", func() bool { return len(s.Tracker.Missing(want)) == 0 })
}

// A poison record as large as the broker accepts, over librdkafka's
// default message.max.bytes, reaches the dead-letter topic whole: the
// dead-letter producer is sized to the broker. The enricher's consumer
// moves on past it.
func TestBrokerSizedPoisonRecordIsDeadLetteredWhole(t *testing.T) {
	s := startStack(t, false)
	ctx := context.Background()
	topic := schema.ChangesTopic("title")
	poison := make([]byte, 1_000_400)
	_, _ = rand.Read(poison) // incompressible, and not an envelope
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.Brokers), kgo.ProducerBatchMaxBytes(2_000_000), kgo.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("poison:big"), Value: poison}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if got := readCommittedKey(t, s.Brokers, schema.DLQTopic(topic), "poison:big"); !bytes.Equal(got, poison) {
		t.Fatalf("dead letter of %d bytes, want the whole %d-byte record", len(got), len(poison))
	}
	created, err := s.Titles.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: &titlesv1.Title{
		Name: "After the Big Poison", Kind: "FEATURE", Status: "DEVELOPMENT"}})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]stack.Expectation{created.GetTitle().GetId(): {Version: created.GetTitle().GetVersion()}}
	testenv.WaitFor(t, 30*time.Second, "a title after the poison record in the sink", func() bool { return len(s.Tracker.Missing(want)) == 0 })
}

// readCommittedKey returns the value of the first record with key that a
// read_committed reader sees on topic, failing after 20s.
func readCommittedKey(t *testing.T, brokers, topic, key string) []byte {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(topic), kgo.AllowAutoTopicCreation(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		pctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
		rs := cl.PollFetches(pctx).Records()
		cancel()
		for _, r := range rs {
			if string(r.Key) == key {
				return r.Value
			}
		}
	}
	t.Fatalf("no record with key %q on %s for a read_committed reader within 20s", key, topic)
	return nil
}
