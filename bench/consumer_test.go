package bench

import (
	"context"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/redis/go-redis/v9"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/dedupe"
	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/internal/kafkaconf"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
	slateregistry "github.com/slatehq/slate/schema/registry"
)

// consFixture is a topic preloaded with change events, 5% of them
// delivered twice, and a Redis to dedupe against.
type consFixture struct {
	brokers string
	reg     *schema.RegistryClient
	topic   string
	total   int // records on the topic
	dups    int // of which redeliveries
	rdb     *redis.Client
}

var (
	consOnce sync.Once
	consFix  *consFixture
	consErr  error
)

// consEvents is the preload size, SLATE_BENCH_CONSUMER_EVENTS or 200000.
func consEvents() int {
	if n, err := strconv.Atoi(os.Getenv("SLATE_BENCH_CONSUMER_EVENTS")); err == nil && n > 0 {
		return n
	}
	return 200000
}

func newConsFixture(b *testing.B) *consFixture {
	b.Helper()
	addr := os.Getenv("SLATE_REDIS_ADDR")
	if addr == "" {
		addr = "127.0.0.1:6379"
	}
	if c, err := net.DialTimeout("tcp", addr, time.Second); err != nil {
		if os.Getenv("CI") == "true" {
			b.Fatalf("redis at %s: %v", addr, err)
		}
		b.Skipf("redis at %s unreachable (%v): start one with `redis-server` or set SLATE_REDIS_ADDR", addr, err)
	} else {
		c.Close()
	}
	consOnce.Do(func() { consFix, consErr = preloadCons(addr) })
	if consErr != nil {
		b.Fatal(consErr)
	}
	return consFix
}

// preloadCons starts a broker and a registry that live for the whole test
// binary, and publishes the events with the SDK.
func preloadCons(redisAddr string) (*consFixture, error) {
	br, err := broker.Start(broker.WithPartitions(4))
	if err != nil {
		return nil, err
	}
	reg, err := consRegistry()
	if err != nil {
		return nil, err
	}
	pub, err := producer.New(producer.WithBrokers(br.Addr()), producer.WithRegistry(reg), producer.WithSource("//bench"))
	if err != nil {
		return nil, err
	}
	defer pub.Close(context.Background())
	n := consEvents()
	f := &consFixture{brokers: br.Addr(), reg: reg, topic: "studio.bench.changes", total: n, dups: n / 20,
		rdb: redis.NewClient(&redis.Options{Addr: redisAddr})}
	unique := n - f.dups
	ctx := context.Background()
	envs := make([]schema.Envelope, 0, 5000)
	var sent []schema.Envelope // the first dups envelopes, redelivered at the end
	flush := func() error {
		err := pub.Publish(ctx, f.topic, envs...)
		envs = envs[:0]
		return err
	}
	for i := range unique {
		e := pub.NewChange(ctx, "bench", "b-"+strconv.Itoa(i%5000), schema.OpUpdate, int64(i))
		if len(sent) < f.dups && i%19 == 0 {
			sent = append(sent, e)
		}
		envs = append(envs, e)
		if len(envs) == cap(envs) {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	for i := 0; len(sent) < f.dups; i++ { // top up if unique/19 fell short
		sent = append(sent, sent[i])
	}
	for _, e := range sent {
		envs = append(envs, e)
		if len(envs) == cap(envs) {
			if err := flush(); err != nil {
				return nil, err
			}
		}
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return f, nil
}

// consRegistry serves a slate registry for the life of the test binary.
func consRegistry() (*schema.RegistryClient, error) {
	srv, err := slateregistry.New(context.Background())
	if err != nil {
		return nil, err
	}
	return schema.NewRegistryClient(httptest.NewServer(srv).URL)
}

// BenchmarkConsumerDedupe consumes the preloaded topic (default 200,000
// records, 5% redeliveries) from the start with a fresh group and a fresh
// Redis key prefix per op, deduping every record against Redis:
//
//   - slate: consumer.New + Deduplicate(dedupe.NewRedis) + a discard sink
//     (decodes every Avro envelope; claims and marks done per batch of 500,
//     two pipelined round trips; offsets stored per batch and committed in
//     the background, the default);
//   - slate-synccommit: the same with consumer.WithSyncCommit (a synchronous
//     commit per batch, like the raw loops);
//   - raw-setnx: confluent-kafka-go Poll loop, one SET NX EX per record on
//     the ce_id header (no decode), a synchronous commit every 500 records;
//   - raw-setnx-pipe500: the same with the SET NX commands pipelined in
//     batches of 500.
//
// Each op reports records/s; every variant must drop exactly the
// redeliveries.
func BenchmarkConsumerDedupe(b *testing.B) {
	f := newConsFixture(b)
	run := 0
	for _, v := range []struct {
		name string
		fn   func(b *testing.B, f *consFixture, id string) int64
	}{
		{"slate", func(b *testing.B, f *consFixture, id string) int64 { return consSlate(b, f, id) }},
		{"slate-synccommit", func(b *testing.B, f *consFixture, id string) int64 {
			return consSlate(b, f, id, consumer.WithSyncCommit())
		}},
		{"raw-setnx", func(b *testing.B, f *consFixture, id string) int64 { return consRaw(b, f, id, 1) }},
		{"raw-setnx-pipe500", func(b *testing.B, f *consFixture, id string) int64 { return consRaw(b, f, id, 500) }},
	} {
		b.Run(v.name, func(b *testing.B) {
			var elapsed time.Duration
			for b.Loop() {
				run++
				id := fmt.Sprintf("%s-%d-%d", v.name, time.Now().UnixNano(), run)
				start := time.Now()
				dups := v.fn(b, f, id)
				elapsed += time.Since(start)
				if dups != int64(f.dups) {
					b.Fatalf("%s dropped %d duplicates, want %d", v.name, dups, f.dups)
				}
			}
			b.ReportMetric(float64(f.total)*float64(b.N)/elapsed.Seconds(), "records/s")
		})
	}
}

func consSlate(b *testing.B, f *consFixture, id string, extra ...consumer.Option) int64 {
	store, err := dedupe.NewRedis(f.rdb, dedupe.WithKeyPrefix("slatebench:"+id+":"))
	if err != nil {
		b.Fatal(err)
	}
	var fresh, dups atomic.Int64
	discard := sink.Func(func(_ context.Context, batch []sink.Event) error {
		fresh.Add(int64(len(batch)))
		return nil
	})
	h := consumer.Deduplicate(store, consumer.DedupeConfig{TTL: 10 * time.Minute, OnDuplicates: func(n int) { dups.Add(int64(n)) }},
		consumer.ToSinks(discard))
	opts := append([]consumer.Option{consumer.WithBrokers(f.brokers), consumer.WithGroup("bench-" + id),
		consumer.WithTopics(f.topic), consumer.WithRegistry(f.reg)}, extra...)
	c, err := consumer.New(h, opts...)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	for fresh.Load()+dups.Load() < int64(f.total) {
		time.Sleep(2 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return dups.Load()
}

func consRaw(b *testing.B, f *consFixture, id string, pipe int) int64 {
	ctx := context.Background()
	cm, err := kafkaconf.Consumer(f.brokers, "bench-"+id)
	if err != nil {
		b.Fatal(err)
	}
	kc, err := kafka.NewConsumer(cm)
	if err != nil {
		b.Fatal(err)
	}
	defer kc.Close()
	if err := kc.SubscribeTopics([]string{f.topic}, nil); err != nil {
		b.Fatal(err)
	}
	prefix := "slatebench:" + id + ":"
	var seen, dups int64
	var pending []*redis.BoolCmd
	p := f.rdb.Pipeline()
	settle := func() {
		if pipe > 1 && len(pending) > 0 {
			if _, err := p.Exec(ctx); err != nil {
				b.Fatal(err)
			}
			for _, c := range pending {
				if !c.Val() {
					dups++
				}
			}
			pending = pending[:0]
		}
		if _, err := kc.Commit(); err != nil {
			if ke, ok := err.(kafka.Error); !ok || ke.Code() != kafka.ErrNoOffset {
				b.Fatal(err)
			}
		}
	}
	for seen < int64(f.total) {
		m, ok := kc.Poll(100).(*kafka.Message)
		if !ok || m.TopicPartition.Error != nil {
			continue
		}
		key := ""
		for _, h := range m.Headers {
			if h.Key == schema.HeaderID {
				key = prefix + string(h.Value)
			}
		}
		if pipe > 1 {
			pending = append(pending, p.SetNX(ctx, key, "1", 10*time.Minute))
		} else {
			ok, err := f.rdb.SetNX(ctx, key, "1", 10*time.Minute).Result()
			if err != nil {
				b.Fatal(err)
			}
			if !ok {
				dups++
			}
		}
		if _, err := kc.StoreMessage(m); err != nil {
			b.Fatal(err)
		}
		seen++
		if seen%500 == 0 {
			settle()
		}
	}
	settle()
	return dups
}
