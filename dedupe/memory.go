package dedupe

import (
	"container/heap"
	"container/list"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Memory is an in-process [Store]: ids with a lease or a done marker, each
// with an expiry, in a map indexed by a min-heap of expiries. It is safe for
// concurrent use. Expired entries are dropped at the start of every call and
// by a background sweep.
//
// When a size bound is set ([WithMaxEntries]) and reached, the done marker
// recorded first is evicted to make room, which may let a later duplicate
// of that id through (the sinks absorb it by version). A live lease is
// never evicted: its holder is still writing, and freeing it would let a
// redelivery apply the same event twice. A Claim that needs more room than
// the done markers can give is refused as a whole with [ErrFull], a
// temporary error: the room comes back as the holders record their ids
// done or release them.
//
// Leases have owners, as with [Redis]: the leases a Memory takes are its
// own, and [Memory.Handle] returns another owner over the same entries.
// Release frees only the caller's own leases, never one that expired and
// was claimed since by another owner.
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
	done      list.List // done entries, the first recorded first
	live      int       // leases among entries
	evictions uint64
	claims    uint64 // Claim calls so far
	owners    uint64 // owners handed out so far; the Memory itself is 0

	stop chan struct{}
	wg   sync.WaitGroup
}

type memEntry struct {
	id      string
	done    *list.Element // in Memory.done while the entry is a done marker
	owner   uint64        // who holds the lease
	claim   uint64        // the Claim call that leased it
	expires time.Time
	index   int // position in the expiry heap
}

var _ Store = (*Memory)(nil)

// ErrFull wraps the error of a [Memory] Claim refused because the store is
// at its size bound with live leases and its done markers cannot make room
// for the new ids. It also wraps [ErrUnavailable] (retry later) unless the
// batch alone holds more new ids than the bound, which no retry can fix.
var ErrFull = errors.New("dedupe: memory store full")

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
	return m.claim(ctx, 0, ids, lease)
}

func (m *Memory) claim(ctx context.Context, owner uint64, ids []string, lease time.Duration) ([]Status, error) {
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
	if err := m.roomLocked(ids); err != nil {
		return nil, err
	}
	m.claims++
	expires := now.Add(lease)
	// Decide the ids already held first: inserting the new ones may evict
	// done markers, and an evicted id of this batch must still count as a
	// duplicate.
	var fresh []int
	for i, id := range ids {
		// Every entry left after the sweep is live.
		switch e, ok := m.entries[id]; {
		case !ok:
			fresh = append(fresh, i)
		case e.done != nil:
			st[i] = Duplicate
		default:
			st[i] = Held
		}
	}
	for _, i := range fresh {
		if e, ok := m.entries[ids[i]]; ok && e.claim == m.claims {
			st[i] = Duplicate // a repeat of an id this call leased
			continue
		}
		e := m.putLocked(ids[i], false, expires)
		e.claim, e.owner = m.claims, owner
		st[i] = Fresh
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

// roomLocked checks that the ids of a Claim that are not held yet fit under
// the bound once every done marker is evicted; live leases are never
// evicted.
func (m *Memory) roomLocked(ids []string) error {
	if m.max <= 0 {
		return nil
	}
	var fresh map[string]struct{}
	for _, id := range ids {
		if _, ok := m.entries[id]; ok {
			continue
		}
		if fresh == nil {
			fresh = make(map[string]struct{}, len(ids))
		}
		fresh[id] = struct{}{}
	}
	switch n := len(fresh); {
	case n > m.max:
		return fmt.Errorf("%w: a claim of %d new ids exceeds the bound of %d entries (WithMaxEntries)", ErrFull, n, m.max)
	case m.live+n > m.max:
		return fmt.Errorf("%w: %w: %d live leases and %d new ids exceed the bound of %d entries; retry once leases are done or released",
			ErrUnavailable, ErrFull, m.live, n, m.max)
	}
	return nil
}

// Release implements [Store]: it frees the leases of ids that this owner
// holds and leaves done markers and other owners' leases alone.
func (m *Memory) Release(ctx context.Context, ids []string) error {
	return m.release(ctx, 0, ids)
}

func (m *Memory) release(ctx context.Context, owner uint64, ids []string) error {
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
		if e, ok := m.entries[id]; ok && e.done == nil && e.owner == owner {
			m.removeLocked(e)
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

// Evictions returns how many done markers were evicted to respect the size
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
	m.done.Init()
	m.live = 0
	close(m.stop)
	m.mu.Unlock()
	m.wg.Wait()
	return nil
}

// putLocked sets id's state and expiry, inserting it if it is new. To stay
// under the bound it evicts the done marker recorded first; it never evicts
// a lease (Claim checked the room first). A done marker for an id that was
// never claimed is recorded even when only leases are left to evict: it
// then stands over the bound until the next insert evicts it.
func (m *Memory) putLocked(id string, done bool, expires time.Time) *memEntry {
	e, ok := m.entries[id]
	if !ok {
		if m.max > 0 && len(m.entries) >= m.max && m.done.Len() > 0 {
			victim := m.done.Front().Value.(*memEntry)
			m.removeLocked(victim)
			m.evictions++
			m.log.Debug("dedupe: evicted done marker", "id", victim.id, "max_entries", m.max)
		}
		e = &memEntry{id: id}
		m.entries[id] = e
		m.live++
		e.expires = expires
		heap.Push(&m.expiry, e)
	} else {
		e.expires = expires
		heap.Fix(&m.expiry, e.index)
	}
	switch {
	case done && e.done == nil:
		e.done = m.done.PushBack(e)
		m.live--
	case done:
		m.done.MoveToBack(e.done)
	case e.done != nil:
		m.done.Remove(e.done)
		e.done = nil
		m.live++
	}
	return e
}

// removeLocked drops e from every index.
func (m *Memory) removeLocked(e *memEntry) {
	if e.index >= 0 {
		heap.Remove(&m.expiry, e.index)
	}
	delete(m.entries, e.id)
	if e.done != nil {
		m.done.Remove(e.done)
		e.done = nil
	} else {
		m.live--
	}
}

// sweepLocked drops every entry that expired at or before now.
func (m *Memory) sweepLocked(now time.Time) {
	for len(m.expiry) > 0 && !m.expiry[0].expires.After(now) {
		m.removeLocked(m.expiry[0])
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

// Handle returns a [Store] over m's entries with an owner of its own, as a
// second [Redis] store over the same server is: it sees every id m and its
// other handles hold, and its Release frees only the leases it took. Give
// each consumer its own handle. Closing m closes every handle; a handle's
// own Close is a no-op.
func (m *Memory) Handle() *MemoryHandle {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.owners++
	return &MemoryHandle{m: m, owner: m.owners}
}

// MemoryHandle is one owner's view of a [Memory] store; see [Memory.Handle].
// It is safe for concurrent use.
type MemoryHandle struct {
	m     *Memory
	owner uint64
}

var _ Store = (*MemoryHandle)(nil)

// Claim implements [Store]; the leases it takes belong to h.
func (h *MemoryHandle) Claim(ctx context.Context, ids []string, lease time.Duration) ([]Status, error) {
	return h.m.claim(ctx, h.owner, ids, lease)
}

// Done implements [Store].
func (h *MemoryHandle) Done(ctx context.Context, ids []string, ttl time.Duration) error {
	return h.m.Done(ctx, ids, ttl)
}

// Release implements [Store]: it frees only leases h holds.
func (h *MemoryHandle) Release(ctx context.Context, ids []string) error {
	return h.m.release(ctx, h.owner, ids)
}
