// Package dedupetest is the contract suite every [dedupe.Store] passes.
// A store package runs it from its tests:
//
//	func TestMemory(t *testing.T) {
//		dedupetest.Run(t, func(t *testing.T) dedupe.Store {
//			s := dedupe.NewMemory()
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
package dedupetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/slatehq/slate/dedupe"
)

// Timing the suite relies on. Short leases and ttls stay well above the
// millisecond resolution of Redis expiries.
const (
	longLease  = time.Minute
	shortLease = 100 * time.Millisecond
	shortTTL   = 300 * time.Millisecond
	longTTL    = time.Hour
	// expiryWait bounds how long the suite waits for a short lease or ttl
	// to run out before failing.
	expiryWait = 5 * time.Second
)

// Run runs the contract suite. newStore returns a store with no state the
// suite did not create (for Redis: a fresh key prefix) and registers its own
// cleanup. A store that also has a Close() error method is checked to
// return [dedupe.ErrClosed] after it; Close may then be called again by the
// cleanup.
func Run(t *testing.T, newStore func(t *testing.T) dedupe.Store) {
	t.Helper()
	cases := []struct {
		name string
		run  func(t *testing.T, s dedupe.Store)
	}{
		{"fresh claim", testFreshClaim},
		{"held while leased", testHeldWhileLeased},
		{"held, then duplicate or fresh", testHeldThenDoneOrReleased},
		{"claim after lease expiry", testClaimAfterLeaseExpiry},
		{"done blocks claims until ttl expiry", testDoneBlocksUntilExpiry},
		{"done without claim", testDoneWithoutClaim},
		{"release frees a claim", testReleaseFrees},
		{"release does not free a done id", testReleaseKeepsDone},
		{"repeats inside one batch", testRepeatsInBatch},
		{"concurrent claimers", testConcurrentClaimers},
		{"concurrent overlapping batches", testConcurrentBatches},
		{"empty batch", testEmptyBatch},
		{"invalid durations", testInvalidDurations},
		{"cancelled context", testCancelled},
		{"closed", testClosed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.run(t, newStore(t))
		})
	}
}

// RunOwners runs the part of the suite about lease owners. newStores
// returns two stores over the same state (for Redis: two stores on one key
// prefix), each one owner of the leases it takes, and registers their
// cleanup.
func RunOwners(t *testing.T, newStores func(t *testing.T) (a, b dedupe.Store)) {
	t.Helper()
	t.Run("release keeps another owner's lease", func(t *testing.T) {
		a, b := newStores(t)
		ids := NewIDs(1)
		wantClaim(t, a, ids, longLease, fr)
		wantClaim(t, b, ids, longLease, held)
		release(t, b, ids)
		wantClaim(t, b, ids, longLease, held)
	})
	t.Run("release after own lease expired and was taken over", func(t *testing.T) {
		a, b := newStores(t)
		ids := NewIDs(1)
		wantClaim(t, a, ids, shortLease, fr)
		// a's lease runs out while a is still writing; b takes the id over.
		eventuallyFresh(t, b, ids[0])
		// a's write fails and a gives back what it believes is its lease.
		release(t, a, ids)
		wantClaim(t, a, ids, longLease, held)
		release(t, b, ids)
		wantClaim(t, a, ids, longLease, fr)
	})
}

// NewIDs returns n random ids unique to this call.
func NewIDs(n int) []string {
	ids := make([]string, n)
	for i := range ids {
		var b [16]byte
		_, _ = rand.Read(b[:])
		ids[i] = hex.EncodeToString(b[:])
	}
	return ids
}

func claim(t *testing.T, s dedupe.Store, ids []string, lease time.Duration) []dedupe.Status {
	t.Helper()
	fresh, err := s.Claim(t.Context(), ids, lease)
	if err != nil {
		t.Fatalf("Claim(%d ids): %v", len(ids), err)
	}
	if len(fresh) != len(ids) {
		t.Fatalf("Claim returned %d results for %d ids", len(fresh), len(ids))
	}
	return fresh
}

// Short names for the statuses in the tables below.
const (
	fr   = dedupe.Fresh
	dup  = dedupe.Duplicate
	held = dedupe.Held
)

func wantClaim(t *testing.T, s dedupe.Store, ids []string, lease time.Duration, want ...dedupe.Status) {
	t.Helper()
	if got := claim(t, s, ids, lease); !slices.Equal(got, want) {
		t.Fatalf("Claim = %v, want %v", got, want)
	}
}

func done(t *testing.T, s dedupe.Store, ids []string, ttl time.Duration) {
	t.Helper()
	if err := s.Done(t.Context(), ids, ttl); err != nil {
		t.Fatalf("Done: %v", err)
	}
}

func release(t *testing.T, s dedupe.Store, ids []string) {
	t.Helper()
	if err := s.Release(t.Context(), ids); err != nil {
		t.Fatalf("Release: %v", err)
	}
}

// eventuallyFresh polls Claim on id until it is fresh, failing after
// expiryWait. Polling does not change the state of a non-fresh id.
func eventuallyFresh(t *testing.T, s dedupe.Store, id string) {
	t.Helper()
	deadline := time.Now().Add(expiryWait)
	for {
		if claim(t, s, []string{id}, longLease)[0] == dedupe.Fresh {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("id still not claimable %v after its expiry", expiryWait)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func testFreshClaim(t *testing.T, s dedupe.Store) {
	ids := NewIDs(3)
	wantClaim(t, s, ids, longLease, fr, fr, fr)
}

func testHeldWhileLeased(t *testing.T, s dedupe.Store) {
	ids := NewIDs(2)
	wantClaim(t, s, ids[:1], longLease, fr)
	wantClaim(t, s, ids, longLease, held, fr)
}

// A held id becomes a duplicate when its holder records it done, and fresh
// when the holder releases it: a claimer that waits loses nothing.
func testHeldThenDoneOrReleased(t *testing.T, s dedupe.Store) {
	ids := NewIDs(2)
	wantClaim(t, s, ids, longLease, fr, fr)
	wantClaim(t, s, ids, longLease, held, held)
	done(t, s, ids[:1], longTTL)
	release(t, s, ids[1:])
	wantClaim(t, s, ids, longLease, dup, fr)
}

func testClaimAfterLeaseExpiry(t *testing.T, s dedupe.Store) {
	ids := NewIDs(1)
	start := time.Now()
	wantClaim(t, s, ids, shortLease, fr)
	if time.Since(start) < shortLease/2 {
		wantClaim(t, s, ids, longLease, held)
	}
	eventuallyFresh(t, s, ids[0])
	if el := time.Since(start); el < shortLease {
		t.Fatalf("lease of %v gave way after %v", shortLease, el)
	}
}

func testDoneBlocksUntilExpiry(t *testing.T, s dedupe.Store) {
	ids := NewIDs(1)
	wantClaim(t, s, ids, longLease, fr)
	start := time.Now()
	done(t, s, ids, shortTTL)
	wantClaim(t, s, ids, longLease, dup)
	eventuallyFresh(t, s, ids[0])
	if el := time.Since(start); el < shortTTL-20*time.Millisecond {
		t.Fatalf("done marker with ttl %v gave way after %v", shortTTL, el)
	}
}

func testDoneWithoutClaim(t *testing.T, s dedupe.Store) {
	ids := NewIDs(2)
	done(t, s, ids[:1], longTTL)
	wantClaim(t, s, ids, longLease, dup, fr)
}

func testReleaseFrees(t *testing.T, s dedupe.Store) {
	ids := NewIDs(2)
	wantClaim(t, s, ids, longLease, fr, fr)
	release(t, s, ids)
	wantClaim(t, s, ids, longLease, fr, fr)
	// Releasing ids that were never claimed is not an error.
	release(t, s, NewIDs(2))
}

func testReleaseKeepsDone(t *testing.T, s dedupe.Store) {
	ids := NewIDs(2)
	wantClaim(t, s, ids, longLease, fr, fr)
	done(t, s, ids, longTTL)
	release(t, s, ids)
	wantClaim(t, s, ids, longLease, dup, dup)
}

func testRepeatsInBatch(t *testing.T, s dedupe.Store) {
	ids := NewIDs(3)
	a, b, c := ids[0], ids[1], ids[2]
	wantClaim(t, s, []string{a, b, a, a, b}, longLease, fr, fr, dup, dup, dup)
	done(t, s, []string{c}, longTTL)
	wantClaim(t, s, []string{c, c}, longLease, dup, dup)
}

func testConcurrentClaimers(t *testing.T, s dedupe.Store) {
	const claimers = 16
	id := NewIDs(1)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		wins int
		errs []error
	)
	start := make(chan struct{})
	for range claimers {
		wg.Go(func() {
			<-start
			fresh, err := s.Claim(context.Background(), id, longLease)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			if fresh[0] == dedupe.Fresh {
				wins++
			}
		})
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("Claim: %v", errs[0])
	}
	if wins != 1 {
		t.Fatalf("%d of %d concurrent claimers won, want exactly 1", wins, claimers)
	}
}

// testConcurrentBatches races claimers whose batches overlap: every id must
// be won exactly once overall.
func testConcurrentBatches(t *testing.T, s dedupe.Store) {
	const (
		claimers = 8
		batch    = 50
	)
	ids := NewIDs(100)
	wins := make([]int, len(ids))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for w := range claimers {
		wg.Go(func() {
			// Each claimer takes a window of the ids, rotated by its index.
			idx := make([]int, batch)
			mine := make([]string, batch)
			for i := range batch {
				idx[i] = (w*batch/2 + i*3) % len(ids)
				mine[i] = ids[idx[i]]
			}
			fresh, err := s.Claim(context.Background(), mine, longLease)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			for i, f := range fresh {
				if f == dedupe.Fresh {
					wins[idx[i]]++
				}
			}
		})
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("Claim: %v", errs[0])
	}
	claimed := claim(t, s, ids, longLease)
	for i, n := range wins {
		if n > 1 {
			t.Fatalf("id %d won %d times", i, n)
		}
		if n == 1 && claimed[i] == dedupe.Fresh {
			t.Fatalf("id %d was won but is fresh again", i)
		}
	}
}

func testEmptyBatch(t *testing.T, s dedupe.Store) {
	for _, ids := range [][]string{nil, {}} {
		fresh, err := s.Claim(t.Context(), ids, longLease)
		if err != nil || len(fresh) != 0 {
			t.Fatalf("Claim(empty) = %v, %v; want [], nil", fresh, err)
		}
		if err := s.Done(t.Context(), ids, longTTL); err != nil {
			t.Fatalf("Done(empty): %v", err)
		}
		if err := s.Release(t.Context(), ids); err != nil {
			t.Fatalf("Release(empty): %v", err)
		}
	}
}

func testInvalidDurations(t *testing.T, s dedupe.Store) {
	ids := NewIDs(1)
	for _, d := range []time.Duration{0, -time.Second} {
		if _, err := s.Claim(t.Context(), ids, d); !errors.Is(err, dedupe.ErrInvalidDuration) {
			t.Errorf("Claim with lease %v: err = %v, want ErrInvalidDuration", d, err)
		}
		if err := s.Done(t.Context(), ids, d); !errors.Is(err, dedupe.ErrInvalidDuration) {
			t.Errorf("Done with ttl %v: err = %v, want ErrInvalidDuration", d, err)
		}
	}
	// Nothing was recorded by the refused calls.
	wantClaim(t, s, ids, longLease, fr)
}

func testCancelled(t *testing.T, s dedupe.Store) {
	ids := NewIDs(1)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := s.Claim(ctx, ids, longLease)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Claim with cancelled ctx: err = %v, want context.Canceled", err)
	}
	if dedupe.IsRetryable(err) {
		t.Fatalf("Claim with cancelled ctx: %v looks retryable; a cancelled caller is stopping", err)
	}
	if err := s.Done(ctx, ids, longTTL); !errors.Is(err, context.Canceled) {
		t.Fatalf("Done with cancelled ctx: err = %v, want context.Canceled", err)
	}
	if err := s.Release(ctx, ids); !errors.Is(err, context.Canceled) {
		t.Fatalf("Release with cancelled ctx: err = %v, want context.Canceled", err)
	}
	wantClaim(t, s, ids, longLease, fr)
}

func testClosed(t *testing.T, s dedupe.Store) {
	c, ok := s.(interface{ Close() error })
	if !ok {
		t.Skip("store has no Close() error method")
	}
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	ids := NewIDs(1)
	if _, err := s.Claim(t.Context(), ids, longLease); !errors.Is(err, dedupe.ErrClosed) {
		t.Errorf("Claim after Close: err = %v, want ErrClosed", err)
	}
	if err := s.Done(t.Context(), ids, longTTL); !errors.Is(err, dedupe.ErrClosed) {
		t.Errorf("Done after Close: err = %v, want ErrClosed", err)
	}
	if err := s.Release(t.Context(), ids); !errors.Is(err, dedupe.ErrClosed) {
		t.Errorf("Release after Close: err = %v, want ErrClosed", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
