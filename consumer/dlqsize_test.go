package consumer_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
)

// bigBroker starts an embedded broker with a one-partition topic that
// accepts records of up to 2 MB; its dead-letter topic gets the broker's
// default limit (1,048,588 bytes) when first written.
func bigBroker(t *testing.T, topic string) fixture {
	t.Helper()
	b, err := broker.Start(broker.WithPartitions(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := b.CreateTopic(topic, 1, map[string]string{"max.message.bytes": "2000000"}); err != nil {
		t.Fatal(err)
	}
	_, reg := testenv.Registry(t)
	return fixture{brokers: b.Addr(), reg: reg, pub: testenv.Producer(t, b.Addr(), reg, "//test")}
}

// produceRaw writes one record of any size the topic accepts.
func produceRaw(t *testing.T, brokers, topic string, value []byte) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ProducerBatchMaxBytes(2_000_000))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	if err := cl.ProduceSync(t.Context(), &kgo.Record{Topic: topic, Key: []byte("big"), Value: value}).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

func startConsumer(t *testing.T, f fixture, h consumer.Handler, group, topic string, dlq consumer.DeadLetterPublisher, extra ...consumer.Option) {
	t.Helper()
	c, err := consumer.New(h, append([]consumer.Option{consumer.WithBrokers(f.brokers), consumer.WithGroup(group), consumer.WithTopics(topic),
		consumer.WithRegistry(f.reg), consumer.WithDeadLetter(dlq), consumer.WithBackoff(10*time.Millisecond, 50*time.Millisecond)}, extra...)...)
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

// A poison record that its topic accepted but that is too large for the
// dead-letter publisher or topic does not stall the partition: it is
// dead-lettered (whole by a publisher sized to the broker, else as a
// truncated copy that says where the whole record is), the records after
// it are handled, and it counts as one decode error.
func TestOversizedPoisonRecordIsDeadLettered(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sized     bool // the dead-letter publisher uses WithBrokerMessageLimit
		truncated bool
	}{
		{"default publisher, truncated copy", false, true},
		{"publisher sized to the broker, whole record", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			topic := schema.ChangesTopic("poster")
			f := bigBroker(t, topic)
			dlq := f.pub
			if tc.sized {
				dlq = testenv.Producer(t, f.brokers, f.reg, "//slate/dlq", producer.WithBrokerMessageLimit(producer.DeadLetterHeadroom))
			}
			poison := make([]byte, 1_000_400)
			_, _ = rand.Read(poison) // incompressible, and not an envelope
			produceRaw(t, f.brokers, topic, poison)
			ctx := t.Context()
			for i := range 2 {
				if err := f.pub.PublishChange(ctx, "poster", fmt.Sprint("p", i), schema.OpCreate, 1); err != nil {
					t.Fatal(err)
				}
			}
			group := "g-big-" + fmt.Sprint(tc.sized)
			var c collector
			startConsumer(t, f, &c, group, topic, dlq)
			testenv.WaitFor(t, 30*time.Second, "the two records after the poison one", func() bool { return c.count() == 2 })
			labels := map[string]string{"group": group, "topic": topic}
			if n := metric(t, "slate_consumer_decode_errors_total", labels); n != 1 {
				t.Errorf("decode_errors_total = %v, want 1", n)
			}
			wantTrunc := 0.0
			if tc.truncated {
				wantTrunc = 1
			}
			if n := max(metric(t, "slate_consumer_dead_letters_truncated_total", labels), 0); n != wantTrunc {
				t.Errorf("dead_letters_truncated_total = %v, want %v", n, wantTrunc)
			}

			var dls []consumer.DeadLetter
			if err := consumer.ReadDeadLetters(ctx, f.brokers, schema.DLQTopic(topic), func(d consumer.DeadLetter) error {
				dls = append(dls, d)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			if len(dls) != 1 {
				t.Fatalf("%d dead letters, want 1", len(dls))
			}
			d := dls[0]
			if d.OriginTopic != topic || d.OriginPartition != 0 || d.OriginOffset != 0 || d.Stage != "decode" || d.Error == "" {
				t.Errorf("dead letter origin = %s[%d]@%d stage %q error %q", d.OriginTopic, d.OriginPartition, d.OriginOffset, d.Stage, d.Error)
			}
			if !tc.truncated {
				if d.Truncated != 0 || !bytes.Equal(d.Value, poison) {
					t.Errorf("dead letter: %d bytes, truncated %d; want the whole %d", len(d.Value), d.Truncated, len(poison))
				}
				return
			}
			if d.Truncated != int64(len(poison)) || len(d.Value) != schema.DeadLetterTruncateBytes || !bytes.HasPrefix(poison, d.Value) {
				t.Errorf("truncated dead letter: %d bytes, header says %d; want the first %d of %d",
					len(d.Value), d.Truncated, schema.DeadLetterTruncateBytes, len(poison))
			}
			if err := consumer.Replay(ctx, f.pub, d); !errors.Is(err, consumer.ErrTruncated) {
				t.Errorf("Replay of a truncated dead letter: err = %v, want ErrTruncated", err)
			}
		})
	}
}

// failing handles events until told to fail, then fails every batch.
type failing struct {
	mu      sync.Mutex
	handled int
	fail    bool
}

func (h *failing) Handle(_ context.Context, batch []sink.Event) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.fail {
		return errors.New("sink down")
	}
	h.handled += len(batch)
	return nil
}

func (h *failing) set(fail bool) {
	h.mu.Lock()
	h.fail = fail
	h.mu.Unlock()
}

func (h *failing) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.handled
}

// While a batch keeps failing, the consumer says for how long, and its
// lag gauge counts the records behind it, not the lag of its last commit.
func TestStalledConsumerReportsStallAndLag(t *testing.T) {
	b, err := broker.Start(broker.WithPartitions(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	_, reg := testenv.Registry(t)
	f := fixture{brokers: b.Addr(), reg: reg, pub: testenv.Producer(t, b.Addr(), reg, "//test")}
	ctx := t.Context()
	topic := schema.ChangesTopic("stall")
	publish := func(n int) {
		for i := range n {
			if err := f.pub.PublishChange(ctx, "stall", fmt.Sprint("s", i), schema.OpCreate, 1); err != nil {
				t.Fatal(err)
			}
		}
	}
	publish(3)
	var h failing
	group := "g-stall"
	startConsumer(t, f, &h, group, topic, f.pub, consumer.WithSyncCommit())
	labels := map[string]string{"group": group, "topic": topic, "partition": "0"}
	testenv.WaitFor(t, 20*time.Second, "three events handled and committed", func() bool {
		return h.count() == 3 && metric(t, "slate_consumer_lag", labels) == 0
	})

	h.set(true)
	publish(4)
	testenv.WaitFor(t, 20*time.Second, "stalled_seconds > 0 and lag 4", func() bool {
		return metric(t, "slate_consumer_stalled_seconds", map[string]string{"group": group}) > 0 &&
			metric(t, "slate_consumer_lag", labels) == 4
	})

	h.set(false)
	testenv.WaitFor(t, 20*time.Second, "the stall cleared", func() bool {
		return h.count() == 7 && metric(t, "slate_consumer_stalled_seconds", map[string]string{"group": group}) == 0 &&
			metric(t, "slate_consumer_lag", labels) == 0
	})
}

// flakyDLQ fails its first n writes, as an unreachable dead-letter topic
// would, then writes through pub.
type flakyDLQ struct {
	mu    sync.Mutex
	n     int
	calls int
	pub   consumer.DeadLetterPublisher
}

func (f *flakyDLQ) PublishRaw(ctx context.Context, topic string, key, value []byte, hs []schema.Header) error {
	f.mu.Lock()
	f.calls++
	fail := f.calls <= f.n
	f.mu.Unlock()
	if fail {
		return context.DeadlineExceeded
	}
	return f.pub.PublishRaw(ctx, topic, key, value, hs)
}

// A poison record whose dead-letter write is retried counts as one decode
// error, however many attempts its dead-lettering took.
func TestPoisonCountedOnceAcrossDeadLetterRetries(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	topic := schema.ChangesTopic("flaky")
	if err := f.pub.PublishRaw(ctx, topic, []byte("k"), []byte("not an envelope"), nil); err != nil {
		t.Fatal(err)
	}
	if err := f.pub.PublishChange(ctx, "flaky", "f1", schema.OpCreate, 1); err != nil {
		t.Fatal(err)
	}
	dlq := &flakyDLQ{n: 3, pub: f.pub}
	var c collector
	group := "g-flaky"
	startConsumer(t, f, &c, group, topic, dlq)
	testenv.WaitFor(t, 20*time.Second, "the good event", func() bool { return c.count() == 1 })
	dlq.mu.Lock()
	calls := dlq.calls
	dlq.mu.Unlock()
	if calls != 4 {
		t.Errorf("%d dead-letter writes, want 4 (3 failed, then the one that went through)", calls)
	}
	if n := metric(t, "slate_consumer_decode_errors_total", map[string]string{"group": group, "topic": topic}); n != 1 {
		t.Errorf("decode_errors_total = %v, want 1", n)
	}
}
