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

func TestMemoryEvictsEarliestExpiry(t *testing.T) {
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	s := dedupe.NewMemory(dedupe.WithMaxEntries(3), dedupe.WithClock(clock.Now), dedupe.WithSweepInterval(0))
	defer s.Close()

	mustClaim(t, s, []string{"a"}, time.Hour)
	mustClaim(t, s, []string{"b"}, time.Minute)
	mustClaim(t, s, []string{"c"}, 10*time.Minute)
	// Done moves b's expiry past c's. Expiries now: a 60m, b 30m, c 10m.
	if err := s.Done(t.Context(), []string{"b"}, 30*time.Minute); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		insert string
		lease  time.Duration
		want   []string
	}{
		{insert: "d", lease: 2 * time.Hour, want: []string{"a", "b", "d"}}, // c (10m) goes
		{insert: "e", lease: 2 * time.Hour, want: []string{"a", "d", "e"}}, // b (30m) goes
		{insert: "f", lease: time.Minute, want: []string{"d", "e", "f"}},   // a (60m) goes, before f is in
	}
	for _, tt := range tests {
		t.Run("insert "+tt.insert, func(t *testing.T) {
			mustClaim(t, s, []string{tt.insert}, tt.lease)
			if got := s.Snapshot(); !slices.Equal(got, tt.want) {
				t.Fatalf("entries = %v, want %v", got, tt.want)
			}
		})
	}
	if got := s.Evictions(); got != 3 {
		t.Fatalf("Evictions = %d, want 3", got)
	}
	// An update of an id already held never evicts.
	if err := s.Done(t.Context(), []string{"f"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if got := s.Evictions(); got != 3 {
		t.Fatalf("Evictions after an update = %d, want 3", got)
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
