package bench

import (
	"context"
	"net"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/producer"
	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/schema/registry"
	"github.com/slatehq/slate/services/titles"
)

// Workload of BenchmarkEnricher: enrIDs titles, each changed enrChanges
// times in a burst. Bursts of enrWindow titles overlap: their changes are
// interleaved round-robin (as concurrent edits are), and the events are
// delivered in consumer-sized batches of enrBatch (the consumer's default).
const (
	enrIDs     = 1000
	enrChanges = 10
	enrWindow  = 50
	enrBatch   = 500
)

type enrFixture struct {
	addr   string // the titles service, with server reflection
	client titlesv1.TitlesClient
	reg    schema.Registry
	pub    *producer.Producer
	events []sink.Event
}

// newEnrFixture starts the titles service, the broker and the registry;
// linger is the producer's linger.ms (librdkafka's wait for more records
// before sending a batch; slate's default is 5).
func newEnrFixture(b *testing.B, linger int) *enrFixture {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)

	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := titles.NewServer(titles.PublisherFunc(func(context.Context, string, string, schema.Op, int64) error { return nil }))
	served := make(chan error, 1)
	go func() { served <- titles.Serve(ctx, lis, srv, titles.WithGracePeriod(time.Second)) }()
	b.Cleanup(func() { cancel(); <-served })
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	client := titlesv1.NewTitlesClient(conn)

	bk, err := broker.Start(broker.WithPartitions(4))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(bk.Close)
	rs, err := registry.New(ctx)
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(rs)
	b.Cleanup(hs.Close)
	reg, err := schema.NewRegistryClient(hs.URL)
	if err != nil {
		b.Fatal(err)
	}
	pub, err := producer.New(producer.WithBrokers(bk.Addr()), producer.WithRegistry(reg), producer.WithSource("//bench/enricher"),
		producer.WithKafkaConfig(map[string]any{"linger.ms": linger}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = pub.Close(context.Background()) })

	f := &enrFixture{addr: lis.Addr().String(), client: client, reg: reg, pub: pub}
	for i := range enrIDs {
		id := "bench-" + strconv.Itoa(i)
		t := &titlesv1.Title{Id: id, Name: "Title " + strconv.Itoa(i), Kind: titles.KindFeature,
			Status: titles.StatusProduction, ReleaseDate: "2027-07-16"}
		if _, err := client.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: t}); err != nil {
			b.Fatal(err)
		}
	}
	for w := 0; w < enrIDs; w += enrWindow {
		for round := range enrChanges {
			for i := w; i < min(w+enrWindow, enrIDs); i++ {
				env := schema.NewEnvelope("//studio/titles", schema.OpUpdate, titles.EntityType, "bench-"+strconv.Itoa(i))
				env.Sequence = int64(round + 1)
				f.events = append(f.events, sink.Event{Envelope: env, Topic: schema.ChangesTopic(titles.EntityType),
					Partition: int32(i % 4), Offset: int64(len(f.events))})
			}
		}
	}
	return f
}

// naive materializes every event on its own: one unary GetTitle per event,
// in order, then one Publish per batch (which favours it: a per-event
// publish would be slower still).
type naive struct {
	client titlesv1.TitlesClient
	reg    schema.Registry
	pub    enricher.Publisher
}

func (n *naive) Handle(ctx context.Context, batch []sink.Event) error {
	out := make([]schema.Envelope, 0, len(batch))
	for i := range batch {
		ev := &batch[i]
		resp, err := n.client.GetTitle(ctx, &titlesv1.GetTitleRequest{Id: ev.Subject})
		if status.Code(err) == codes.NotFound {
			env := schema.NewEnvelope("//bench/naive", schema.OpDelete, ev.EntityType, ev.Subject)
			env.Sequence = ev.Sequence
			out = append(out, env)
			continue
		}
		if err != nil {
			return err
		}
		env := schema.NewEnvelope("//bench/naive", schema.OpUpdate, ev.EntityType, ev.Subject)
		env.Sequence = resp.GetTitle().GetVersion()
		rec := titles.RecordOf(resp.GetTitle())
		if env.Data, env.DataSchema, err = schema.EncodeData(ctx, n.reg, titles.RecordSchema.FullName(), titles.RecordSchema, rec); err != nil {
			return err
		}
		env.DataContentType = schema.ContentTypeAvro
		out = append(out, env)
	}
	return n.pub.Publish(ctx, schema.MaterializedTopic(titles.EntityType), out...)
}

type handler interface {
	Handle(ctx context.Context, batch []sink.Event) error
}

// BenchmarkEnricher runs the same workload through the naive handler and
// the enricher (coalescing + BatchGetTitles + parallel chunks) against a
// real titles gRPC server over loopback, publishing to the embedded broker,
// with the producer's default linger (5ms) and with none. It reports
// events/s; the ratio of the two handlers is the enricher's speedup.
func BenchmarkEnricher(b *testing.B) {
	for _, linger := range []int{5, 0} {
		b.Run("linger="+strconv.Itoa(linger)+"ms", func(b *testing.B) {
			f := newEnrFixture(b, linger)
			enr, err := enricher.New(titles.EntityType, titles.NewResolver(f.client), f.pub, f.reg,
				enricher.WithMaxLookup(100), enricher.WithConcurrency(4))
			if err != nil {
				b.Fatal(err)
			}
			cases := []struct {
				name string
				h    handler
			}{
				{"naive", &naive{client: f.client, reg: f.reg, pub: f.pub}},
				{"enricher", enr},
			}
			for _, c := range cases {
				b.Run(c.name, func(b *testing.B) { runEnr(b, f, c.h) })
			}
		})
	}
}

func runEnr(b *testing.B, f *enrFixture, h handler) {
	ctx := context.Background()
	// One warm-up batch registers schemas and opens connections.
	if err := h.Handle(ctx, f.events[:enrBatch]); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		for lo := 0; lo < len(f.events); lo += enrBatch {
			if err := h.Handle(ctx, f.events[lo:min(lo+enrBatch, len(f.events))]); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(b.N*len(f.events))/b.Elapsed().Seconds(), "events/s")
	b.ReportMetric(0, "ns/op")
}
