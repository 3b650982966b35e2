package consumer_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/internal/testenv"
)

// downSink fails every write as unavailable and records, per write, the
// partitions of the batch and when the write began.
type downSink struct {
	mu    sync.Mutex
	calls []downCall
}

type downCall struct {
	at    time.Time
	parts map[int32]bool
}

func (s *downSink) Handle(_ context.Context, batch []sink.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := downCall{at: time.Now(), parts: map[int32]bool{}}
	for _, ev := range batch {
		c.parts[ev.Partition] = true
	}
	s.calls = append(s.calls, c)
	return sink.NewUnavailable("sink down")
}

// firstSeen records when each partition's events first reached a handler.
type firstSeen struct {
	mu sync.Mutex
	at map[int32]time.Time
}

func (f *firstSeen) Handle(_ context.Context, batch []sink.Event) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, ev := range batch {
		if _, ok := f.at[ev.Partition]; !ok {
			f.at[ev.Partition] = time.Now()
		}
	}
	return nil
}

// A consumer retrying a failing sink stops retrying the events of a
// partition once a rebalance gave it to another member: after the new
// owner handled a partition, the old one never hands its events to the
// sink again.
func TestRetryDropsRevokedPartitions(t *testing.T) {
	f := setup(t)
	topic := "studio.title.materialized.revoked"
	envs := titleEvents(40, "revoked")
	if err := f.pub.Publish(t.Context(), topic, envs...); err != nil {
		t.Fatal(err)
	}
	opts := func() []consumer.Option {
		return []consumer.Option{consumer.WithBrokers(f.brokers), consumer.WithGroup("revoked"), consumer.WithTopics(topic),
			consumer.WithRegistry(f.reg), consumer.WithBackoff(20*time.Millisecond, 50*time.Millisecond),
			consumer.WithBatch(500, time.Second)} // a batch that holds both partitions
	}
	down := &downSink{}
	a, err := consumer.New(down, opts()...)
	if err != nil {
		t.Fatal(err)
	}
	runConsumer(t, a)
	testenv.WaitFor(t, 20*time.Second, "the first consumer retrying both partitions", func() bool {
		down.mu.Lock()
		defer down.mu.Unlock()
		for _, c := range down.calls {
			if c.parts[0] && c.parts[1] {
				return true
			}
		}
		return false
	})
	seen := &firstSeen{at: map[int32]time.Time{}}
	b, err := consumer.New(seen, opts()...)
	if err != nil {
		t.Fatal(err)
	}
	runConsumer(t, b)
	testenv.WaitFor(t, 30*time.Second, "the second consumer handling a partition", func() bool {
		seen.mu.Lock()
		defer seen.mu.Unlock()
		return len(seen.at) > 0
	})
	time.Sleep(300 * time.Millisecond) // several more retries of the first consumer
	seen.mu.Lock()
	defer seen.mu.Unlock()
	down.mu.Lock()
	defer down.mu.Unlock()
	for p, at := range seen.at {
		for _, c := range down.calls {
			if c.at.After(at) && c.parts[p] {
				t.Fatalf("partition %d: the old owner retried its events at %s, after the new owner handled them at %s",
					p, c.at.Format(time.StampMicro), at.Format(time.StampMicro))
			}
		}
	}
}

// gatedSink fails every write as unavailable until it is opened.
type gatedSink struct {
	open  atomic.Bool
	calls atomic.Int64
}

func (g *gatedSink) Handle(context.Context, []sink.Event) error {
	g.calls.Add(1)
	if !g.open.Load() {
		return sink.NewUnavailable("sink down")
	}
	return nil
}

// groupOffsets returns, per partition of topic, the offset group committed
// (-1 if none) and the high watermark.
func groupOffsets(t *testing.T, brokers, group, topic string) (committed, high map[int32]int64) {
	t.Helper()
	kc, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": brokers, "group.id": group})
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	ps := []kafka.TopicPartition{{Topic: &topic, Partition: 0}, {Topic: &topic, Partition: 1}}
	got, err := kc.Committed(ps, 5000)
	if err != nil {
		t.Fatal(err)
	}
	committed, high = map[int32]int64{}, map[int32]int64{}
	for _, p := range got {
		committed[p.Partition] = int64(p.Offset)
		if p.Offset < 0 {
			committed[p.Partition] = -1
		}
		_, h, err := kc.QueryWatermarkOffsets(topic, p.Partition, 5000)
		if err != nil {
			t.Fatal(err)
		}
		high[p.Partition] = h
	}
	return committed, high
}

// A batch waiting for its retry while its partition is revoked, handled
// and committed further by another member, and assigned back, is not
// retried and committed for that partition: the group's offset never moves
// back below what the other member committed.
func TestLateCommitNeverMovesOffsetBack(t *testing.T) {
	f := setup(t)
	topic := "studio.title.materialized.backwards"
	group := "backwards"
	if err := f.pub.Publish(t.Context(), topic, titleEvents(20, "backwards")...); err != nil {
		t.Fatal(err)
	}
	opts := func(backoff time.Duration) []consumer.Option {
		return []consumer.Option{consumer.WithBrokers(f.brokers), consumer.WithGroup(group), consumer.WithTopics(topic),
			consumer.WithRegistry(f.reg), consumer.WithBackoff(backoff, backoff),
			consumer.WithBatch(500, time.Second), consumer.WithSyncCommit()} // a batch that holds both partitions
	}
	// The first member's retry waits 10 to 20s: long enough for the whole
	// revoke, commit and reassign sequence to happen within one wait.
	gated := &gatedSink{}
	a, err := consumer.New(gated, opts(20*time.Second)...)
	if err != nil {
		t.Fatal(err)
	}
	runConsumer(t, a)
	paused := map[string]string{"group": group}
	testenv.WaitFor(t, 20*time.Second, "the first member retrying its batch", func() bool {
		return gated.calls.Load() > 0 && metric(t, "slate_consumer_paused", paused) == 1
	})
	// Records the waiting batch does not hold, for the other member to
	// handle and commit past it.
	if err := f.pub.Publish(t.Context(), topic, titleEvents(20, "backwards-more")...); err != nil {
		t.Fatal(err)
	}
	b, err := consumer.New(&firstSeen{at: map[int32]time.Time{}}, opts(50*time.Millisecond)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- b.Run(ctx) }()
	var byB map[int32]int64
	testenv.WaitFor(t, 30*time.Second, "the second member committing a partition to its end", func() bool {
		committed, high := groupOffsets(t, f.brokers, group, topic)
		byB = map[int32]int64{}
		for p, o := range committed {
			if o > 0 && o == high[p] {
				byB[p] = o
			}
		}
		return len(byB) > 0
	})
	assigned := map[string]string{"group": group, "kind": "assigned"}
	before := metric(t, "slate_consumer_rebalances_total", assigned)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the partition assigned back to the first member", func() bool {
		return metric(t, "slate_consumer_rebalances_total", assigned) > before
	})
	gated.open.Store(true)
	testenv.WaitFor(t, 40*time.Second, "the first member's batch done", func() bool {
		return metric(t, "slate_consumer_paused", paused) == 0
	})
	committed, _ := groupOffsets(t, f.brokers, group, topic)
	for p, o := range byB {
		if committed[p] < o {
			t.Errorf("partition %d: committed offset %d, below the %d the second member committed", p, committed[p], o)
		}
	}
}
