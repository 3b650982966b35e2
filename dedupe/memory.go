package dedupe

import (
	"container/heap"
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Memory is an in-process [Store]: ids with a lease or a done marker, each
// with an expiry, in a map indexed by a min-heap of expiries. It is safe for
// concurrent use. Expired entries are dropped at the start of every call and
// by a background sweep; when a size bound is set ([WithMaxEntries]) and
// reached, the entry expiring first is evicted, which may let a duplicate of
// that id through.
//
// It serves one process only: consumers in several processes need [Redis].
type Memory struct {
	log           *slog.Logger
	now           func() time.Time
	max           int
	sweepInterval time.Duration

	mu        sync.Mutex
	closed    bool
	entries   map[string]*memEntry
	expiry    expiryHeap
	evictions uint64
	claims    uint64 // Claim calls so far

	stop chan struct{}
	wg   sync.WaitGroup
}

type memEntry struct {
	id      string
	done    bool
	claim   uint64 // the Claim call that leased it
	expires time.Time
	index   int // position in the expiry heap
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store. Options that apply:
// [WithMaxEntries], [WithSweepInterval], [WithClock], [WithLogger]. Close
// stops its background sweep.
func NewMemory(opts ...Option) *Memory {
	c := newConfig(opts)
	m := &Memory{
		log:           c.logger,
		now:           c.now,
		max:           c.maxEntries,
		sweepInterval: c.sweepInterval,
		entries:       make(map[string]*memEntry),
		stop:          make(chan struct{}),
	}
	if m.sweepInterval > 0 {
		m.wg.Add(1)
		go m.sweepLoop()
	}
	return m
}

// Claim implements [Store].
func (m *Memory) Claim(ctx context.Context, ids []string, lease time.Duration) ([]Status, error) {
	if err := checkDuration(lease); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("dedupe: claim: %w", err)
	}
	st := make([]Status, len(ids))
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, ErrClosed
	}
	now := m.now()
	m.sweepLocked(now)
	m.claims++
	expires := now.Add(lease)
	for i, id := range ids {
		// Every entry left after the sweep is live.
		switch e, ok := m.entries[id]; {
		case !ok:
			m.putLocked(id, false, expires).claim = m.claims
			st[i] = Fresh
		case e.done || e.claim == m.claims:
			st[i] = Duplicate
		default:
			st[i] = Held
		}
	}
	return st, nil
}

// Done implements [Store].
func (m *Memory) Done(ctx context.Context, ids []string, ttl time.Duration) error {
	if err := checkDuration(ttl); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dedupe: done: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	now := m.now()
	m.sweepLocked(now)
	expires := now.Add(ttl)
	for _, id := range ids {
		m.putLocked(id, true, expires)
	}
	return nil
}

// Release implements [Store].
func (m *Memory) Release(ctx context.Context, ids []string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("dedupe: release: %w", err)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.sweepLocked(m.now())
	for _, id := range ids {
		if e, ok := m.entries[id]; ok && !e.done {
			heap.Remove(&m.expiry, e.index)
			delete(m.entries, id)
		}
	}
	return nil
}

// Len returns the number of live entries (leases and done markers).
func (m *Memory) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sweepLocked(m.now())
	return len(m.entries)
}

// Evictions returns how many live entries were evicted to respect the size
// bound since the store was created.
func (m *Memory) Evictions() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.evictions
}

// Close stops the background sweep and drops every entry. Calls after Close
// return [ErrClosed]; closing twice is a no-op.
func (m *Memory) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.entries = nil
	m.expiry = nil
	close(m.stop)
	m.mu.Unlock()
	m.wg.Wait()
	return nil
}

// putLocked sets id's state and expiry, inserting it (and evicting the entry
// expiring first when the store is full) if it is new.
func (m *Memory) putLocked(id string, done bool, expires time.Time) *memEntry {
	if e, ok := m.entries[id]; ok {
		e.done = done
		e.expires = expires
		heap.Fix(&m.expiry, e.index)
		return e
	}
	if m.max > 0 && len(m.entries) >= m.max {
		victim := heap.Pop(&m.expiry).(*memEntry)
		delete(m.entries, victim.id)
		m.evictions++
		m.log.Debug("dedupe: evicted live entry", "id", victim.id, "done", victim.done, "max_entries", m.max)
	}
	e := &memEntry{id: id, done: done, expires: expires}
	heap.Push(&m.expiry, e)
	m.entries[id] = e
	return e
}

// sweepLocked drops every entry that expired at or before now.
func (m *Memory) sweepLocked(now time.Time) {
	for len(m.expiry) > 0 && !m.expiry[0].expires.After(now) {
		e := heap.Pop(&m.expiry).(*memEntry)
		delete(m.entries, e.id)
	}
}

func (m *Memory) sweepLoop() {
	defer m.wg.Done()
	t := time.NewTicker(m.sweepInterval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			m.mu.Lock()
			if !m.closed {
				m.sweepLocked(m.now())
			}
			m.mu.Unlock()
		}
	}
}

// expiryHeap orders entries by expiry, earliest first.
type expiryHeap []*memEntry

func (h expiryHeap) Len() int           { return len(h) }
func (h expiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h expiryHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = i
	h[j].index = j
}

func (h *expiryHeap) Push(x any) {
	e := x.(*memEntry)
	e.index = len(*h)
	*h = append(*h, e)
}

func (h *expiryHeap) Pop() any {
	old := *h
	n := len(old)
	e := old[n-1]
	old[n-1] = nil
	e.index = -1
	*h = old[:n-1]
	return e
}
