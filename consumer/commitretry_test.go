package consumer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/internal/testenv"
)

// slowFirst holds its first batch until released, then accepts all.
type slowFirst struct {
	once    sync.Once
	started chan struct{}
	release chan struct{}
}

func (s *slowFirst) Handle(ctx context.Context, _ []sink.Event) error {
	first := false
	s.once.Do(func() { first = true; close(s.started) })
	if first {
		select {
		case <-s.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// A synchronous commit refused because the group is rebalancing (the
// member's generation is no longer current) is not lost: the member keeps
// the offsets of the partitions it still owns and commits them once it
// rejoined, so the group's committed position reaches the end even when
// no further record arrives on those partitions.
func TestRefusedCommitIsRetried(t *testing.T) {
	f := setup(t)
	topic := "studio.title.materialized.commitretry"
	if err := f.pub.Publish(t.Context(), topic, titleEvents(40, "commitretry")...); err != nil {
		t.Fatal(err)
	}
	opts := func() []consumer.Option {
		return []consumer.Option{consumer.WithBrokers(f.brokers), consumer.WithGroup("commitretry"), consumer.WithTopics(topic),
			consumer.WithRegistry(f.reg), consumer.WithSyncCommit(), consumer.WithBatch(500, 200*time.Millisecond)}
	}
	slow := &slowFirst{started: make(chan struct{}), release: make(chan struct{})}
	a, err := consumer.New(slow, opts()...)
	if err != nil {
		t.Fatal(err)
	}
	runConsumer(t, a)
	select {
	case <-slow.started:
	case <-time.After(20 * time.Second):
		t.Fatal("the first member never got a batch")
	}
	// A second member joins while the first is inside its batch: the
	// group rebalances, and the first member's commit of that batch
	// carries a generation the group no longer has.
	b, err := consumer.New(&collector{}, opts()...)
	if err != nil {
		t.Fatal(err)
	}
	runConsumer(t, b)
	time.Sleep(1500 * time.Millisecond)
	close(slow.release)

	cc, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": f.brokers, "group.id": "commitretry"})
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	var last string
	testenv.WaitFor(t, 20*time.Second, "the group's committed offsets at the end of both partitions", func() bool {
		ps, err := cc.Committed([]kafka.TopicPartition{{Topic: &topic, Partition: 0}, {Topic: &topic, Partition: 1}}, 2000)
		if err != nil {
			last = err.Error()
			return false
		}
		last = ""
		done := true
		for _, p := range ps {
			_, high, err := cc.QueryWatermarkOffsets(topic, p.Partition, 2000)
			if err != nil {
				last = err.Error()
				return false
			}
			last += fmt.Sprintf(" p%d committed %v of %d;", p.Partition, p.Offset, high)
			if int64(p.Offset) != high {
				done = false
			}
		}
		return done
	})
	t.Log(last)
}
