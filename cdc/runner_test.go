package cdc_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
)

type seqPos int

func (p seqPos) String() string { return strconv.Itoa(int(p)) }

// scriptSource emits the batches it was given, then waits for ctx.
type scriptSource struct {
	batches []cdc.Batch
	mu      sync.Mutex
	acks    []cdc.Position
	done    chan struct{}
}

func (s *scriptSource) Run(ctx context.Context, emit cdc.EmitFunc) error {
	for _, b := range s.batches {
		if err := emit(ctx, b); err != nil {
			return err
		}
	}
	close(s.done)
	<-ctx.Done()
	return ctx.Err()
}

func (s *scriptSource) Ack(p cdc.Position) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.acks = append(s.acks, p)
	return nil
}

func (s *scriptSource) acked() []cdc.Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]cdc.Position(nil), s.acks...)
}

func event(topic, key string, seq int64) cdc.Event {
	e := schema.NewEnvelope("//pg/db/public/t", schema.OpUpdate, "t", key)
	e.Sequence = seq
	return cdc.Event{Topic: topic, Envelope: e}
}

func readAll(t *testing.T, brokers string, n int, topics ...string) []*kgo.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics(topics...), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out []*kgo.Record
	for len(out) < n && ctx.Err() == nil {
		out = append(out, cl.PollFetches(ctx).Records()...)
	}
	return out
}

// Both publishing modes: streaming through PublishAsync (the producer is
// an AsyncPublisher) and rounds through Publish.
func TestRunnerPublishesThenAcks(t *testing.T) {
	tests := []struct {
		name string
		opts []cdc.RunnerOption
	}{
		{"async", nil},
		{"rounds", []cdc.RunnerOption{cdc.WithSyncPublish()}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { testPublishesThenAcks(t, tt.opts...) })
	}
}

func testPublishesThenAcks(t *testing.T, opts ...cdc.RunnerOption) {
	b, err := broker.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	reg := newRegistry(t)
	p, err := producer.New(producer.WithBrokers(b.Addr()), producer.WithRegistry(reg), producer.WithSource("//pg/db"))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(context.Background())

	var batches []cdc.Batch
	want := map[string][]int64{}
	seq := int64(0)
	for i := 1; i <= 50; i++ {
		var evs []cdc.Event
		for j := 0; j < 3; j++ {
			seq++
			key := fmt.Sprintf("k%d", seq%7)
			topic := "studio.cdc.db.public.t" + strconv.Itoa(j%2)
			evs = append(evs, event(topic, key, seq))
			want[topic+"/"+key] = append(want[topic+"/"+key], seq)
		}
		var pos cdc.Position
		if i%5 != 0 { // every fifth batch is an unfinished part: no position
			pos = seqPos(i)
		}
		batches = append(batches, cdc.Batch{Events: evs, Position: pos})
	}
	batches = append(batches, cdc.Batch{Position: seqPos(51)}) // heartbeat
	src := &scriptSource{batches: batches, done: make(chan struct{})}
	r, err := cdc.NewRunner(p, opts...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- r.Run(ctx, src) }()
	<-src.done
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if a := src.acked(); len(a) > 0 && a[len(a)-1] == seqPos(51) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("run: %v", err)
	}
	acks := src.acked()
	if len(acks) == 0 || acks[len(acks)-1] != seqPos(51) {
		t.Fatalf("acks = %v, want them to end at 51", acks)
	}
	for i := 1; i < len(acks); i++ {
		if acks[i].(seqPos) <= acks[i-1].(seqPos) {
			t.Fatalf("acks out of order: %v", acks)
		}
	}
	recs := readAll(t, b.Addr(), 150, "studio.cdc.db.public.t0", "studio.cdc.db.public.t1")
	if len(recs) != 150 {
		t.Fatalf("%d records, want 150", len(recs))
	}
	codec, _ := schema.NewCodec(reg)
	got := map[string][]int64{}
	for _, rec := range recs {
		e, err := codec.Decode(context.Background(), rec.Value)
		if err != nil {
			t.Fatal(err)
		}
		got[rec.Topic+"/"+string(rec.Key)] = append(got[rec.Topic+"/"+string(rec.Key)], e.Sequence)
	}
	for k, w := range want {
		if fmt.Sprint(got[k]) != fmt.Sprint(w) {
			t.Errorf("%s: sequences %v, want %v (per-key order)", k, got[k], w)
		}
	}
}

type failingPublisher struct{ calls int }

func (f *failingPublisher) Publish(context.Context, string, ...schema.Envelope) error {
	f.calls++
	return errors.New("broker down")
}

// failingAsync enqueues and reports every record as failed.
type failingAsync struct{ failingPublisher }

func (f *failingAsync) PublishAsync(_ context.Context, topic string, _ schema.Envelope, fn func(producer.Delivery)) error {
	go fn(producer.Delivery{Topic: topic, Err: errors.New("broker down")})
	return nil
}

func TestRunnerDoesNotAckFailedPublish(t *testing.T) {
	tests := []struct {
		name string
		pub  cdc.Publisher
	}{
		{"rounds", &failingPublisher{}},
		{"async", &failingAsync{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { testDoesNotAckFailedPublish(t, tt.pub) })
	}
}

func testDoesNotAckFailedPublish(t *testing.T, pub cdc.Publisher) {
	src := &scriptSource{done: make(chan struct{}), batches: []cdc.Batch{
		{Events: []cdc.Event{event("studio.cdc.db.public.t", "k", 1)}, Position: seqPos(1)},
		{Events: []cdc.Event{event("studio.cdc.db.public.t", "k", 2)}, Position: seqPos(2)},
	}}
	r, err := cdc.NewRunner(pub)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = r.Run(ctx, src)
	if !errors.Is(err, cdc.ErrPublish) {
		t.Fatalf("run = %v, want ErrPublish", err)
	}
	if a := src.acked(); len(a) != 0 {
		t.Fatalf("acked %v after a failed publish", a)
	}
	if err := r.Run(ctx, src); !errors.Is(err, cdc.ErrClosed) {
		t.Errorf("second run = %v, want ErrClosed", err)
	}
}

func TestNewRunnerValidates(t *testing.T) {
	tests := []struct {
		name string
		pub  cdc.Publisher
		opts []cdc.RunnerOption
	}{
		{"nil publisher", nil, nil},
		{"zero queue", &failingPublisher{}, []cdc.RunnerOption{cdc.WithQueue(0)}},
		{"zero group", &failingPublisher{}, []cdc.RunnerOption{cdc.WithMaxGroup(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := cdc.NewRunner(tt.pub, tt.opts...); !errors.Is(err, cdc.ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
}
