package consumer_test

import (
	"context"
	"database/sql"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/duckdb/duckdb-go/v2"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/consumer/sink/hive"
	"github.com/slatehq/slate/dedupe"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
)

// defaultStormEvents is the size of the scale storm when SLATE_STORM_EVENTS
// is unset.
const defaultStormEvents = 100_000

// withRedeliveries returns envs followed by a fifth of them again (the same
// envelopes, as a producer retry leaves them at later offsets), with the
// second half of the whole shuffled so that redeliveries mix with first
// deliveries. seed picks the redelivered events.
func withRedeliveries(envs []schema.Envelope, seed uint64) []schema.Envelope {
	n := len(envs)
	deliveries := append([]schema.Envelope(nil), envs...)
	rng := rand.New(rand.NewPCG(seed, seed+1))
	for _, i := range rng.Perm(n)[:n/5] {
		deliveries = append(deliveries, envs[i])
	}
	rng.Shuffle(len(deliveries)-n/2, func(i, j int) {
		deliveries[n/2+i], deliveries[n/2+j] = deliveries[n/2+j], deliveries[n/2+i]
	})
	return deliveries
}

// publishChunked publishes envs to topic in synchronous calls of 5000.
func publishChunked(t *testing.T, pub *producer.Producer, topic string, envs []schema.Envelope) {
	t.Helper()
	for len(envs) > 0 {
		k := min(5000, len(envs))
		if err := pub.Publish(t.Context(), topic, envs[:k]...); err != nil {
			t.Fatal(err)
		}
		envs = envs[k:]
	}
}

// stormTracker records what the consumers of the scale storm were handed.
type stormTracker struct {
	mu        sync.Mutex
	offsets   map[[2]int64]int // (partition, offset) -> times handed to a consumer
	delivered int              // records handed to a consumer, repeats included
}

func (s *stormTracker) see(batch []sink.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range batch {
		s.offsets[[2]int64{int64(ev.Partition), ev.Offset}]++
	}
	s.delivered += len(batch)
}

func (s *stormTracker) distinct() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.offsets)
}

func (s *stormTracker) handed() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.delivered
}

// A duplicate storm at scale: N events (SLATE_STORM_EVENTS, default
// 100,000) with 20% of them redelivered by the producer side at later
// offsets, consumed by one group in which a second consumer joins mid-
// stream and leaves again. The second consumer leaves in the middle of a
// batch it has already applied but not committed, so that batch is
// redelivered to the first consumer after the rebalance. Dedupe
// (in-memory store shared by both members, as Redis would be) drops every
// redelivery; the Elasticsearch double and the Hive table (read back with
// DuckDB) hold each event's effect exactly once, nothing missing.
func TestDuplicateStormAtScale(t *testing.T) {
	n := defaultStormEvents
	if v := os.Getenv("SLATE_STORM_EVENTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 100 {
			t.Fatalf("SLATE_STORM_EVENTS=%q: want a number >= 100", v)
		}
	}
	if testing.Short() {
		n = min(n, 10_000)
	}
	start := time.Now()
	f := setup(t)
	e := newES(t)
	table, err := hive.New(t.TempDir(), "audit")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = table.Close(context.Background()) })
	store := dedupe.NewMemory()
	defer store.Close()

	topic := "studio.title.materialized.stormscale"
	envs := titleEvents(n, "scale")
	deliveries := withRedeliveries(envs, 3)
	publish := func(part []schema.Envelope) {
		t.Helper()
		publishChunked(t, f.pub, topic, part)
	}

	tr := &stormTracker{offsets: map[[2]int64]int{}}
	var applied, dups atomic.Int64
	sinks := consumer.ToSinks(e.sink, table)
	h := consumer.Deduplicate(store, consumer.DedupeConfig{Group: "storm-scale", OnDuplicates: func(k int) { dups.Add(int64(k)) }},
		consumer.HandlerFunc(func(ctx context.Context, batch []sink.Event) error {
			if err := sinks.Handle(ctx, batch); err != nil {
				return err
			}
			applied.Add(int64(len(batch)))
			return nil
		}))

	start1 := func(name string, h consumer.Handler) (stop func()) {
		c, err := consumer.New(h, consumer.WithBrokers(f.brokers), consumer.WithGroup("storm-scale"), consumer.WithTopics(topic),
			consumer.WithRegistry(f.reg), consumer.WithBatch(1000, 20*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		var once sync.Once
		stop = func() {
			once.Do(func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("%s: %v", name, err)
				}
			})
		}
		t.Cleanup(stop)
		return stop
	}
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(3 * time.Minute)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s (handed %d distinct records, applied %d, dropped %d)",
					what, tr.distinct(), applied.Load(), dups.Load())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}

	first := len(deliveries) * 2 / 5
	publish(deliveries[:first])
	start1("consumer 1", consumer.HandlerFunc(func(ctx context.Context, batch []sink.Event) error {
		tr.see(batch)
		return h.Handle(ctx, batch)
	}))
	wait("the first consumer to be mid-stream", func() bool { return tr.distinct() >= first*3/4 })

	// The second consumer joins while the stream goes on. It applies the
	// first batch it is handed and then stalls until it is told to leave:
	// that batch is applied but never committed.
	var stalled atomic.Int64
	stop2 := start1("consumer 2", consumer.HandlerFunc(func(ctx context.Context, batch []sink.Event) error {
		tr.see(batch)
		if err := h.Handle(ctx, batch); err != nil {
			return err
		}
		stalled.Store(int64(len(batch)))
		<-ctx.Done()
		return ctx.Err()
	}))
	next := first
	// A trickle of at least 20 s (400 steps), so that records are still
	// coming when the rebalance hands the second consumer its partition.
	step := max(1, (len(deliveries)*9/10-first)/400)
	for next < len(deliveries)*9/10 && stalled.Load() == 0 {
		k := min(next+step, len(deliveries))
		publish(deliveries[next:k])
		next = k
		time.Sleep(50 * time.Millisecond)
	}
	wait("the second consumer to take part and stall", func() bool { return stalled.Load() > 0 })
	stop2()
	publish(deliveries[next:])
	wait("every record to be handed over", func() bool { return tr.distinct() == len(deliveries) })
	wait("every event to be applied", func() bool {
		return applied.Load() >= int64(n) && tr.handed() == int(applied.Load()+dups.Load())
	})
	elapsed := time.Since(start)

	rebalanceRedeliveries := tr.handed() - len(deliveries)
	t.Logf("N=%d events, %d records (%d producer redeliveries), %d redelivered after the rebalance (stalled batch %d), %d dropped by dedupe, %d applied, in %s",
		n, len(deliveries), n/5, rebalanceRedeliveries, stalled.Load(), dups.Load(), applied.Load(), elapsed.Round(time.Millisecond))
	if got := applied.Load(); got != int64(n) {
		t.Errorf("%d events reached the sinks, want %d", got, n)
	}
	if int64(rebalanceRedeliveries) < stalled.Load() {
		t.Errorf("%d records redelivered after the rebalance, want at least the stalled batch of %d", rebalanceRedeliveries, stalled.Load())
	}
	if got := dups.Load(); got != int64(n/5+rebalanceRedeliveries) {
		t.Errorf("dedupe dropped %d, want %d (producer) + %d (rebalance)", got, n/5, rebalanceRedeliveries)
	}

	if got := e.double.Count(e.sink.Index("title")); got != n {
		t.Errorf("Elasticsearch holds %d documents, want %d", got, n)
	}
	for _, i := range []int{0, n / 2, n - 1} {
		if _, v, ok := e.double.Doc(e.sink.Index("title"), envs[i].Subject); !ok || v != envs[i].Sequence {
			t.Errorf("document %s: found %v version %d, want version %d", envs[i].Subject, ok, v, envs[i].Sequence)
		}
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	glob := strings.ReplaceAll(filepath.ToSlash(table.Dir())+"/**/*.parquet", "'", "''")
	var rows, ids, subjects int
	err = db.QueryRowContext(t.Context(), "SELECT count(*), count(DISTINCT id), count(DISTINCT subject) FROM read_parquet('"+glob+
		"', hive_partitioning = true, hive_types_autocast = false)").Scan(&rows, &ids, &subjects)
	if err != nil {
		t.Fatal(err)
	}
	if rows != n || ids != n || subjects != n {
		t.Errorf("Hive table: %d rows, %d distinct ids, %d distinct subjects; want %d of each", rows, ids, subjects, n)
	}
}
