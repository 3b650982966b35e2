package consumer_test

import (
	"context"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/schema/registry"
)

type fixture struct {
	brokers string
	reg     *schema.RegistryClient
	pub     *producer.Producer
}

func setup(t *testing.T) fixture {
	t.Helper()
	b, err := broker.Start(broker.WithPartitions(2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	srv, err := registry.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	reg, err := schema.NewRegistryClient(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := producer.New(producer.WithBrokers(b.Addr()), producer.WithRegistry(reg), producer.WithSource("//test"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close(context.Background()) })
	return fixture{brokers: b.Addr(), reg: reg, pub: pub}
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

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
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
	waitFor(t, "both good events", func() bool { return c.count() == 2 })
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
	waitFor(t, "all five events", func() bool { return c.count() >= 5 })
}

func TestNewValidates(t *testing.T) {
	h := consumer.HandlerFunc(func(context.Context, []sink.Event) error { return nil })
	tests := []struct {
		name string
		opts []consumer.Option
	}{
		{"no brokers", []consumer.Option{consumer.WithGroup("g"), consumer.WithTopics("t")}},
		{"no group", []consumer.Option{consumer.WithBrokers("b"), consumer.WithTopics("t")}},
		{"no topics", []consumer.Option{consumer.WithBrokers("b"), consumer.WithGroup("g")}},
		{"bad batch", []consumer.Option{consumer.WithBrokers("b"), consumer.WithGroup("g"), consumer.WithTopics("t"), consumer.WithBatch(0, 0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := consumer.New(h, tt.opts...); err == nil {
				t.Fatal("New accepted an invalid config")
			}
		})
	}
}
