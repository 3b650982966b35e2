package kafka_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/consumer/sink"
	kafkasink "github.com/slatehq/slate/consumer/sink/kafka"
	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/schema/registry"
)

// recorder is a Publisher that keeps what it was given.
type recorder struct {
	mu    sync.Mutex
	calls []call
	err   error
}

type call struct {
	topic string
	ids   []string
}

func (r *recorder) Publish(_ context.Context, topic string, envs ...schema.Envelope) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	c := call{topic: topic}
	for _, e := range envs {
		c.ids = append(c.ids, e.ID)
	}
	r.calls = append(r.calls, c)
	return nil
}

func ev(entity, subject string) sink.Event {
	return sink.Event{Envelope: schema.NewEnvelope("//test", schema.OpUpdate, entity, subject)}
}

func TestRouting(t *testing.T) {
	a, b, c := ev("title", "1"), ev("budget", "2"), ev("title", "3")
	acme, err := kafkasink.ByEntityTypeIn("acme.")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		route kafkasink.Route
		want  []call
	}{
		{"one topic", kafkasink.ToTopic("out"), []call{{"out", []string{a.ID, b.ID, c.ID}}}},
		{"by entity type", kafkasink.ByEntityType(), []call{
			{"studio.title.materialized", []string{a.ID, c.ID}}, {"studio.budget.materialized", []string{b.ID}}}},
		{"by entity type under a prefix", acme, []call{
			{"acme.title.materialized", []string{a.ID, c.ID}}, {"acme.budget.materialized", []string{b.ID}}}},
		{"drop", func(e *sink.Event) string {
			if e.EntityType == "budget" {
				return ""
			}
			return "titles"
		}, []call{{"titles", []string{a.ID, c.ID}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r recorder
			s, err := kafkasink.New(&r, tt.route)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Write(t.Context(), []sink.Event{a, b, c}); err != nil {
				t.Fatal(err)
			}
			if !slices.EqualFunc(r.calls, tt.want, func(x, y call) bool { return x.topic == y.topic && slices.Equal(x.ids, y.ids) }) {
				t.Errorf("published %v, want %v", r.calls, tt.want)
			}
		})
	}
}

func TestByEntityTypeInRefusesBadPrefix(t *testing.T) {
	_, err := kafkasink.ByEntityTypeIn("acme*")
	if !errors.Is(err, kafkasink.ErrConfig) || !strings.Contains(err.Error(), `ByEntityTypeIn: schema: invalid topic prefix: "acme*"`) {
		t.Fatalf("err = %v, want ErrConfig naming ByEntityTypeIn and the prefix", err)
	}
}

func TestErrors(t *testing.T) {
	boom := errors.New("broker down")
	r := &recorder{err: boom}
	s, err := kafkasink.New(r, kafkasink.ToTopic("out"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(t.Context(), []sink.Event{ev("title", "1")}); !errors.Is(err, boom) {
		t.Errorf("Write with a failing publisher: err = %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Write(ctx, []sink.Event{ev("title", "1")}); !errors.Is(err, context.Canceled) {
		t.Errorf("Write with a cancelled ctx: err = %v", err)
	}
	if err := s.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(t.Context(), nil); !errors.Is(err, sink.ErrClosed) {
		t.Errorf("Write after Close: err = %v", err)
	}
	if _, err := kafkasink.New(nil, kafkasink.ToTopic("x")); !errors.Is(err, kafkasink.ErrConfig) {
		t.Errorf("New(nil publisher): err = %v", err)
	}
	if _, err := kafkasink.New(r, nil); !errors.Is(err, kafkasink.ErrConfig) {
		t.Errorf("New(nil route): err = %v", err)
	}
}

// Through a real producer to the embedded broker: the events arrive on the
// routed topic as the same envelopes, ids included.
func TestRepublishThroughBroker(t *testing.T) {
	ctx := t.Context()
	b, err := broker.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srv, err := registry.New(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	reg, err := schema.NewRegistryClient(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := producer.New(producer.WithBrokers(b.Addr()), producer.WithRegistry(reg), producer.WithSource("//test"))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(context.Background())
	s, err := kafkasink.New(pub, kafkasink.ToTopic("studio.title.search"))
	if err != nil {
		t.Fatal(err)
	}
	batch := []sink.Event{ev("title", "1"), ev("title", "2"), ev("title", "1")}
	if err := s.Write(ctx, batch); err != nil {
		t.Fatal(err)
	}

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics("studio.title.search"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	codec, err := schema.NewCodec(reg)
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var got []string
	for len(got) < len(batch) && pctx.Err() == nil {
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			e, err := codec.Decode(pctx, r.Value)
			if err != nil {
				t.Errorf("decode: %v", err)
				return
			}
			got = append(got, e.ID)
		})
	}
	want := []string{batch[0].ID, batch[1].ID, batch[2].ID}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("republished ids %v, want %v", got, want)
	}
}
