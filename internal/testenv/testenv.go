// Package testenv starts what slate's integration tests run against: the
// Kafka broker (SLATE_KAFKA_BROKERS, or the embedded one), the schema
// registry (slate's own server) and a producer, and decides what a test
// does when a real server it needs is missing: skip with a message saying
// how to start it, or fail under CI=true.
package testenv

import (
	"context"
	"net"
	"net/http/httptest"
	"os"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/schema/registry"
)

// Env is a broker, a registry and a producer, all stopped at the end of
// the test.
type Env struct {
	Brokers     string
	RegistryURL string
	Registry    *schema.RegistryClient
	Producer    *producer.Producer
}

// Start returns a fresh Env; the producer stamps source on its events.
func Start(tb testing.TB, source string, opts ...broker.Option) Env {
	tb.Helper()
	e := Env{Brokers: Kafka(tb, opts...)}
	e.RegistryURL, e.Registry = Registry(tb)
	e.Producer = Producer(tb, e.Brokers, e.Registry, source)
	return e
}

// Kafka returns SLATE_KAFKA_BROKERS when set, or starts an embedded broker
// on a free port for the test.
func Kafka(tb testing.TB, opts ...broker.Option) string {
	tb.Helper()
	if b := os.Getenv("SLATE_KAFKA_BROKERS"); b != "" {
		return b
	}
	b, err := broker.Start(opts...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(b.Close)
	return b.Addr()
}

// Registry starts slate's schema registry server and returns its URL and a
// client of it.
func Registry(tb testing.TB) (string, *schema.RegistryClient) {
	tb.Helper()
	srv, err := registry.New(context.Background())
	if err != nil {
		tb.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	tb.Cleanup(hs.Close)
	c, err := schema.NewRegistryClient(hs.URL)
	if err != nil {
		tb.Fatal(err)
	}
	return hs.URL, c
}

// Producer returns a producer closed at the end of the test.
func Producer(tb testing.TB, brokers string, reg schema.Registry, source string, opts ...producer.Option) *producer.Producer {
	tb.Helper()
	all := append([]producer.Option{producer.WithBrokers(brokers), producer.WithRegistry(reg), producer.WithSource(source)}, opts...)
	p, err := producer.New(all...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = p.Close(context.Background()) })
	return p
}

// Unavailable reports a real server the test needs as missing: it skips
// the test with how to start it, or fails it under CI=true, where every
// server must be there.
func Unavailable(tb testing.TB, what, how string, err error) {
	tb.Helper()
	if os.Getenv("CI") == "true" {
		tb.Fatalf("%s unavailable under CI=true: %v", what, err)
	}
	tb.Skipf("%s unavailable (%v): %s", what, err, how)
}

// WaitFor polls cond every 20ms until it holds, failing the test after
// timeout with what it waited for.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// CreateTopics creates topics of partitions partitions each on brokers,
// as a team's deployment does before a consumer reads them. A topic that
// exists already is left as it is.
func CreateTopics(tb testing.TB, brokers string, partitions int, topics ...string) {
	tb.Helper()
	ad, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": brokers})
	if err != nil {
		tb.Fatal(err)
	}
	defer ad.Close()
	specs := make([]kafka.TopicSpecification, len(topics))
	for i, t := range topics {
		specs[i] = kafka.TopicSpecification{Topic: t, NumPartitions: partitions, ReplicationFactor: 1}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := ad.CreateTopics(ctx, specs)
	if err != nil {
		tb.Fatal(err)
	}
	for _, r := range res {
		if c := r.Error.Code(); c != kafka.ErrNoError && c != kafka.ErrTopicAlreadyExists {
			tb.Fatalf("create topic %s: %v", r.Topic, r.Error)
		}
	}
}

// ServeRegistry serves slate's schema registry as lc says (TLS, mutual
// TLS, basic auth) on a free loopback port until the test ends, and
// returns its URL.
func ServeRegistry(tb testing.TB, lc registry.ListenConfig, opts ...registry.Option) string {
	tb.Helper()
	srv, err := registry.New(context.Background(), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	hs, err := lc.HTTPServer(srv)
	if err != nil {
		tb.Fatal(err)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	go func() { _ = registry.Serve(hs, lis) }()
	tb.Cleanup(func() { _ = hs.Close() })
	scheme := "http://"
	if lc.CertFile != "" {
		scheme = "https://"
	}
	return scheme + lis.Addr().String()
}

// Record is one record of a topic, its envelope decoded.
type Record struct {
	Partition int32
	Offset    int64
	Key       string
	Env       schema.Envelope
}

// ReadTopic returns every record of topic up to the end offsets its
// partitions have now (none if it does not exist yet), in offset order per
// partition, its envelope decoded with the schemas of reg. It fails the
// test if the end is not reached within 30s.
func ReadTopic(tb testing.TB, brokers string, reg schema.Registry, topic string) []Record {
	tb.Helper()
	codec, err := schema.NewCodec(reg)
	if err != nil {
		tb.Fatal(err)
	}
	kc, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": brokers, "group.id": "slate-test-reader",
		"enable.auto.commit": false, "enable.metrics.push": false})
	if err != nil {
		tb.Fatal(err)
	}
	defer kc.Close()
	md, err := kc.GetMetadata(&topic, false, 10000)
	if err != nil {
		tb.Fatalf("metadata of %s: %v", topic, err)
	}
	high := map[int32]int64{}
	var tps []kafka.TopicPartition
	for _, p := range md.Topics[topic].Partitions {
		lo, hi, err := kc.QueryWatermarkOffsets(topic, p.ID, 10000)
		if err != nil {
			tb.Fatalf("watermarks of %s[%d]: %v", topic, p.ID, err)
		}
		if hi > lo {
			high[p.ID] = hi
			tps = append(tps, kafka.TopicPartition{Topic: &topic, Partition: p.ID, Offset: kafka.Offset(lo)})
		}
	}
	if len(tps) == 0 {
		return nil
	}
	if err := kc.Assign(tps); err != nil {
		tb.Fatal(err)
	}
	var out []Record
	deadline := time.Now().Add(30 * time.Second)
	for len(high) > 0 {
		if time.Now().After(deadline) {
			tb.Fatalf("reading %s: partitions %v not read to their end within 30s", topic, high)
		}
		switch e := kc.Poll(100).(type) {
		case *kafka.Message:
			p, off := e.TopicPartition.Partition, int64(e.TopicPartition.Offset)
			if off >= high[p] {
				continue // written after the call: not asked for
			}
			env, err := codec.Decode(context.Background(), e.Value)
			if err != nil {
				tb.Fatalf("%s[%d]@%d: %v", topic, p, off, err)
			}
			out = append(out, Record{Partition: p, Offset: off, Key: string(e.Key), Env: env})
			if off+1 >= high[p] {
				delete(high, p)
			}
		case kafka.Error:
			tb.Fatalf("reading %s: %v", topic, e)
		}
		// A transactional topic ends with a commit marker, which is never
		// handed out: a partition is read once the position passed it.
		var left []kafka.TopicPartition
		for p := range high {
			left = append(left, kafka.TopicPartition{Topic: &topic, Partition: p})
		}
		pos, err := kc.Position(left)
		if err != nil {
			tb.Fatal(err)
		}
		for _, tp := range pos {
			if tp.Offset >= 0 && int64(tp.Offset) >= high[tp.Partition] {
				delete(high, tp.Partition)
			}
		}
	}
	return out
}
