package enricher_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slatehq/slate/enricher"
)

func TestSideInputServesStaleOnFailure(t *testing.T) {
	var (
		loads atomic.Int64
		fail  atomic.Bool
		block = make(chan struct{})
	)
	load := func(ctx context.Context) (map[string]int, error) {
		n := loads.Add(1)
		if fail.Load() {
			return nil, errors.New("rates service down")
		}
		if n == 3 {
			select { // the third load hangs until released
			case <-block:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return map[string]int{"gen": int(n)}, nil
	}
	reg := prometheus.NewRegistry()
	s, err := enricher.NewSideInput("rates", load, enricher.WithRefreshInterval(10*time.Millisecond), enricher.WithLoadTimeout(time.Minute),
		enricher.WithSideInputMetrics(reg))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)

	waitUntil(t, "a background refresh", func() bool { v, _ := s.Value(); return v["gen"] >= 2 })

	// The third load hangs: Value must not wait for it.
	waitUntil(t, "the hanging load", func() bool { return loads.Load() >= 3 })
	done := make(chan struct{})
	go func() { s.Value(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Second):
		t.Fatal("Value blocked on a load in progress")
	}
	close(block)
	waitUntil(t, "the released load", func() bool { v, _ := s.Value(); return v["gen"] == 3 })
	fail.Store(true)
	before, at := s.Value()
	n := loads.Load()
	waitUntil(t, "failed refreshes", func() bool { return loads.Load() >= n+3 })
	after, at2 := s.Value()
	if after["gen"] != before["gen"] || !at2.Equal(at) {
		t.Fatalf("value changed from %v to %v while refreshes failed", before, after)
	}
	if got := gauge(t, reg, "slate_enricher_side_input_stale", "rates"); got != 1 {
		t.Errorf("stale gauge = %v while refreshes fail, want 1", got)
	}
	fail.Store(false)
	waitUntil(t, "recovery", func() bool { v, _ := s.Value(); return v["gen"] > 3 })
	waitUntil(t, "stale gauge reset", func() bool { return gauge(t, reg, "slate_enricher_side_input_stale", "rates") == 0 })
}

// gauge reads a gauge of the registry g by its name label.
func gauge(t *testing.T, g prometheus.Gatherer, metric, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "name" && l.GetValue() == name {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{name=%q}", metric, name)
	return 0
}

func TestSideInputFirstLoadMustSucceed(t *testing.T) {
	s, err := enricher.NewSideInput("rates", func(context.Context) (int, error) { return 0, errors.New("down") })
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); !errors.Is(err, enricher.ErrSideInputUnavailable) {
		t.Fatalf("Start = %v, want ErrSideInputUnavailable", err)
	}
	if _, err := enricher.NewSideInput("rates", func(context.Context) (int, error) { return 0, nil },
		enricher.WithRefreshInterval(0)); !errors.Is(err, enricher.ErrConfig) {
		t.Fatalf("zero interval: %v, want ErrConfig", err)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}
