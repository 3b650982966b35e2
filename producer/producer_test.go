package producer_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2/registry"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
)

type env struct {
	brokers string
	regURL  string
	reg     *schema.RegistryClient
}

func start(t *testing.T) env {
	t.Helper()
	e := env{brokers: testenv.Kafka(t)}
	e.regURL, e.reg = testenv.Registry(t)
	return e
}

func newProducer(t *testing.T, e env) *producer.Producer {
	t.Helper()
	return testenv.Producer(t, e.brokers, e.reg, "//studio/titles")
}

func consumeOne(t *testing.T, brokers, topic string) *kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("no record on %s: %v", topic, err)
		}
		if recs := fs.Records(); len(recs) > 0 {
			return recs[0]
		}
	}
}

// The record a producer writes is Confluent wire format: the stock
// hamba/avro registry decoder reads it with nothing but the registry URL.
func TestPublishChangeIsConfluentWireFormat(t *testing.T) {
	e := start(t)
	p := newProducer(t, e)
	ctx := context.Background()
	if err := p.PublishChange(ctx, "title", "t-1", schema.OpUpdate, 7); err != nil {
		t.Fatal(err)
	}
	rec := consumeOne(t, e.brokers, schema.ChangesTopic("title"))
	if string(rec.Key) != "t-1" {
		t.Errorf("key = %q, want the entity id t-1", rec.Key)
	}
	client, err := registry.NewClient(e.regURL)
	if err != nil {
		t.Fatal(err)
	}
	var got schema.Envelope
	if err := registry.NewDecoder(client).Decode(ctx, rec.Value, &got); err != nil {
		t.Fatalf("confluent decode: %v", err)
	}
	if got.Subject != "t-1" || got.Type != schema.OpUpdate || got.Sequence != 7 || got.EntityType != "title" ||
		got.Source != "//studio/titles" || got.SpecVersion != "1.0" || len(got.Data) != 0 {
		t.Errorf("decoded envelope = %+v", got)
	}
	hs := make([]schema.Header, len(rec.Headers))
	for i, h := range rec.Headers {
		hs[i] = schema.Header{Key: h.Key, Value: h.Value}
	}
	fromHeaders, err := schema.FromHeaders(hs)
	if err != nil {
		t.Fatal(err)
	}
	if fromHeaders.ID != got.ID || fromHeaders.Sequence != 7 || fromHeaders.Type != schema.OpUpdate {
		t.Errorf("ce_* headers = %+v, want the envelope's attributes", fromHeaders)
	}
}

// A producer with a topic prefix publishes its change events under it.
func TestPublishChangeUnderTopicPrefix(t *testing.T) {
	e := start(t)
	p := testenv.Producer(t, e.brokers, e.reg, "//studio/titles", producer.WithTopicPrefix("acme."))
	if got := p.TopicPrefix(); got != "acme." {
		t.Fatalf("TopicPrefix() = %q, want acme.", got)
	}
	ctx := context.Background()
	if err := p.PublishChange(ctx, "title", "t-1", schema.OpUpdate, 7); err != nil {
		t.Fatal(err)
	}
	rec := consumeOne(t, e.brokers, "acme.title.changes")
	if rec.Topic != "acme.title.changes" || string(rec.Key) != "t-1" {
		t.Fatalf("record on %s keyed %q, want acme.title.changes keyed t-1", rec.Topic, rec.Key)
	}
	got, err := p.Codec().Decode(ctx, rec.Value)
	if err != nil {
		t.Fatal(err)
	}
	if got.Subject != "t-1" || got.Sequence != 7 || got.EntityType != "title" {
		t.Errorf("decoded envelope = %+v", got)
	}
}

func TestCloseThenPublishFails(t *testing.T) {
	e := start(t)
	p := newProducer(t, e)
	if err := p.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	err := p.PublishChange(context.Background(), "title", "t-1", schema.OpCreate, 1)
	if !errors.Is(err, producer.ErrClosed) {
		t.Fatalf("publish after close: %v, want ErrClosed", err)
	}
	if producer.IsRetryable(err) {
		t.Error("ErrClosed reported retryable")
	}
}

func TestInvalidEnvelopeIsNotPublished(t *testing.T) {
	e := start(t)
	p := newProducer(t, e)
	bad := schema.NewEnvelope("//x", schema.Op("UPSERT"), "title", "t-1")
	err := p.Publish(context.Background(), "studio.title.changes", bad)
	if !errors.Is(err, schema.ErrInvalidEnvelope) {
		t.Fatalf("err = %v, want ErrInvalidEnvelope", err)
	}
}

func TestNewFailsClearly(t *testing.T) {
	e := start(t)
	tests := []struct {
		name string
		opts []producer.Option
		want string
	}{
		{"no brokers", []producer.Option{producer.WithRegistry(e.reg), producer.WithSource("//s")}, "brokers is empty"},
		{"no registry", []producer.Option{producer.WithBrokers(e.brokers), producer.WithSource("//s")}, "no schema registry"},
		{"no source", []producer.Option{producer.WithBrokers(e.brokers), producer.WithRegistry(e.reg)}, "source is empty"},
		{"bad topic prefix", []producer.Option{producer.WithBrokers(e.brokers), producer.WithRegistry(e.reg),
			producer.WithSource("//s"), producer.WithTopicPrefix("acme/")}, `WithTopicPrefix: schema: invalid topic prefix: "acme/"`},
		{"unreachable broker", []producer.Option{producer.WithBrokers("127.0.0.1:1"), producer.WithRegistry(e.reg),
			producer.WithSource("//s"), producer.WithStartTimeout(500 * time.Millisecond)}, "no broker reachable at 127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := producer.New(tt.opts...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
}
