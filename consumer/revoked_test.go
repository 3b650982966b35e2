package consumer_test

import (
	"context"
	"sync"
	"testing"
	"time"

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
