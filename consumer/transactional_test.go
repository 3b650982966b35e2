package consumer_test

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
)

// copier copies each batch to an output topic inside a transaction that
// also commits the batch's offsets; its second transaction aborts after
// publishing, as a handler failing mid-batch would.
type copier struct {
	p      *producer.Producer
	topic  string
	txns   atomic.Int64
	aborts atomic.Int64
	mu     sync.Mutex
	groups []string // group of each committed offsets
}

func (c *copier) Handle(context.Context, []sink.Event) error {
	return errors.New("copier: only HandleTx")
}

func (c *copier) HandleTx(ctx context.Context, batch []sink.Event, offsets []kafka.TopicPartition, meta *kafka.ConsumerGroupMetadata) error {
	if err := c.p.BeginTransaction(); err != nil {
		return err
	}
	envs := make([]schema.Envelope, len(batch))
	for i := range batch {
		envs[i] = batch[i].Envelope
	}
	err := c.p.Publish(ctx, c.topic, envs...)
	if err == nil && c.txns.Add(1) == 2 {
		err = errors.New("injected failure after publishing")
	}
	if err == nil {
		err = c.p.SendOffsetsToTransaction(ctx, offsets, meta)
	}
	if err != nil {
		c.aborts.Add(1)
		return errors.Join(err, c.p.AbortTransaction(context.WithoutCancel(ctx)))
	}
	return c.p.CommitTransaction(ctx)
}

// With WithTransactional, a batch whose transaction aborted is handled
// again, and a read_committed reader of the output sees every event
// exactly once; the group's offsets were committed by the transactions.
func TestTransactionalExactlyOnce(t *testing.T) {
	e := testenv.Start(t, "//studio/titles")
	ctx, cancel := context.WithTimeout(context.Background(), 40*time.Second)
	defer cancel()
	const n = 30
	in, out := schema.ChangesTopic("title"), "txn.copy"
	for i := range n {
		if err := e.Producer.PublishChange(ctx, "title", "t-"+strconv.Itoa(i), schema.OpUpdate, 1); err != nil {
			t.Fatal(err)
		}
	}
	tx := testenv.Producer(t, e.Brokers, e.Registry, "//test", producer.WithTransactionalID("copier-0"))
	if err := tx.InitTransactions(ctx); err != nil {
		t.Fatal(err)
	}
	h := &copier{p: tx, topic: out}
	c, err := consumer.New(h, consumer.WithBrokers(e.Brokers), consumer.WithGroup("copier"), consumer.WithTopics(in),
		consumer.WithRegistry(e.Registry), consumer.WithTransactional(), consumer.WithBatch(7, 5*time.Millisecond),
		consumer.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(rctx) }()

	cl, err := kgo.NewClient(kgo.SeedBrokers(e.Brokers), kgo.ConsumeTopics(out),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	seen := map[string]int{}
	total := 0
	pctx, pcancel := context.WithTimeout(ctx, 20*time.Second)
	defer pcancel()
	for total < n && pctx.Err() == nil {
		for _, r := range cl.PollFetches(pctx).Records() {
			seen[string(r.Key)]++
			total++
		}
	}
	// Anything duplicated would arrive right behind the rest.
	tctx, tcancel := context.WithTimeout(ctx, time.Second)
	for _, r := range cl.PollFetches(tctx).Records() {
		seen[string(r.Key)]++
		total++
	}
	tcancel()
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if h.aborts.Load() == 0 {
		t.Fatal("no transaction aborted")
	}
	if total != n || len(seen) != n {
		t.Fatalf("read_committed reader saw %d records of %d keys, want %d once each: %v", total, len(seen), n, seen)
	}

	// The transactions committed the group's offsets: past every record.
	kc, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": e.Brokers, "group.id": "copier"})
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	md, err := kc.GetMetadata(&in, false, 5000)
	if err != nil {
		t.Fatal(err)
	}
	var parts []kafka.TopicPartition
	for _, p := range md.Topics[in].Partitions {
		parts = append(parts, kafka.TopicPartition{Topic: &in, Partition: p.ID})
	}
	committed, err := kc.Committed(parts, 5000)
	if err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, p := range committed {
		if p.Offset >= 0 {
			sum += int64(p.Offset)
		}
	}
	if sum != n {
		t.Errorf("committed offsets %v sum to %d, want %d", committed, sum, n)
	}
}

func TestNewValidatesTransactional(t *testing.T) {
	reg, err := schema.NewRegistryClient("http://127.0.0.1:1")
	if err != nil {
		t.Fatal(err)
	}
	base := []consumer.Option{consumer.WithBrokers("b"), consumer.WithGroup("g"), consumer.WithTopics("t"),
		consumer.WithRegistry(reg), consumer.WithTransactional()}
	plain := consumer.HandlerFunc(func(context.Context, []sink.Event) error { return nil })
	tests := []struct {
		name string
		h    consumer.Handler
		opts []consumer.Option
		want string
	}{
		{"handler without HandleTx", plain, base, "HandleTx"},
		{"concurrency", &copier{}, append(base[:5:5], consumer.WithConcurrency(2)), "concurrency 1"},
		{"ok", &copier{}, base, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := consumer.New(tt.h, tt.opts...)
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, consumer.ErrConfig) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want ErrConfig naming %q", err, tt.want)
			}
		})
	}
}
