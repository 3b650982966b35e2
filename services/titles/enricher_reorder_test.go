package titles_test

import (
	"context"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/producer"
	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/schema/registry"
	"github.com/slatehq/slate/services/titles"
)

// enrStack is the embedded broker, the registry and a producer.
type enrStack struct {
	brokers string
	regURL  string
	reg     *schema.RegistryClient
	pub     *producer.Producer
}

func newEnrStack(t *testing.T) enrStack {
	t.Helper()
	b, err := broker.Start(broker.WithPartitions(2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	srv, err := registry.New(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	reg, err := schema.NewRegistryClient(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := producer.New(producer.WithBrokers(b.Addr()), producer.WithRegistry(reg), producer.WithSource("//studio/titles"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = pub.Close(context.Background()) })
	return enrStack{brokers: b.Addr(), regURL: hs.URL, reg: reg, pub: pub}
}

// runConsumer runs h under a consumer.Consumer on topic until the test
// ends, and returns how many events h handled successfully.
func (s enrStack) runConsumer(t *testing.T, group, topic string, h consumer.Handler) *atomic.Int64 {
	t.Helper()
	var handled atomic.Int64
	counted := consumer.HandlerFunc(func(ctx context.Context, batch []sink.Event) error {
		if err := h.Handle(ctx, batch); err != nil {
			return err
		}
		handled.Add(int64(len(batch)))
		return nil
	})
	c, err := consumer.New(counted, consumer.WithBrokers(s.brokers), consumer.WithGroup(group), consumer.WithTopics(topic),
		consumer.WithRegistry(s.reg), consumer.WithDeadLetter(s.pub), consumer.WithBackoff(10*time.Millisecond, 100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	return &handled
}

// readTopic returns the first n envelopes of topic, in partition order.
func (s enrStack) readTopic(t *testing.T, topic string, n int) []schema.Envelope {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(s.brokers), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	codec, err := schema.NewCodec(s.reg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var out []schema.Envelope
	for len(out) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records from %s", len(out), n, topic)
		}
		for _, r := range fs.Records() {
			env, err := codec.Decode(ctx, r.Value)
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, env)
		}
	}
	return out
}

func enrWait(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestEnricherReorder moves a title's release date July -> June -> July
// through the real titles gRPC service. The change events reach Kafka in
// the wrong order (June's last) and twice. Applied in arrival order, full
// state events leave the view on June; the enricher, which reads the
// current state from the service, leaves it on July at the highest version.
func TestEnricherReorder(t *testing.T) {
	s := newEnrStack(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// The service publishes nothing itself: the test holds its change
	// events back and publishes them scrambled, as a racing producer would.
	type change struct {
		op  schema.Op
		seq int64
	}
	var (
		mu      sync.Mutex
		changes []change
	)
	hold := titles.PublisherFunc(func(_ context.Context, _, _ string, op schema.Op, seq int64) error {
		mu.Lock()
		defer mu.Unlock()
		changes = append(changes, change{op, seq})
		return nil
	})
	client := serve(t, hold)

	const july, june = "2027-07-16", "2027-06-11"
	// full[i] is the full state after write i, as a full-state event would
	// have carried it.
	var full []*titlesv1.Title
	created, err := client.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: &titlesv1.Title{
		Id: "tt-reorder", Name: "Reorder", Kind: titles.KindFeature, Status: titles.StatusProduction, ReleaseDate: july}})
	if err != nil {
		t.Fatal(err)
	}
	full = append(full, created.GetTitle())
	for _, date := range []string{june, july} {
		cur := full[len(full)-1]
		upd := &titlesv1.Title{Id: cur.GetId(), Name: cur.GetName(), Kind: cur.GetKind(), Status: cur.GetStatus(), ReleaseDate: date}
		resp, err := client.UpdateTitle(ctx, &titlesv1.UpdateTitleRequest{Title: upd})
		if err != nil {
			t.Fatal(err)
		}
		full = append(full, resp.GetTitle())
	}
	if len(changes) != 3 || full[2].GetVersion() != 3 {
		t.Fatalf("service wrote %d changes, last version %d; want 3 and 3", len(changes), full[2].GetVersion())
	}
	// Arrival order: v1, v3, v2, v3, v2 (June last, duplicates).
	arrival := []int{0, 2, 1, 2, 1}

	t.Run("full state events in arrival order end wrong", func(t *testing.T) {
		topic := "studio.title.fullstate"
		for _, i := range arrival {
			env := s.pub.NewChange(ctx, titles.EntityType, full[i].GetId(), changes[i].op, changes[i].seq)
			data, ref, err := schema.EncodeData(ctx, s.reg, titles.RecordSchema.FullName(), titles.RecordSchema, titles.RecordOf(full[i]))
			if err != nil {
				t.Fatal(err)
			}
			env.Data, env.DataSchema, env.DataContentType = data, ref, schema.ContentTypeAvro
			if err := s.pub.Publish(ctx, topic, env); err != nil {
				t.Fatal(err)
			}
		}
		var (
			vmu  sync.Mutex
			view = map[string]titles.Record{}
		)
		apply := consumer.HandlerFunc(func(ctx context.Context, batch []sink.Event) error {
			vmu.Lock()
			defer vmu.Unlock()
			for _, ev := range batch {
				var r titles.Record
				if err := schema.DecodeData(ctx, s.reg, ev.Data, &r); err != nil {
					return err
				}
				view[ev.Subject] = r // last arrival wins
			}
			return nil
		})
		handled := s.runConsumer(t, "naive-view", topic, apply)
		enrWait(t, "all full-state events applied", func() bool { return handled.Load() == int64(len(arrival)) })
		vmu.Lock()
		defer vmu.Unlock()
		got := view["tt-reorder"]
		if got.ReleaseDate != june || got.Version != 2 {
			t.Fatalf("arrival-order view = %s v%d; this workload must show the stale June at v2", got.ReleaseDate, got.Version)
		}
	})

	t.Run("enricher ends on July at the highest version", func(t *testing.T) {
		for _, i := range arrival {
			if err := s.pub.PublishChange(ctx, titles.EntityType, "tt-reorder", changes[i].op, changes[i].seq); err != nil {
				t.Fatal(err)
			}
		}
		enr, err := enricher.New(titles.EntityType, titles.NewResolver(client), s.pub, s.reg, enricher.WithDeadLetter(s.pub))
		if err != nil {
			t.Fatal(err)
		}
		handled := s.runConsumer(t, "enricher-title", schema.ChangesTopic(titles.EntityType), enr)
		enrWait(t, "all change events enriched", func() bool { return handled.Load() == int64(len(arrival)) })
		out := s.readTopic(t, enr.Topic(), int(enr.Published()))
		last := out[len(out)-1]
		var got titles.Record
		if err := schema.DecodeData(ctx, s.reg, last.Data, &got); err != nil {
			t.Fatal(err)
		}
		if got.ReleaseDate != july || got.Version != 3 || last.Sequence != 3 {
			t.Fatalf("materialized view = %s v%d (sequence %d), want %s v3", got.ReleaseDate, got.Version, last.Sequence, july)
		}
		for _, env := range out {
			if env.Sequence != 3 {
				t.Errorf("a materialized event carries sequence %d: every lookup happened after the last write, so all must be 3", env.Sequence)
			}
		}
		t.Logf("%d change events in, %d materialized events out", len(arrival), len(out))
	})
}
