package bench

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/consumer/sink/bleve"
	"github.com/slatehq/slate/graphql"
	"github.com/slatehq/slate/internal/gqlws"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

// Workload of BenchmarkSubscriptionFanout: per round, fanEvents changes
// of one title, fanGap apart, to every subscriber of it.
const (
	fanEvents = 10
	fanGap    = 100 * time.Millisecond
)

// hubFeed is the benchmark's feed: changes are published to the hub
// directly, stamped with the time of the publish.
type hubFeed struct{ hub chan *graphql.Hub }

func (f hubFeed) Run(ctx context.Context, h *graphql.Hub) error {
	h.Live()
	f.hub <- h
	<-ctx.Done()
	return nil
}

// fanout is a GraphQL server with n websocket clients subscribed to
// titleChanged of one title.
type fanout struct {
	hub      *graphql.Hub
	publish  func(v int64, at time.Time)
	dropped  func() float64
	received atomic.Int64

	mu    sync.Mutex
	seen  [][]recv // per client
	sent  map[int64]time.Time
	ended []error
}

type recv struct {
	v  int64
	at time.Time
}

func newFanout(b *testing.B, n int, viaKafka bool) *fanout {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	b.Cleanup(cancel)
	sk, err := bleve.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sk.Close(context.Background()) })
	f := &fanout{seen: make([][]recv, n), sent: map[int64]time.Time{}}
	var feed graphql.Feed
	direct := hubFeed{hub: make(chan *graphql.Hub, 1)}
	if viaKafka {
		feed = f.kafka(b)
	} else {
		feed = direct
	}
	reg := prometheus.NewRegistry()
	srv, err := graphql.New(graphql.Config{Titles: graphql.Bleve(sk), CashFlows: graphql.Bleve(sk), Feed: feed, Registerer: reg})
	if err != nil {
		b.Fatal(err)
	}
	go func() { _ = srv.Run(ctx) }()
	hs := httptest.NewServer(srv)
	b.Cleanup(hs.Close)
	f.hub = srv.Hub()
	if !viaKafka {
		<-direct.hub
		f.publish = func(v int64, at time.Time) {
			f.hub.Publish(graphql.Change{View: "title", ID: "t-1", Version: v, Produced: at,
				Doc: map[string]any{"id": "t-1", "name": "Fan-out", "version": v}})
		}
	}
	<-f.hub.Started()
	f.dropped = func() float64 {
		mfs, _ := reg.Gather()
		for _, mf := range mfs {
			if mf.GetName() == "slate_graphql_subscribers_dropped_total" {
				return mf.GetMetric()[0].GetCounter().GetValue()
			}
		}
		return 0
	}
	const q = `subscription { titleChanged(id: "t-1") { version } }`
	for i := range n {
		c, err := gqlws.Dial(ctx, hs.URL+"/query", nil)
		if err != nil {
			b.Fatalf("client %d: %v", i, err)
		}
		b.Cleanup(func() { _ = c.Close() })
		if err := c.Subscribe(ctx, "1", q, nil); err != nil {
			b.Fatal(err)
		}
		go f.read(ctx, i, c)
	}
	for f.hub.Subscribers() < n {
		time.Sleep(10 * time.Millisecond)
	}
	return f
}

// read records when client i receives each version.
func (f *fanout) read(ctx context.Context, i int, c *gqlws.Conn) {
	for {
		m, err := c.Read(ctx)
		at := time.Now()
		if err != nil {
			return
		}
		if m.Type != "next" {
			f.mu.Lock()
			f.ended = append(f.ended, fmt.Errorf("client %d: %s %s", i, m.Type, m.Payload))
			f.mu.Unlock()
			return
		}
		var r struct {
			Data struct {
				TitleChanged struct{ Version string } `json:"titleChanged"`
			} `json:"data"`
		}
		if err := json.Unmarshal(m.Payload, &r); err != nil {
			return
		}
		v, _ := strconv.ParseInt(r.Data.TitleChanged.Version, 10, 64)
		f.mu.Lock()
		f.seen[i] = append(f.seen[i], recv{v, at})
		f.mu.Unlock()
		f.received.Add(1)
	}
}

// round publishes fanEvents changes from version first on and returns
// the delay of every delivery, from the publish to a client's read.
func (f *fanout) round(b *testing.B, first int64) []time.Duration {
	b.Helper()
	n := int64(len(f.seen))
	want := f.received.Load() + n*fanEvents
	for v := first; v < first+fanEvents; v++ {
		now := time.Now()
		f.mu.Lock()
		f.sent[v] = now
		f.mu.Unlock()
		f.publish(v, now)
		time.Sleep(fanGap - time.Since(now))
	}
	deadline := time.Now().Add(60 * time.Second)
	for f.received.Load() < want {
		f.mu.Lock()
		ended := f.ended
		f.mu.Unlock()
		if len(ended) > 0 {
			b.Fatalf("%d subscriptions ended, first: %v", len(ended), ended[0])
		}
		if time.Now().After(deadline) {
			b.Fatalf("%d of %d deliveries after 60s", f.received.Load(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []time.Duration
	for i, rs := range f.seen {
		for _, r := range rs {
			if r.v >= first && r.v < first+fanEvents {
				out = append(out, r.at.Sub(f.sent[r.v]))
			}
		}
		f.seen[i] = rs[:0]
	}
	return out
}

// BenchmarkSubscriptionFanout measures the delay from a change to its
// arrival at each subscriber of titleChanged, every subscriber a
// websocket client (graphql-transport-ws, internal/gqlws) over loopback
// in the same process: 1 subscriber (the baseline) and 1,000 of the same
// title. The hub sides publish to the hub directly and measure from the
// publish; the kafka sides produce each change as a materialized record
// (Avro envelope, embedded broker) that the server's graphql.KafkaFeed
// reads, and measure from before the produce call. Each iteration publishes fanEvents changes
// fanGap apart and waits until every subscriber has them all; p50-ms,
// p99-ms and max-ms are over every delivery of every iteration, dropped
// counts the subscribers the hub dropped (the aim is none). Run it with
// -benchtime 5x.
func BenchmarkSubscriptionFanout(b *testing.B) {
	for _, side := range []struct {
		name  string
		kafka bool
		n     int
	}{{"hub/subscribers=1", false, 1}, {"hub/subscribers=1000", false, 1000},
		{"kafka/subscribers=1", true, 1}, {"kafka/subscribers=1000", true, 1000}} {
		b.Run(side.name, func(b *testing.B) {
			f := newFanout(b, side.n, side.kafka)
			var delays []time.Duration
			v := int64(1)
			for b.Loop() {
				delays = append(delays, f.round(b, v)...)
				v += fanEvents
			}
			b.ReportMetric(float64(len(delays))/float64(b.N), "deliveries/op")
			b.ReportMetric(float64(pct(delays, 0.50).Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(pct(delays, 0.99).Microseconds())/1000, "p99-ms")
			b.ReportMetric(float64(pct(delays, 1).Microseconds())/1000, "max-ms")
			b.ReportMetric(f.dropped(), "dropped")
			b.ReportMetric(0, "ns/op")
		})
	}
}

var fanTitle = avro.MustParse(`{"type": "record", "name": "Title", "namespace": "bench.fanout", "fields": [
	{"name": "id", "type": "string"}, {"name": "name", "type": "string"}, {"name": "version", "type": "long"}]}`)

// kafka returns a KafkaFeed of a materialized topic on an embedded
// broker and sets f.publish to produce to it.
func (f *fanout) kafka(b *testing.B) graphql.Feed {
	b.Helper()
	env := testenv.Start(b, "//studio/enricher")
	const topic = "studio.title.materialized"
	testenv.CreateTopics(b, env.Brokers, 4, topic)
	feed, err := graphql.NewKafkaFeed(graphql.KafkaFeedConfig{Topics: []string{topic}, Registry: env.Registry,
		Client: []kgo.Opt{kgo.SeedBrokers(env.Brokers)}})
	if err != nil {
		b.Fatal(err)
	}
	f.publish = func(v int64, _ time.Time) {
		ctx := context.Background()
		e := schema.NewEnvelope("//studio/enricher", schema.OpUpdate, "title", "t-1")
		e.Sequence = v
		var err error
		if e.Data, e.DataSchema, err = schema.EncodeData(ctx, env.Registry, "bench.fanout.Title", fanTitle,
			map[string]any{"id": "t-1", "name": "Fan-out", "version": v}); err != nil {
			b.Error(err)
			return
		}
		e.DataContentType = schema.ContentTypeAvro
		if err := env.Producer.Publish(ctx, topic, e); err != nil {
			b.Error(err)
		}
	}
	return feed
}
