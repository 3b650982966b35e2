package titles_test

import (
	"context"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/enricher"
	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/services/titles"
)

// serveFaulty runs the titles service with an interceptor that answers
// BatchGetTitles with fault(n) for call n (from 1) while it returns an
// error.
func serveFaulty(t *testing.T, fault func(n int64) error) titlesv1.TitlesClient {
	t.Helper()
	var calls atomic.Int64
	icpt := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
		if info.FullMethod == titlesv1.Titles_BatchGetTitles_FullMethodName {
			if err := fault(calls.Add(1)); err != nil {
				return nil, err
			}
		}
		return h(ctx, req)
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	srv := titles.NewServer(titles.PublisherFunc(func(context.Context, string, string, schema.Op, int64) error { return nil }))
	go func() {
		done <- titles.Serve(ctx, lis, srv, titles.WithGracePeriod(time.Second),
			titles.WithServerOptions(grpc.UnaryInterceptor(icpt)))
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		cancel()
		<-done
	})
	return titlesv1.NewTitlesClient(conn)
}

// Transient gRPC failures of the real service are retried inside the
// enricher (the consumer never sees them), and the output is complete.
func TestEnricherRetriesTransientGRPCFailures(t *testing.T) {
	s := newEnrStack(t)
	ctx := ctxT(t)
	codesSeq := []codes.Code{codes.Unavailable, codes.ResourceExhausted, codes.Aborted}
	var served atomic.Int64
	client := serveFaulty(t, func(n int64) error {
		served.Store(n)
		if n <= int64(len(codesSeq)) {
			return status.Error(codesSeq[n-1], "injected")
		}
		return nil
	})
	for i := range 3 {
		if _, err := client.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: feature("Retry " + strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if err := s.pub.PublishChange(ctx, titles.EntityType, "missing-"+strconv.Itoa(i), schema.OpUpdate, 1); err != nil {
			t.Fatal(err)
		}
	}
	enr, err := enricher.New(titles.EntityType, titles.NewResolver(client), s.pub, s.reg,
		enricher.WithRetry(enricher.RetryPolicy{Attempts: 5, Base: 5 * time.Millisecond, Max: 20 * time.Millisecond}))
	if err != nil {
		t.Fatal(err)
	}
	var failures atomic.Int64
	h := observed{h: enr, observe: func(err error) {
		if err != nil {
			failures.Add(1)
		}
	}}
	handled := s.runConsumer(t, "enricher-retry", schema.ChangesTopic(titles.EntityType), h)
	enrWait(t, "all events enriched", func() bool { return handled.Load() == 3 })
	if served.Load() < 4 {
		t.Errorf("the service answered %d BatchGetTitles calls, want the 3 faults and a success", served.Load())
	}
	if failures.Load() != 0 {
		t.Errorf("%d batches failed; the enricher's own retries should have absorbed the faults", failures.Load())
	}
	out := s.readTopic(t, enr.Topic(), 3)
	for _, env := range out {
		if env.Type != schema.OpDelete {
			t.Errorf("%s: %s, want DELETE (the service has no such title)", env.Subject, env.Type)
		}
	}
}

// A batch the service always rejects goes, after the configured attempts,
// to studio.title.changes.dlq with its origin in headers, and the events
// behind it are enriched.
func TestEnricherDeadLettersRejectedBatch(t *testing.T) {
	s := newEnrStack(t)
	ctx := ctxT(t)
	var reject atomic.Bool
	reject.Store(true)
	client := serveFaulty(t, func(int64) error {
		if reject.Load() {
			return status.Error(codes.InvalidArgument, "ids[0]: rejected")
		}
		return nil
	})
	if err := s.pub.PublishChange(ctx, titles.EntityType, "poison", schema.OpUpdate, 1); err != nil {
		t.Fatal(err)
	}
	enr, err := enricher.New(titles.EntityType, titles.NewResolver(client), s.pub, s.reg,
		enricher.WithDeadLetter(s.pub), enricher.WithDeadLetterAfter(3))
	if err != nil {
		t.Fatal(err)
	}
	handled := s.runConsumer(t, "enricher-dlq", schema.ChangesTopic(titles.EntityType), enr)
	enrWait(t, "the poison batch settled", func() bool { return handled.Load() == 1 })
	reject.Store(false)
	if err := s.pub.PublishChange(ctx, titles.EntityType, "after", schema.OpUpdate, 1); err != nil {
		t.Fatal(err)
	}
	enrWait(t, "the next event enriched", func() bool { return handled.Load() == 2 })

	cl, err := kgo.NewClient(kgo.SeedBrokers(s.brokers), kgo.ConsumeTopics(schema.DLQTopic(schema.ChangesTopic(titles.EntityType))),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var rec *kgo.Record
	for rec == nil {
		fs := cl.PollFetches(pctx)
		if pctx.Err() != nil {
			t.Fatal("nothing in the dead-letter topic")
		}
		if rs := fs.Records(); len(rs) > 0 {
			rec = rs[0]
		}
	}
	h := map[string]string{}
	for _, hd := range rec.Headers {
		h[hd.Key] = string(hd.Value)
	}
	if string(rec.Key) != "poison" || h[enricher.HeaderDLQAttempts] != "3" || h[enricher.HeaderDLQStage] != "enrich" ||
		h[enricher.HeaderDLQTopic] != "studio.title.changes" || h[enricher.HeaderDLQError] == "" || h[schema.HeaderSubject] != "poison" {
		t.Errorf("dead letter key %q headers %v", rec.Key, h)
	}
	out := s.readTopic(t, enr.Topic(), 1)
	if out[0].Subject != "after" {
		t.Errorf("materialized %s, want only the event after the poison one", out[0].Subject)
	}
}

// observed is a consumer handler that reports each batch's outcome.
type observed struct {
	h       *enricher.Enricher
	observe func(err error)
}

// Handle calls the enricher and reports its result.
func (o observed) Handle(ctx context.Context, batch []sink.Event) error {
	err := o.h.Handle(ctx, batch)
	o.observe(err)
	return err
}
