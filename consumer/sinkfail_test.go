package consumer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/consumer/sink/es"
	"github.com/slatehq/slate/consumer/sink/es/estest"
	"github.com/slatehq/slate/dedupe"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

// checkedStore is a memory dedupe store that records, at each Done, whether
// the event was really in Elasticsearch by then.
type checkedStore struct {
	*dedupe.Memory
	written  func(id string) bool
	done     sync.Map
	early    atomic.Int64 // ids marked done before they were written
	nDone    atomic.Int64
	failDone atomic.Bool
}

func (s *checkedStore) Done(ctx context.Context, ids []string, ttl time.Duration) error {
	for _, id := range ids {
		if !s.written(id) {
			s.early.Add(1)
		}
		if _, dup := s.done.LoadOrStore(id, true); !dup {
			s.nDone.Add(1)
		}
	}
	return s.Memory.Done(ctx, ids, ttl)
}

// esFixture is an Elasticsearch double with a sink over it.
type esFixture struct {
	double *estest.Server
	sink   *es.Sink
}

func newES(t *testing.T) esFixture {
	t.Helper()
	d := estest.New()
	hs := httptest.NewServer(d)
	t.Cleanup(hs.Close)
	client, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{hs.URL}, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	s, err := es.New(t.Context(), client, es.WithEntityTypes("title"))
	if err != nil {
		t.Fatal(err)
	}
	return esFixture{double: d, sink: s}
}

// titleEvents returns n materialized title events, each with its own
// subject and JSON data.
func titleEvents(n int, tag string) []schema.Envelope {
	envs := make([]schema.Envelope, n)
	for i := range envs {
		e := schema.NewEnvelope("//test/titles", schema.OpUpdate, "title", fmt.Sprintf("%s-%d", tag, i))
		e.Sequence = int64(i + 1)
		e.DataContentType = schema.ContentTypeJSON
		e.Data, _ = json.Marshal(map[string]any{"name": fmt.Sprintf("Title %d", i), "n": i})
		envs[i] = e
	}
	return envs
}

// metric returns the value of a counter or gauge of the default registry
// with the given labels, or -1 if it is not there.
func metric(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	return metricIn(t, prometheus.DefaultGatherer, name, labels)
}

// metricIn is [metric] of the registry g.
func metricIn(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return -1
}

// While Elasticsearch answers 429 or 503 for ten seconds, the consumer
// pauses and retries the batch, loses nothing, and marks no event done
// before it was written. The cases run in parallel, each with its own
// broker and double.
func TestSinkFailureRetriesWithoutLoss(t *testing.T) {
	tests := []struct {
		name  string
		fault estest.Fault
		lanes int
	}{
		{"bulk items 429", estest.Fault{Status: 429}, 1},
		{"bulk request 503", estest.Fault{Status: 503, Whole: true}, 1},
		{"bulk items 503 with 4 lanes", estest.Fault{Status: 503}, 4},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const n = 300
			const faultFor = 10 * time.Second
			f := setup(t)
			e := newES(t)
			topic := fmt.Sprintf("studio.title.materialized.fail%d", i)
			envs := titleEvents(n, topic)
			subjectOf := map[string]string{}
			for _, env := range envs {
				subjectOf[env.ID] = env.Subject
			}
			store := &checkedStore{Memory: dedupe.NewMemory(), written: func(id string) bool {
				_, _, ok := e.double.Doc(e.sink.Index("title"), subjectOf[id])
				return ok
			}}
			defer store.Close()

			fault := tt.fault
			fault.Until = time.Now().Add(faultFor)
			e.double.Fail(fault)
			if err := f.pub.Publish(t.Context(), topic, envs...); err != nil {
				t.Fatal(err)
			}
			group := "g-" + topic
			h := consumer.Deduplicate(store, consumer.DedupeConfig{Group: group}, consumer.ToSinks(e.sink))
			c, err := consumer.New(h, consumer.WithBrokers(f.brokers), consumer.WithGroup(group), consumer.WithTopics(topic),
				consumer.WithRegistry(f.reg), consumer.WithBackoff(100*time.Millisecond, 500*time.Millisecond),
				consumer.WithBatch(100, 20*time.Millisecond), consumer.WithConcurrency(tt.lanes))
			if err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			runConsumer(t, c)
			testenv.WaitFor(t, faultFor+20*time.Second, "every event written and done", func() bool {
				return e.double.Count(e.sink.Index("title")) == n && store.nDone.Load() == n
			})
			if time.Since(start) < faultFor-time.Second {
				t.Errorf("finished in %s, before the fault ended", time.Since(start))
			}
			if got := store.early.Load(); got != 0 {
				t.Errorf("%d events marked done before they were written", got)
			}
			if e.double.Requests("bulk_rejected") == 0 {
				t.Error("the fault was never hit")
			}
			if p := metric(t, "slate_consumer_pauses_total", map[string]string{"group": group}); p < 1 {
				t.Errorf("pauses = %v, want at least 1", p)
			}
			for _, env := range envs {
				src, v, ok := e.double.Doc(e.sink.Index("title"), env.Subject)
				if !ok || v != env.Sequence || !bytes.Contains(src, []byte(env.ID)) {
					t.Fatalf("event %s: document %s version %d (found %v)", env.ID, src, v, ok)
				}
			}
		})
	}
}

func runConsumer(t *testing.T, c *consumer.Consumer) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
}

// lockedBuffer is a log sink safe for concurrent writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A batch that keeps failing for longer than max.poll.interval.ms does not
// cost the consumer its group membership: its partitions are paused and
// Poll keeps being called, so nothing is revoked.
func TestRetryKeepsGroupMembership(t *testing.T) {
	f := setup(t)
	topic := "studio.title.materialized.slow"
	if err := f.pub.Publish(t.Context(), topic, titleEvents(20, "slow")...); err != nil {
		t.Fatal(err)
	}
	var logs lockedBuffer
	failUntil := time.Now().Add(8 * time.Second)
	var handled atomic.Int64
	h := consumer.HandlerFunc(func(_ context.Context, batch []sink.Event) error {
		if time.Now().Before(failUntil) {
			return fmt.Errorf("sink down")
		}
		handled.Add(int64(len(batch)))
		return nil
	})
	c, err := consumer.New(h, consumer.WithBrokers(f.brokers), consumer.WithGroup("g-slow"), consumer.WithTopics(topic),
		consumer.WithRegistry(f.reg), consumer.WithBackoff(200*time.Millisecond, time.Second),
		consumer.WithKafkaConfig(map[string]any{"max.poll.interval.ms": 6000, "session.timeout.ms": 6000}),
		consumer.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if err != nil {
		t.Fatal(err)
	}
	runConsumer(t, c)
	testenv.WaitFor(t, 20*time.Second, "the batch after the outage", func() bool { return handled.Load() == 20 })
	out := logs.String()
	if strings.Contains(out, "partitions revoked") || strings.Contains(out, "MAX_POLL") {
		t.Errorf("the consumer lost its partitions during the retries:\n%s", out)
	}
	if n := strings.Count(out, "batch failed, retrying"); n < 5 {
		t.Errorf("%d retries logged, want several", n)
	}
}
