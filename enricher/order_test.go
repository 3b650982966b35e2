package enricher_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/schema"
)

// TestFanOutKeepsOutputKeyOrder: the consumer's lanes split batches by
// the input's subject, so a schedule change (fanning out to t1) and t1's
// own change are handled at once. The two lookups of t1 must not overlap,
// and the materialized topic (compacted: the last record wins) must end on
// the newer state, even when the older lookup is the slow one.
func TestFanOutKeepsOutputKeyOrder(t *testing.T) {
	reg := newRegistry(t)
	ctx := context.Background()
	var (
		version  atomic.Int64 // the owner's current version of t1
		inFlight atomic.Int64
		overlap  atomic.Bool
		lookups  atomic.Int64
		started  = make(chan struct{}, 4)
		second   = make(chan struct{})
		once     sync.Once
	)
	version.Store(1)
	resolver := enricher.ResolverFunc(func(_ context.Context, _ string, ids []string) (map[string]enricher.Record, error) {
		if inFlight.Add(1) > 1 {
			overlap.Store(true)
		}
		defer inFlight.Add(-1)
		v := version.Load() // the state as of the lookup
		n := lookups.Add(1)
		started <- struct{}{}
		if n == 1 {
			// The first lookup is slow: it answers after the second one
			// started, or after a while if the second waits for it.
			select {
			case <-second:
			case <-time.After(300 * time.Millisecond):
			}
		} else {
			once.Do(func() { close(second) })
		}
		return map[string]enricher.Record{"t1": {Version: v, Schema: titleSchema, Value: title{ID: "t1", ReleaseDate: "2027-07-16", Version: v}}}, nil
	})
	dependents := enricher.DependentsFunc(func(_ context.Context, ids []string) (map[string][]string, error) {
		return map[string][]string{"s1": {"t1"}}, nil
	})
	pub := &capture{}
	e, err := enricher.New("title", resolver, pub, reg,
		enricher.WithFanOut(enricher.FanOut{EntityType: "schedule", Dependents: dependents}))
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make([]error, 2)
	wg.Go(func() { errs[0] = e.Handle(ctx, []sink.Event{change("schedule", "s1", schema.OpUpdate, 3, 0)}) })
	<-started // the fanned-out lookup of t1 read v1
	version.Store(2)
	wg.Go(func() { errs[1] = e.Handle(ctx, []sink.Event{change("title", "t1", schema.OpUpdate, 2, 0)}) })
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if overlap.Load() {
		t.Error("two lookups of t1 ran at the same time")
	}
	out := pub.published()
	if len(out) != 2 {
		t.Fatalf("published %d, want 2", len(out))
	}
	if out[0].Sequence != 1 || out[1].Sequence != 2 {
		t.Errorf("t1 published at v%d then v%d: the compacted topic ends on v%d, want v1 then v2", out[0].Sequence, out[1].Sequence, out[1].Sequence)
	}
}
