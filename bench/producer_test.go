package bench

import (
	"context"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/internal/kafkaconf"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
	slateregistry "github.com/slatehq/slate/schema/registry"
)

// records is how many records each side publishes per round.
const records = 5000

func registryClient(b *testing.B) *schema.RegistryClient {
	b.Helper()
	srv, err := slateregistry.New(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	b.Cleanup(hs.Close)
	reg, err := schema.NewRegistryClient(hs.URL)
	if err != nil {
		b.Fatal(err)
	}
	return reg
}

// rawProducer is confluent-kafka-go with exactly the settings the SDK uses
// (idempotent, acks=all, lz4, linger 5ms), producing pre-encoded bytes.
type rawProducer struct {
	kp        *kafka.Producer
	delivered chan error
}

func newRawProducer(b *testing.B, brokers string) *rawProducer {
	b.Helper()
	// The SDK asks for keys only in delivery reports; so does the raw
	// side, so that the two differ in the wrapper alone.
	cm, err := kafkaconf.Producer(brokers, kafka.ConfigMap{"client.id": "bench-raw", "go.delivery.report.fields": "key"})
	if err != nil {
		b.Fatal(err)
	}
	kp, err := kafka.NewProducer(cm)
	if err != nil {
		b.Fatal(err)
	}
	r := &rawProducer{kp: kp, delivered: make(chan error, 1024)}
	go func() {
		for ev := range kp.Events() {
			if m, ok := ev.(*kafka.Message); ok {
				r.delivered <- m.TopicPartition.Error
			}
		}
		close(r.delivered)
	}()
	b.Cleanup(kp.Close)
	return r
}

// publish produces every message and waits for every acknowledgement.
func (r *rawProducer) publish(b *testing.B, msgs []*kafka.Message) {
	go func() {
		for _, m := range msgs {
			for {
				err := r.kp.Produce(m, nil)
				if err == nil {
					break
				}
				if ke, ok := err.(kafka.Error); ok && ke.Code() == kafka.ErrQueueFull {
					time.Sleep(time.Millisecond)
					continue
				}
				panic(err)
			}
		}
	}()
	for range msgs {
		if err := <-r.delivered; err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProducerThroughput publishes the same ID-only change events with
// the slate SDK and with raw confluent-kafka-go (bytes encoded beforehand,
// so the raw side does no Avro work) to the embedded broker, alternating
// rounds, and reports the rates and the median per-round ratios. Each op
// is one round of 5000 records per side; run a multiple of 6 ops so that
// every side takes every position in the order equally often.
func BenchmarkProducerThroughput(b *testing.B) {
	br, err := broker.Start(broker.WithPartitions(4))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(br.Close)
	reg := registryClient(b)
	ctx := context.Background()
	p, err := producer.New(producer.WithBrokers(br.Addr()), producer.WithRegistry(reg), producer.WithSource("//bench/titles"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = p.Close(ctx) })
	raw := newRawProducer(b, br.Addr())
	topicSDK, topicRaw := "studio.benchsdk.changes", "studio.benchraw.changes"

	envs := make([]schema.Envelope, records)
	for i := range envs {
		envs[i] = p.NewChange(ctx, "title", fmt.Sprintf("t-%d", i%1000), schema.OpUpdate, int64(i))
	}
	// The raw side sends the very bytes and headers the SDK would.
	msgs := make([]*kafka.Message, records)
	for i := range envs {
		v, err := p.Codec().Encode(ctx, nil, topicRaw, &envs[i])
		if err != nil {
			b.Fatal(err)
		}
		hs := schema.AppendHeaders(nil, &envs[i])
		kh := make([]kafka.Header, len(hs))
		for j, h := range hs {
			kh[j] = kafka.Header(h)
		}
		msgs[i] = &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topicRaw, Partition: kafka.PartitionAny},
			Key:            []byte(envs[i].Subject), Value: v, Headers: kh, Timestamp: envs[i].Time,
		}
	}
	// Warm both paths (connections, topic metadata, schema ids).
	raw.publish(b, msgs[:100])
	if err := p.Publish(ctx, topicSDK, envs[:100]...); err != nil {
		b.Fatal(err)
	}

	sides := []side{
		{"raw", func() error { raw.publish(b, msgs); return nil }},
		{"raw-encoding", func() error {
			// Raw client, but encoding and framing each record on the
			// way, as the SDK does: what remains is the wrapper's cost.
			enc := make([]*kafka.Message, len(envs))
			for i := range envs {
				v, err := p.Codec().Encode(ctx, nil, topicRaw, &envs[i])
				if err != nil {
					b.Fatal(err)
				}
				m := *msgs[i]
				m.Value = v
				enc[i] = &m
			}
			raw.publish(b, enc)
			return nil
		}},
		{"sdk-async", func() error {
			for i := range envs {
				if err := p.PublishAsync(ctx, topicSDK, envs[i], func(d producer.Delivery) {
					if d.Err != nil {
						panic(d.Err)
					}
				}); err != nil {
					b.Fatal(err)
				}
			}
			if err := p.Flush(ctx); err != nil {
				b.Fatal(err)
			}
			return nil
		}},
		{"sdk-batch500", func() error {
			// Synchronous calls of 500: each waits for its acks (linger
			// plus a broker round trip) before the next starts.
			const batch = 500
			for i := 0; i < len(envs); i += batch {
				if err := p.Publish(ctx, topicSDK, envs[i:i+batch]...); err != nil {
					b.Fatal(err)
				}
			}
			return nil
		}},
		{"sdk-batch5000", func() error {
			if err := p.Publish(ctx, topicSDK, envs...); err != nil {
				b.Fatal(err)
			}
			return nil
		}},
		{"raw-batch500", func() error {
			// The raw client in the same pattern as sdk-batch500: 500
			// records, then wait for their acknowledgements.
			const batch = 500
			for i := 0; i < len(msgs); i += batch {
				raw.publish(b, msgs[i:i+batch])
			}
			return nil
		}},
	}
	rs := runRounds(b, records, sides)
	b.ReportMetric(rs.ratio(2, 0), "async/raw")
	b.ReportMetric(rs.ratio(3, 0), "batch500/raw")
	b.ReportMetric(rs.ratio(4, 0), "batch5000/raw")
	b.ReportMetric(rs.ratio(2, 1), "async/raw-encoding")
	b.ReportMetric(rs.ratio(3, 5), "batch500/raw-batch500")
}

// BenchmarkEnvelopeEncode measures encoding plus Confluent framing of one
// ID-only envelope, with the schema id cached.
func BenchmarkEnvelopeEncode(b *testing.B) {
	ctx := context.Background()
	codec, err := schema.NewCodec(registryClient(b))
	if err != nil {
		b.Fatal(err)
	}
	e := schema.NewEnvelope("//bench/titles", schema.OpUpdate, "title", "t-1")
	e.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	buf := make([]byte, 0, 256)
	if _, err := codec.Encode(ctx, buf, "studio.title.changes", &e); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := codec.Encode(ctx, buf[:0], "studio.title.changes", &e); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEnvelopeDecode measures unframing and decoding one ID-only
// envelope, with the writer schema cached.
func BenchmarkEnvelopeDecode(b *testing.B) {
	ctx := context.Background()
	codec, err := schema.NewCodec(registryClient(b))
	if err != nil {
		b.Fatal(err)
	}
	e := schema.NewEnvelope("//bench/titles", schema.OpUpdate, "title", "t-1")
	e.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	v, err := codec.Encode(ctx, nil, "studio.title.changes", &e)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := codec.Decode(ctx, v); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := codec.Decode(ctx, v); err != nil {
			b.Fatal(err)
		}
	}
}
