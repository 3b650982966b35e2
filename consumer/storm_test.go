package consumer_test

import (
	"database/sql"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/consumer/sink/hive"
	"github.com/slatehq/slate/dedupe"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

// A duplicate storm: 20% of the events are delivered twice by the
// producer side, then a second consumer group replays the whole topic
// through the same dedupe store. Elasticsearch (the double) and the Hive
// audit table (read back with DuckDB) hold each event exactly once.
func TestDuplicateStorm(t *testing.T) {
	const n = 2000
	f := setup(t)
	e := newES(t)
	table, err := hive.New(t.TempDir(), "audit")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = table.Close(t.Context()) })
	store := dedupe.NewMemory()
	defer store.Close()

	topic := "studio.title.materialized.storm"
	envs := titleEvents(n, "storm")
	deliveries := append([]schema.Envelope(nil), envs...)
	rng := rand.New(rand.NewPCG(1, 2))
	for _, i := range rng.Perm(n)[:n/5] {
		// a redelivery: the same envelope (same id) at a later offset
		deliveries = append(deliveries, envs[i])
	}
	rng.Shuffle(len(deliveries)-n/2, func(i, j int) {
		deliveries[n/2+i], deliveries[n/2+j] = deliveries[n/2+j], deliveries[n/2+i]
	})
	if err := f.pub.Publish(t.Context(), topic, deliveries...); err != nil {
		t.Fatal(err)
	}

	var dups atomic.Int64
	h := consumer.Deduplicate(store, consumer.DedupeConfig{OnDuplicates: func(k int) { dups.Add(int64(k)) }},
		consumer.ToSinks(e.sink, table))
	for _, group := range []string{"storm-1", "storm-2"} {
		c, err := consumer.New(h, consumer.WithBrokers(f.brokers), consumer.WithGroup(group), consumer.WithTopics(topic),
			consumer.WithRegistry(f.reg), consumer.WithConcurrency(2))
		if err != nil {
			t.Fatal(err)
		}
		before := dups.Load()
		runConsumer(t, c)
		want := int64(n / 5)
		if group == "storm-2" {
			want = int64(len(deliveries)) // everything is a redelivery now
		}
		testenv.WaitFor(t, 20*time.Second, group+" to drop its duplicates", func() bool { return dups.Load()-before == want })
	}
	// Let the second group's last batch settle.
	time.Sleep(200 * time.Millisecond)

	if got := e.double.Count(e.sink.Index("title")); got != n {
		t.Errorf("Elasticsearch holds %d documents, want %d", got, n)
	}
	if got := e.double.Requests("bulk"); got == 0 {
		t.Error("no bulk request reached Elasticsearch")
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	glob := strings.ReplaceAll(filepath.ToSlash(table.Dir())+"/**/*.parquet", "'", "''")
	var rows, ids int
	err = db.QueryRowContext(t.Context(), "SELECT count(*), count(DISTINCT id) FROM read_parquet('"+glob+
		"', hive_partitioning = true, hive_types_autocast = false)").Scan(&rows, &ids)
	if err != nil {
		t.Fatal(err)
	}
	if rows != n || ids != n {
		t.Errorf("Hive table: %d rows, %d distinct ids; want %d of each", rows, ids, n)
	}
}
