package dedupe_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/slatehq/slate/dedupe"
	"github.com/slatehq/slate/dedupe/dedupetest"
)

func TestMemoryContract(t *testing.T) {
	dedupetest.Run(t, func(t *testing.T) dedupe.Store {
		s := dedupe.NewMemory()
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

func TestMemoryContractBounded(t *testing.T) {
	// A bound far above what the suite uses must not change its results.
	dedupetest.Run(t, func(t *testing.T) dedupe.Store {
		s := dedupe.NewMemory(dedupe.WithMaxEntries(10_000), dedupe.WithSweepInterval(10*time.Millisecond))
		t.Cleanup(func() { _ = s.Close() })
		return s
	})
}

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestMemoryContractOwners(t *testing.T) {
	dedupetest.RunOwners(t, func(t *testing.T) (dedupe.Store, dedupe.Store) {
		s := dedupe.NewMemory()
		t.Cleanup(func() { _ = s.Close() })
		return s, s.Handle()
	})
}

// TestMemoryBoundKeepsLiveLeases pins what the size bound may evict: done
// markers, the first recorded first, and never a live lease, not even to
// make room for the rest of the same Claim.
func TestMemoryBoundKeepsLiveLeases(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	s := dedupe.NewMemory(dedupe.WithMaxEntries(3), dedupe.WithClock(clock.Now), dedupe.WithSweepInterval(0))
	defer s.Close()

	// Done markers outlive the leases below, so an eviction by expiry would
	// pick a lease.
	if err := s.Done(t.Context(), []string{"x", "y"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		claim []string
		want  []dedupe.Status
		held  []string // Snapshot after the claim
	}{
		// a repeated in one batch: the second a must stay a duplicate.
		{[]string{"a", "b", "a"}, []dedupe.Status{dedupe.Fresh, dedupe.Fresh, dedupe.Duplicate}, []string{"a", "b", "y"}},
		// y is evicted for c, but the y of this batch is still a duplicate.
		{[]string{"y", "c", "y"}, []dedupe.Status{dedupe.Duplicate, dedupe.Fresh, dedupe.Duplicate}, []string{"a", "b", "c"}},
	}
	for _, st := range steps {
		got, err := s.Claim(t.Context(), st.claim, time.Minute)
		if err != nil {
			t.Fatalf("Claim(%v): %v", st.claim, err)
		}
		if !slices.Equal(got, st.want) {
			t.Fatalf("Claim(%v) = %v, want %v", st.claim, got, st.want)
		}
		if snap := s.Snapshot(); !slices.Equal(snap, st.held) {
			t.Fatalf("after Claim(%v) entries = %v, want %v", st.claim, snap, st.held)
		}
	}

	// Only live leases are left: a new id is refused, temporarily.
	_, err := s.Claim(t.Context(), []string{"d"}, time.Minute)
	if !errors.Is(err, dedupe.ErrFull) || !dedupe.IsRetryable(err) {
		t.Fatalf("Claim with every entry a live lease: err = %v, want a retryable ErrFull", err)
	}
	if snap := s.Snapshot(); !slices.Equal(snap, []string{"a", "b", "c"}) {
		t.Fatalf("a refused claim changed the entries: %v", snap)
	}
	// A holder finishing makes room again.
	if err := s.Done(t.Context(), []string{"a"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Claim(t.Context(), []string{"d"}, time.Minute); err != nil || got[0] != dedupe.Fresh {
		t.Fatalf("Claim(d) after a is done = %v, %v; want fresh", got, err)
	}
	if got := s.Evictions(); got != 3 {
		t.Fatalf("Evictions = %d, want 3 (x, y, a)", got)
	}
	// A batch larger than the bound can never fit: permanent.
	_, err = s.Claim(t.Context(), []string{"e", "f", "g", "h"}, time.Minute)
	if !errors.Is(err, dedupe.ErrFull) || dedupe.IsRetryable(err) {
		t.Fatalf("Claim of 4 new ids with a bound of 3: err = %v, want a permanent ErrFull", err)
	}
}

func TestMemoryExpiryWithClock(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	s := dedupe.NewMemory(dedupe.WithClock(clock.Now), dedupe.WithSweepInterval(0))
	defer s.Close()

	mustClaim(t, s, []string{"lease"}, time.Second)
	if err := s.Done(t.Context(), []string{"done"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		advance time.Duration
		lease   bool // claimable again
		done    bool
		len     int
	}{
		{advance: 999 * time.Millisecond, lease: false, done: false, len: 2},
		{advance: time.Millisecond, lease: true, done: false, len: 1},
		{advance: time.Minute, lease: true, done: true, len: 0},
	}
	for i, st := range steps {
		t.Run(fmt.Sprintf("step %d", i), func(t *testing.T) {
			clock.Advance(st.advance)
			if got := s.Len(); got != st.len {
				t.Fatalf("Len = %d, want %d", got, st.len)
			}
			fresh, err := s.Claim(t.Context(), []string{"lease", "done"}, time.Nanosecond)
			if err != nil {
				t.Fatal(err)
			}
			if (fresh[0] == dedupe.Fresh) != st.lease || (fresh[1] == dedupe.Fresh) != st.done {
				t.Fatalf("fresh = %v, want [%v %v]", fresh, st.lease, st.done)
			}
			// Take the nanosecond leases back so the next step starts clean.
			if err := s.Release(t.Context(), []string{"lease", "done"}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestMemoryBackgroundSweep(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	s := dedupe.NewMemory(dedupe.WithClock(clock.Now), dedupe.WithSweepInterval(5*time.Millisecond))
	defer s.Close()
	mustClaim(t, s, dedupetest.NewIDs(100), time.Second)
	clock.Advance(2 * time.Second)
	// Snapshot does not sweep: only the background sweep can empty it.
	deadline := time.Now().Add(2 * time.Second)
	for len(s.Snapshot()) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("background sweep left %d expired entries", len(s.Snapshot()))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestMemoryCloseIsIdempotent(t *testing.T) {
	s := dedupe.NewMemory(dedupe.WithSweepInterval(time.Millisecond))
	for i := range 2 {
		if err := s.Close(); err != nil {
			t.Fatalf("Close #%d: %v", i+1, err)
		}
	}
	if _, err := s.Claim(t.Context(), []string{"x"}, time.Second); !errors.Is(err, dedupe.ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
}

func TestIsRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"unavailable", dedupe.ErrUnavailable, true},
		{"wrapped unavailable", fmt.Errorf("%w: claim: dial tcp: refused", dedupe.ErrUnavailable), true},
		{"closed", dedupe.ErrClosed, false},
		{"invalid duration", dedupe.ErrInvalidDuration, false},
		{"other", errors.New("boom"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := dedupe.IsRetryable(tt.err); got != tt.want {
				t.Fatalf("IsRetryable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func mustClaim(t *testing.T, s dedupe.Store, ids []string, lease time.Duration) {
	t.Helper()
	fresh, err := s.Claim(t.Context(), ids, lease)
	if err != nil {
		t.Fatal(err)
	}
	for i, f := range fresh {
		if f != dedupe.Fresh {
			t.Fatalf("%s is %s, want fresh", ids[i], f)
		}
	}
}

func BenchmarkMemoryClaimDone(b *testing.B) {
	s := dedupe.NewMemory(dedupe.WithMaxEntries(1_000_000))
	defer s.Close()
	benchClaimDone(b, s)
}

// benchClaimDone measures one consumer batch: Claim 500 new ids, then Done.
func benchClaimDone(b *testing.B, s dedupe.Store) {
	const batch = 500
	ctx := b.Context()
	batches := make([][]string, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if i%len(batches) == 0 {
			b.StopTimer()
			for j := range batches {
				batches[j] = dedupetest.NewIDs(batch)
			}
			b.StartTimer()
		}
		ids := batches[i%len(batches)]
		if _, err := s.Claim(ctx, ids, time.Minute); err != nil {
			b.Fatal(err)
		}
		if err := s.Done(ctx, ids, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "ids/s")
}
