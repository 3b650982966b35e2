package bench

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/ThreeDotsLabs/watermill"
	wmkafka "github.com/ThreeDotsLabs/watermill-kafka/v3/pkg/kafka"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
)

// publishers is how many goroutines publish concurrently on every side of
// BenchmarkWatermillComparison.
const publishers = 8

// watermillSaramaConfig is Watermill's default sync-publisher config with
// the durability of the slate producer: acks from all in-sync replicas,
// idempotence (which Sarama allows only with one open request per broker
// connection), lz4 as slate uses, and successes returned (the sync
// producer needs them).
func watermillSaramaConfig() *sarama.Config {
	c := wmkafka.DefaultSaramaSyncPublisherConfig()
	c.Version = sarama.V2_8_0_0
	c.ClientID = "bench-watermill"
	c.Producer.RequiredAcks = sarama.WaitForAll
	c.Producer.Idempotent = true
	c.Net.MaxOpenRequests = 1
	c.Producer.Compression = sarama.CompressionLZ4
	c.Producer.Return.Successes = true
	c.Producer.Return.Errors = true
	return c
}

// fanOut runs fn(lo, hi) on workers goroutines, each over its own
// contiguous share of n records, and waits for all of them; the first
// error is returned.
func fanOut(n, workers int, fn func(lo, hi int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
	)
	per := n / workers
	for g := range workers {
		lo, hi := g*per, (g+1)*per
		if g == workers-1 {
			hi = n
		}
		wg.Go(func() {
			if err := fn(lo, hi); err != nil {
				mu.Lock()
				if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

// BenchmarkWatermillComparison publishes the same ID-only change events
// with the slate producer and with the Watermill Kafka publisher (Sarama's
// sync producer underneath) to the embedded broker, alternating rounds, and
// reports the rates and the median per-round ratios against Watermill.
// Watermill and the synchronous slate sides publish from 8 goroutines, each
// sending one event and waiting for its ack before the next; the
// asynchronous slate sides enqueue with PublishAsync (from 8 goroutines and
// from one) and then Flush. The "-linger0" sides use slate's settings with
// linger.ms=0, which is what Sarama does (it sends as soon as it can). Watermill gets the very value bytes the SDK
// sends, Avro-encoded before the clock starts, with the ce_* headers as
// metadata; its DefaultMarshaler sets no key, where slate keys by subject.
// Each op is one round of 5000 records per side; run a multiple of 6 ops so
// that every side takes every position in the order equally often.
func BenchmarkWatermillComparison(b *testing.B) {
	br, err := broker.Start(broker.WithPartitions(4))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(br.Close)
	ctx := context.Background()
	reg := registryClient(b)
	p, err := producer.New(producer.WithBrokers(br.Addr()), producer.WithRegistry(reg), producer.WithSource("//bench/titles"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close(ctx) })
	// The same producer without the 5 ms linger of slate's defaults:
	// Sarama sends as soon as it can, so for one-at-a-time synchronous
	// publishing this is the like-for-like setting.
	p0, err := producer.New(producer.WithBrokers(br.Addr()), producer.WithRegistry(reg), producer.WithSource("//bench/titles"),
		producer.WithKafkaConfig(map[string]any{"linger.ms": 0}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p0.Close(ctx) })
	wm, err := wmkafka.NewPublisher(wmkafka.PublisherConfig{
		Brokers:               []string{br.Addr()},
		Marshaler:             wmkafka.DefaultMarshaler{},
		OverwriteSaramaConfig: watermillSaramaConfig(),
	}, watermill.NopLogger{})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = wm.Close() })
	topicSDK, topicWM := "studio.benchsdk8.changes", "studio.benchwm.changes"

	envs := make([]schema.Envelope, records)
	for i := range envs {
		envs[i] = p.NewChange(ctx, "title", fmt.Sprintf("t-%d", i%1000), schema.OpUpdate, int64(i))
	}
	msgs := make([]*message.Message, records)
	for i := range envs {
		v, err := p.Codec().Encode(ctx, nil, topicSDK, &envs[i])
		if err != nil {
			b.Fatal(err)
		}
		m := message.NewMessage(envs[i].ID, v)
		for _, h := range schema.AppendHeaders(nil, &envs[i]) {
			m.Metadata.Set(h.Key, string(h.Value))
		}
		msgs[i] = m
	}
	// Warm both paths (connections, producer ids, topic metadata, schema
	// ids).
	if err := wm.Publish(topicWM, msgs[:100]...); err != nil {
		b.Fatal(err)
	}
	checkIdempotent(b, br.Addr(), topicWM)
	if err := p.Publish(ctx, topicSDK, envs[:100]...); err != nil {
		b.Fatal(err)
	}
	if err := p0.Publish(ctx, topicSDK, envs[:100]...); err != nil {
		b.Fatal(err)
	}

	// publishAsync enqueues every envelope with PublishAsync from workers
	// goroutines, then flushes; Flush returns once every callback has run.
	publishAsync := func(p *producer.Producer, workers int) error {
		var (
			mu     sync.Mutex
			failed error
		)
		onDelivery := func(d producer.Delivery) {
			if d.Err != nil {
				mu.Lock()
				failed = d.Err
				mu.Unlock()
			}
		}
		if err := fanOut(records, workers, func(lo, hi int) error {
			for i := lo; i < hi; i++ {
				if err := p.PublishAsync(ctx, topicSDK, envs[i], onDelivery); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
		if err := p.Flush(ctx); err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		return failed
	}
	sides := []side{
		{"watermill", func() error {
			// Publish is synchronous: one message, then its ack.
			return fanOut(records, publishers, func(lo, hi int) error {
				for i := lo; i < hi; i++ {
					if err := wm.Publish(topicWM, msgs[i]); err != nil {
						return err
					}
				}
				return nil
			})
		}},
		{"slate-publish", func() error {
			return fanOut(records, publishers, func(lo, hi int) error {
				for i := lo; i < hi; i++ {
					if err := p.Publish(ctx, topicSDK, envs[i]); err != nil {
						return err
					}
				}
				return nil
			})
		}},
		{"slate-publish-linger0", func() error {
			return fanOut(records, publishers, func(lo, hi int) error {
				for i := lo; i < hi; i++ {
					if err := p0.Publish(ctx, topicSDK, envs[i]); err != nil {
						return err
					}
				}
				return nil
			})
		}},
		{"slate-async", func() error { return publishAsync(p, publishers) }},
		// The same from one goroutine: a caller with one stream of events.
		{"slate-async-1g", func() error { return publishAsync(p, 1) }},
		// What dropping the linger costs the asynchronous path.
		{"slate-async-linger0", func() error { return publishAsync(p0, publishers) }},
	}
	rs := runRounds(b, records, sides)
	b.ReportMetric(rs.ratio(1, 0), "publish/watermill")
	b.ReportMetric(rs.ratio(2, 0), "publish-linger0/watermill")
	b.ReportMetric(rs.ratio(3, 0), "async/watermill")
	b.ReportMetric(rs.ratio(4, 0), "async-1g/watermill")
	b.ReportMetric(rs.ratio(5, 0), "async-linger0/watermill")
}

// checkIdempotent reads the first record of topic back and fails unless it
// carries a producer id, that is unless the broker accepted Sarama's
// idempotent producer (InitProducerID) and the batch was written as such.
func checkIdempotent(b *testing.B, addr, topic string) {
	b.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			b.Fatalf("reading back %s: %v", topic, err)
		}
		for _, r := range fs.Records() {
			if r.ProducerID < 0 {
				b.Fatalf("Watermill record written without a producer id: Sarama's producer is not idempotent")
			}
			return
		}
	}
}
