package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/consumer/sink/bleve"
	"github.com/slatehq/slate/consumer/sink/hive"
	kafkasink "github.com/slatehq/slate/consumer/sink/kafka"
	"github.com/slatehq/slate/dedupe"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

// countSink counts the events written to it, under a name of its own.
type countSink struct {
	name string
	mu   sync.Mutex
	n    int
}

func (s *countSink) Name() string { return s.name }

func (s *countSink) Write(_ context.Context, batch []sink.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.n += len(batch)
	return nil
}

func (s *countSink) Close(context.Context) error { return nil }

func (s *countSink) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n
}

// Two consumers given one registry with WithMetrics both count into it,
// their own and their sinks' and dedupe's metrics, and nothing of theirs
// lands on the default registry.
func TestConsumersShareTheirRegistry(t *testing.T) {
	f := setup(t)
	reg := prometheus.NewRegistry()
	type member struct {
		group, topic string
		sink         *countSink
	}
	members := []member{
		{"metrics-a", "studio.title.materialized.metrics-a", &countSink{name: "sink-metrics-a"}},
		{"metrics-b", "studio.title.materialized.metrics-b", &countSink{name: "sink-metrics-b"}},
	}
	for i, m := range members {
		store := dedupe.NewMemory()
		t.Cleanup(func() { store.Close() })
		h := consumer.Deduplicate(store, consumer.DedupeConfig{Group: m.group}, consumer.ToSinks(m.sink))
		c, err := consumer.New(h, consumer.WithBrokers(f.brokers), consumer.WithGroup(m.group), consumer.WithTopics(m.topic),
			consumer.WithRegistry(f.reg), consumer.WithMetrics(reg))
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- c.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
		envs := titleEvents(3+i, m.group)
		// The first event twice: the copy is dropped as a duplicate.
		if err := f.pub.Publish(t.Context(), m.topic, append(envs, envs[0])...); err != nil {
			t.Fatal(err)
		}
	}
	for i, m := range members {
		want := 3 + i
		testenv.WaitFor(t, 20*time.Second, fmt.Sprintf("%d events in %s", want, m.sink.name), func() bool {
			return m.sink.count() == want && metricIn(t, reg, "slate_consumer_duplicates_total", map[string]string{"group": m.group}) == 1
		})
		group := map[string]string{"group": m.group}
		if v := metricIn(t, reg, "slate_consumer_records_total", map[string]string{"group": m.group, "topic": m.topic}); v != float64(want+1) {
			t.Errorf("%s: slate_consumer_records_total = %v, want %d", m.group, v, want+1)
		}
		if v := metricIn(t, reg, "slate_sink_events_total", map[string]string{"sink": m.sink.name}); v != float64(want) {
			t.Errorf("%s: slate_sink_events_total = %v, want %d", m.sink.name, v, want)
		}
		for _, name := range []string{"slate_consumer_records_total", "slate_consumer_duplicates_total", "slate_consumer_rebalances_total"} {
			if v := metric(t, name, group); v != -1 {
				t.Errorf("%s{group=%q} = %v on the default registry, want none", name, m.group, v)
			}
		}
		if v := metric(t, "slate_sink_events_total", map[string]string{"sink": m.sink.name}); v != -1 {
			t.Errorf("slate_sink_events_total{sink=%q} = %v on the default registry, want none", m.sink.name, v)
		}
	}
}

// New refuses a registry that holds another collector under the name of
// one of the consumer's metrics, and accepts one that holds the same
// collectors already.
func TestNewRefusesConflictingMetrics(t *testing.T) {
	reg, err := schema.NewRegistryClient("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	opts := func(r prometheus.Registerer) []consumer.Option {
		return []consumer.Option{consumer.WithBrokers("b"), consumer.WithGroup("g"), consumer.WithTopics("t"),
			consumer.WithRegistry(reg), consumer.WithMetrics(r)}
	}
	shared := prometheus.NewRegistry()
	for range 2 {
		if _, err := consumer.New(&collector{}, opts(shared)...); err != nil {
			t.Fatalf("New on a registry with its metrics already: %v", err)
		}
	}
	taken := prometheus.NewRegistry()
	taken.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "slate_consumer_records_total", Help: "Something else."}))
	if _, err := consumer.New(&collector{}, opts(taken)...); !errors.Is(err, consumer.ErrConfig) {
		t.Errorf("New on a registry with a conflicting collector: err = %v, want ErrConfig", err)
	}
}

// dropPublisher is a kafka sink's publisher that keeps nothing.
type dropPublisher struct{}

func (dropPublisher) Publish(context.Context, string, ...schema.Envelope) error { return nil }

// unnamedSink is a sink that does not choose its name.
type unnamedSink struct{}

func (unnamedSink) Write(context.Context, []sink.Event) error { return nil }
func (unnamedSink) Close(context.Context) error               { return nil }

// The sinks of slate's sink packages are known to ToSinks, and so to the
// metrics and the per-sink dedupe marks, by their package's name; another
// sink by its Go type; a repeated name gets a "#n" suffix.
func TestToSinksNamesSlateSinks(t *testing.T) {
	esSink := newES(t).sink
	ix, err := bleve.New(filepath.Join(t.TempDir(), "search"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ix.Close(context.Background()) })
	hv, err := hive.New(t.TempDir(), "titles")
	if err != nil {
		t.Fatal(err)
	}
	ks, err := kafkasink.New(dropPublisher{}, kafkasink.ToTopic("out"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		sink sink.Sink
		want string
	}{
		{esSink, "es"},
		{ix, "bleve"},
		{hv, "hive"},
		{ks, "kafka"},
		{unnamedSink{}, "consumer_test.unnamedSink"},
		{esSink, "es#2"},
	}
	sinks := make([]sink.Sink, len(tests))
	for i, tt := range tests {
		sinks[i] = tt.sink
	}
	h := consumer.ToSinks(sinks...)
	names := h.(consumer.SinkNamer).SinkNames()
	for i, tt := range tests {
		if names[i] != tt.want {
			t.Errorf("sink %d (%T): name %q, want %q", i, tt.sink, names[i], tt.want)
		}
	}
	// The names label the metrics: outside a consumer, on the default
	// registry.
	env := titleEvents(1, "named")[0]
	if err := h.Handle(t.Context(), []sink.Event{{Envelope: env, Topic: "studio.title.materialized"}}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"es", "bleve", "hive", "kafka", "es#2"} {
		if v := metric(t, "slate_sink_events_total", map[string]string{"sink": name}); v < 1 {
			t.Errorf("slate_sink_events_total{sink=%q} = %v, want at least 1", name, v)
		}
	}
}
