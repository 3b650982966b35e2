package bench

import (
	"context"
	"net"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

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

// Workload of BenchmarkEnricherLatency: latRate title updates per second
// for latFor, round-robin over latIDs titles, through the titles gRPC
// service, which publishes one change event per update.
const (
	latIDs     = 1000
	latRate    = 2000
	latFor     = 5 * time.Second
	latWorkers = 16
)

// change is one change event the service published.
type change struct {
	id  string
	seq int64
	at  time.Time // the envelope's time
}

// output is a materialized record of a title at a version: when the
// enricher's Handle returned for the change event of that version (its
// outputs acknowledged by the broker), or when a reader received it.
type output struct {
	seq int64
	at  time.Time
}

// latStack is the broker, registry, titles service, enricher and
// consumer of one sub-benchmark, and a reader of the materialized topic.
type latStack struct {
	client titlesv1.TitlesClient
	handed atomic.Int64 // change events the enricher handled

	mu      sync.Mutex
	record  bool
	changes []change
	handled map[string][]output // by the enricher's Handle
	outputs map[string][]output // by a reader of the materialized topic
}

func newLatStack(b *testing.B, enrLinger int) *latStack {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
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
	newProducer := func(source string, linger int) *producer.Producer {
		p, err := producer.New(producer.WithBrokers(bk.Addr()), producer.WithRegistry(reg), producer.WithSource(source),
			producer.WithKafkaConfig(map[string]any{"linger.ms": linger}))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = p.Close(context.Background()) })
		return p
	}
	svcPub := newProducer("//studio/titles", 5)
	enrPub := newProducer("//slate/enricher", enrLinger)
	s := &latStack{handled: map[string][]output{}, outputs: map[string][]output{}}

	// The service publishes its change events asynchronously, so the load
	// generator's rate is not bound by its own acknowledgements.
	publish := titles.PublisherFunc(func(ctx context.Context, entityType, id string, op schema.Op, seq int64) error {
		env := svcPub.NewChange(ctx, entityType, id, op, seq)
		s.mu.Lock()
		if s.record {
			s.changes = append(s.changes, change{id: id, seq: seq, at: env.Time})
		}
		s.mu.Unlock()
		return svcPub.PublishAsync(ctx, schema.ChangesTopic(entityType), env, func(d producer.Delivery) {
			if d.Err != nil {
				b.Error(d.Err)
			}
		})
	})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan error, 1)
	go func() {
		served <- titles.Serve(ctx, lis, titles.NewServer(publish), titles.WithGracePeriod(time.Second))
	}()
	b.Cleanup(func() { cancel(); <-served })
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	s.client = titlesv1.NewTitlesClient(conn)

	enr, err := enricher.New(titles.EntityType, titles.NewResolver(s.client), enrPub, reg)
	if err != nil {
		b.Fatal(err)
	}
	counted := consumer.HandlerFunc(func(ctx context.Context, batch []sink.Event) error {
		if err := enr.Handle(ctx, batch); err != nil {
			return err
		}
		now := time.Now()
		s.mu.Lock()
		for i := range batch {
			s.handled[batch[i].Subject] = append(s.handled[batch[i].Subject], output{seq: batch[i].Sequence, at: now})
		}
		s.mu.Unlock()
		s.handed.Add(int64(len(batch)))
		return nil
	})
	c, err := consumer.New(counted, consumer.WithBrokers(bk.Addr()), consumer.WithGroup("bench-enricher-latency"),
		consumer.WithTopics(schema.ChangesTopic(titles.EntityType)), consumer.WithRegistry(reg))
	if err != nil {
		b.Fatal(err)
	}
	cctx, ccancel := context.WithCancel(ctx)
	ran := make(chan error, 1)
	go func() { ran <- c.Run(cctx) }()
	b.Cleanup(func() {
		ccancel()
		if err := <-ran; err != nil {
			b.Error(err)
		}
	})

	codec, err := schema.NewCodec(reg)
	if err != nil {
		b.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(bk.Addr()), kgo.ConsumeTopics(enr.Topic()),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		b.Fatal(err)
	}
	rctx, rcancel := context.WithCancel(ctx)
	read := make(chan struct{})
	go func() {
		defer close(read)
		for rctx.Err() == nil {
			fs := cl.PollFetches(rctx)
			seen := time.Now()
			for _, r := range fs.Records() {
				env, err := codec.Decode(rctx, r.Value)
				if err != nil {
					continue
				}
				s.mu.Lock()
				s.outputs[env.Subject] = append(s.outputs[env.Subject], output{seq: env.Sequence, at: seen})
				s.mu.Unlock()
			}
		}
	}()
	b.Cleanup(func() { rcancel(); <-read; cl.Close() })

	// Create the titles and wait until all of them are materialized, so
	// the measured run starts warm (the reader too: it found every
	// partition of the topic, which the enricher's first publish created).
	for i := range latIDs {
		if _, err := s.client.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: latTitle(i, 0)}); err != nil {
			b.Fatal(err)
		}
	}
	s.waitAll(b, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.handed.Load() >= latIDs && len(s.outputs) == latIDs
	})
	return s
}

func latTitle(i, round int) *titlesv1.Title {
	return &titlesv1.Title{Id: "lat-" + strconv.Itoa(i), Name: "Latency " + strconv.Itoa(i), Kind: titles.KindFeature,
		Status: titles.StatusProduction, ReleaseDate: "2027-07-" + strconv.Itoa(10+round%18)}
}

func (s *latStack) waitAll(b *testing.B, cond func() bool) {
	b.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			b.Fatal("timed out waiting for the enricher")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// load sends latRate updates per second for latFor and returns how many
// it sent and over how long.
func (s *latStack) load(b *testing.B, round int) (int, time.Duration) {
	b.Helper()
	n := int(latRate * latFor / time.Second)
	interval := time.Second / latRate
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range latWorkers {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				time.Sleep(time.Until(start.Add(time.Duration(i) * interval)))
				if _, err := s.client.UpdateTitle(context.Background(),
					&titlesv1.UpdateTitleRequest{Title: latTitle(i%latIDs, round*n+i)}); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	return n, time.Since(start)
}

// latencies returns, for every recorded change event, the time from the
// event to the first materialized record of its title at its version or
// later, as the enricher's Handle acknowledged it and as the reader saw
// it, and when the last of them was seen.
func (s *latStack) latencies() (handled, seen []time.Duration, last time.Time, missing int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	first := func(os []output, seq int64) (time.Time, bool) {
		i := slices.IndexFunc(os, func(o output) bool { return o.seq >= seq })
		if i < 0 {
			return time.Time{}, false
		}
		return os[i].at, true
	}
	for _, c := range s.changes {
		h, ok1 := first(s.handled[c.id], c.seq)
		v, ok2 := first(s.outputs[c.id], c.seq)
		if !ok1 || !ok2 {
			missing++
			continue
		}
		handled = append(handled, h.Sub(c.at))
		seen = append(seen, v.Sub(c.at))
		if v.After(last) {
			last = v
		}
	}
	return handled, seen, last, missing
}

func pct(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	slices.Sort(d)
	return d[min(len(d)-1, int(float64(len(d))*p))]
}

// BenchmarkEnricherLatency publishes title updates at a fixed rate
// (latRate/s for latFor) through the titles gRPC service and measures the
// enricher running under consumer.Consumer end to end: throughput (change
// events materialized per second, from the first update to the last
// output seen) and the latency each change event adds until a
// materialized record of its title at its version or later exists (when
// the enricher's Handle returned, its outputs acknowledged: p50-ms,
// p99-ms, max-ms; and when a reader of the topic received it:
// p50-seen-ms, p99-seen-ms). It compares the
// enricher's producer with librdkafka's linger.ms 5 (slate's default) and
// 1. Run it with -benchtime 1x: each iteration is one timed run.
func BenchmarkEnricherLatency(b *testing.B) {
	for _, linger := range []int{5, 1} {
		b.Run("linger="+strconv.Itoa(linger)+"ms", func(b *testing.B) {
			s := newLatStack(b, linger)
			var (
				prod, seen []time.Duration
				events     int
				elapsed    time.Duration
				sent       time.Duration
			)
			b.ResetTimer()
			for round := 0; b.Loop(); round++ {
				s.mu.Lock()
				s.record, s.changes = true, s.changes[:0]
				s.mu.Unlock()
				before := s.handed.Load()
				start := time.Now()
				n, took := s.load(b, round+1)
				s.waitAll(b, func() bool { return s.handed.Load()-before >= int64(n) })
				var p, v []time.Duration
				var last time.Time
				var missing int
				s.waitAll(b, func() bool {
					p, v, last, missing = s.latencies()
					return missing == 0
				})
				prod, seen = append(prod, p...), append(seen, v...)
				events += n
				elapsed += last.Sub(start)
				sent += took
			}
			b.ReportMetric(float64(events)/sent.Seconds(), "published/s")
			b.ReportMetric(float64(events)/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64(pct(prod, 0.50).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(pct(prod, 0.99).Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(pct(prod, 1).Microseconds())/1000, "max-ms")
			b.ReportMetric(float64(pct(seen, 0.50).Microseconds())/1000, "p50-seen-ms")
			b.ReportMetric(float64(pct(seen, 0.99).Microseconds())/1000, "p99-seen-ms")
			b.ReportMetric(0, "ns/op")
		})
	}
}
