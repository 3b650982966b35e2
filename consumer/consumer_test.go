package consumer_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/dedupe"
	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
)

type fixture struct {
	brokers string
	reg     *schema.RegistryClient
	pub     *producer.Producer
}

func setup(t *testing.T) fixture {
	t.Helper()
	e := testenv.Start(t, "//test", broker.WithPartitions(2))
	return fixture{brokers: e.Brokers, reg: e.Registry, pub: e.Producer}
}

type collector struct {
	mu     sync.Mutex
	events []sink.Event
	fail   int // fail this many calls first
	calls  int
}

func (c *collector) Handle(_ context.Context, batch []sink.Event) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.calls <= c.fail {
		return context.DeadlineExceeded
	}
	c.events = append(c.events, batch...)
	return nil
}

func (c *collector) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.events)
}

func run(t *testing.T, f fixture, h consumer.Handler, topic string) {
	t.Helper()
	c, err := consumer.New(h, consumer.WithBrokers(f.brokers), consumer.WithGroup("g-"+topic), consumer.WithTopics(topic),
		consumer.WithRegistry(f.reg), consumer.WithDeadLetter(f.pub), consumer.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
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
}

// An undecodable record neither stops the consumer nor is lost: the good
// records around it are handled, and it lands in <topic>.dlq with its
// origin in headers.
func TestPoisonRecordGoesToDeadLetterTopic(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	topic := "studio.title.changes"
	if err := f.pub.PublishChange(ctx, "title", "a", schema.OpCreate, 1); err != nil {
		t.Fatal(err)
	}
	if err := f.pub.PublishRaw(ctx, topic, []byte("a"), []byte("not an envelope"), nil); err != nil {
		t.Fatal(err)
	}
	if err := f.pub.PublishChange(ctx, "title", "a", schema.OpUpdate, 2); err != nil {
		t.Fatal(err)
	}
	var c collector
	run(t, f, &c, topic)
	testenv.WaitFor(t, 20*time.Second, "both good events", func() bool { return c.count() == 2 })
	if c.events[0].Sequence != 1 || c.events[1].Sequence != 2 {
		t.Errorf("events out of order: %d, %d", c.events[0].Sequence, c.events[1].Sequence)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(f.brokers), kgo.ConsumeTopics(schema.DLQTopic(topic)),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var rec *kgo.Record
	for rec == nil {
		fs := cl.PollFetches(pctx)
		if pctx.Err() != nil {
			t.Fatal("nothing in the dead-letter topic")
		}
		if rs := fs.Records(); len(rs) > 0 {
			rec = rs[0]
		}
	}
	if string(rec.Value) != "not an envelope" {
		t.Errorf("dead letter value = %q, want the original bytes", rec.Value)
	}
	h := map[string]string{}
	for _, hd := range rec.Headers {
		h[hd.Key] = string(hd.Value)
	}
	if h[consumer.HeaderDLQTopic] != topic || h[consumer.HeaderDLQOffset] != strconv.Itoa(1) || h[consumer.HeaderDLQError] == "" ||
		h[consumer.HeaderDLQStage] != "decode" {
		t.Errorf("dead letter headers = %v", h)
	}
}

// A failing handler is retried with the same batch; nothing is skipped.
func TestFailedBatchIsRetried(t *testing.T) {
	f := setup(t)
	ctx := context.Background()
	for i := range 5 {
		if err := f.pub.PublishChange(ctx, "budget", "b-"+strconv.Itoa(i), schema.OpCreate, 1); err != nil {
			t.Fatal(err)
		}
	}
	c := collector{fail: 3}
	run(t, f, &c, schema.ChangesTopic("budget"))
	testenv.WaitFor(t, 20*time.Second, "all five events", func() bool { return c.count() >= 5 })
}

func TestNewValidates(t *testing.T) {
	h := consumer.HandlerFunc(func(context.Context, []sink.Event) error { return nil })
	reg, err := schema.NewRegistryClient("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	base := []consumer.Option{consumer.WithBrokers("b"), consumer.WithGroup("g"), consumer.WithTopics("t"), consumer.WithRegistry(reg)}
	tests := []struct {
		name string
		opts []consumer.Option
		want string
	}{
		{"no brokers", []consumer.Option{consumer.WithGroup("g"), consumer.WithTopics("t")}, "brokers"},
		{"no group", []consumer.Option{consumer.WithBrokers("b"), consumer.WithTopics("t")}, "group"},
		{"no topics", []consumer.Option{consumer.WithBrokers("b"), consumer.WithGroup("g")}, "topics"},
		{"bad batch", append(base[:4:4], consumer.WithBatch(0, 0)), "batch size"},
		{"bad concurrency", append(base[:4:4], consumer.WithConcurrency(0)), "concurrency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := consumer.New(h, tt.opts...)
			if !errors.Is(err, consumer.ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrConfig naming %q", err, tt.want)
			}
		})
	}
}

// downStore is a dedupe store whose backend cannot be reached.
type downStore struct{}

func (downStore) Claim(context.Context, []string, time.Duration) ([]dedupe.Status, error) {
	return nil, fmt.Errorf("redis: dial: %w", dedupe.ErrUnavailable)
}
func (downStore) Done(context.Context, []string, time.Duration) error {
	return fmt.Errorf("redis: dial: %w", dedupe.ErrUnavailable)
}
func (downStore) Release(context.Context, []string) error { return nil }

// An unreachable dedupe store fails the batch (the consumer pauses and
// retries) unless FailOpen lets the sinks' idempotency carry it.
func TestDedupeUnavailable(t *testing.T) {
	batch := []sink.Event{{Envelope: schema.NewEnvelope("//t", schema.OpCreate, "title", "a")},
		{Envelope: schema.NewEnvelope("//t", schema.OpCreate, "title", "b")}}
	tests := []struct {
		name     string
		failOpen bool
		wantErr  bool
		wantSent int
	}{
		{"fail closed", false, true, 0},
		{"fail open", true, false, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c collector
			h := consumer.Deduplicate(downStore{}, consumer.DedupeConfig{FailOpen: tt.failOpen, Group: "t"}, &c)
			err := h.Handle(t.Context(), batch)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr && (!errors.Is(err, consumer.ErrDedupeUnavailable) || !dedupe.IsRetryable(err)) {
				t.Errorf("err = %v, want ErrDedupeUnavailable wrapping dedupe.ErrUnavailable", err)
			}
			if c.count() != tt.wantSent {
				t.Errorf("%d events reached the sinks, want %d", c.count(), tt.wantSent)
			}
		})
	}
}

// Duplicates inside the TTL are dropped, and a failed write leaves the ids
// free for the retry.
func TestDeduplicate(t *testing.T) {
	store := dedupe.NewMemory()
	defer store.Close()
	a := sink.Event{Envelope: schema.NewEnvelope("//t", schema.OpCreate, "title", "a")}
	b := sink.Event{Envelope: schema.NewEnvelope("//t", schema.OpCreate, "title", "b")}
	c := collector{fail: 1}
	h := consumer.Deduplicate(store, consumer.DedupeConfig{}, &c)
	if err := h.Handle(t.Context(), []sink.Event{a, b}); err == nil {
		t.Fatal("first call should fail")
	}
	if err := h.Handle(t.Context(), []sink.Event{a, b, a}); err != nil {
		t.Fatal(err)
	}
	if err := h.Handle(t.Context(), []sink.Event{a, b}); err != nil {
		t.Fatal(err)
	}
	if c.count() != 2 {
		t.Errorf("sinks got %d events, want 2", c.count())
	}
}

// With WithConcurrency, lanes run at once while each key keeps its order.
func TestConcurrencyKeepsKeyOrder(t *testing.T) {
	f := setup(t)
	topic := "studio.title.materialized.lanes"
	var envs []schema.Envelope
	for seq := 1; seq <= 20; seq++ {
		for k := range 10 {
			e := schema.NewEnvelope("//t", schema.OpUpdate, "title", "k"+strconv.Itoa(k))
			e.Sequence = int64(seq)
			envs = append(envs, e)
		}
	}
	if err := f.pub.Publish(t.Context(), topic, envs...); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	last := map[string]int64{}
	var running, most, total atomic.Int64
	var disorder atomic.Int64
	h := consumer.HandlerFunc(func(_ context.Context, batch []sink.Event) error {
		if n := running.Add(1); n > most.Load() {
			most.Store(n)
		}
		defer running.Add(-1)
		time.Sleep(20 * time.Millisecond)
		mu.Lock()
		defer mu.Unlock()
		for _, ev := range batch {
			if ev.Sequence != last[ev.Subject]+1 {
				disorder.Add(1)
			}
			last[ev.Subject] = ev.Sequence
		}
		total.Add(int64(len(batch)))
		return nil
	})
	c, err := consumer.New(h, consumer.WithBrokers(f.brokers), consumer.WithGroup("g-lanes"), consumer.WithTopics(topic),
		consumer.WithRegistry(f.reg), consumer.WithConcurrency(4), consumer.WithBatch(500, 200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	runConsumer(t, c)
	testenv.WaitFor(t, 20*time.Second, "all events", func() bool { return total.Load() == int64(len(envs)) })
	if disorder.Load() != 0 {
		t.Errorf("%d events out of key order", disorder.Load())
	}
	if most.Load() < 2 {
		t.Errorf("at most %d lanes ran at once, want several", most.Load())
	}
}
