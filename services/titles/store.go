package titles

import (
	"context"
	"fmt"
	"sync"
)

// Store keeps titles and their versions. Each method is one atomic step:
// a store backed by a database runs it in one transaction (and may write an
// outbox row in the same transaction). Implementations must be safe for
// concurrent use and return the package's sentinel errors, wrapped with %w.
//
// Versions are the store's to assign: 1 for a new id, the stored version
// plus one on every update and delete, and the delete's version plus one for
// an id created again after a delete.
type Store interface {
	// Create stores t (its Version is ignored) and returns it as stored.
	// ErrExists if t.ID is in use.
	Create(ctx context.Context, t Title) (Title, error)
	// Update replaces the stored title with t.ID by t (its Version is
	// ignored) and returns it as stored. ErrNotFound if there is none;
	// ErrVersionMismatch if expectedVersion is not 0 and differs from the
	// stored version.
	Update(ctx context.Context, t Title, expectedVersion int64) (Title, error)
	// Delete removes the title with id and returns the version the delete
	// was recorded at. ErrNotFound and ErrVersionMismatch as for Update.
	Delete(ctx context.Context, id string, expectedVersion int64) (int64, error)
	// Get returns the stored titles among ids, keyed by id; absent ids are
	// missing from the map.
	Get(ctx context.Context, ids []string) (map[string]Title, error)
}

// MemoryStore is a [Store] in process memory, guarded by a mutex. It keeps
// the last version of every deleted id, so it grows with the number of ids
// ever used; it is meant for tests, demos and `slate up`. The zero value is
// not usable: call [NewMemoryStore].
type MemoryStore struct {
	mu         sync.RWMutex
	titles     map[string]Title
	tombstones map[string]int64 // id -> version of its delete
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore.
func NewMemoryStore() *MemoryStore {
	return &MemoryStore{titles: make(map[string]Title), tombstones: make(map[string]int64)}
}

// Create implements [Store].
func (s *MemoryStore) Create(ctx context.Context, t Title) (Title, error) {
	if err := ctx.Err(); err != nil {
		return Title{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.titles[t.ID]; ok {
		return Title{}, fmt.Errorf("%w: title %s", ErrExists, t.ID)
	}
	t.Version = s.tombstones[t.ID] + 1
	delete(s.tombstones, t.ID)
	s.titles[t.ID] = t
	return t, nil
}

// Update implements [Store].
func (s *MemoryStore) Update(ctx context.Context, t Title, expectedVersion int64) (Title, error) {
	if err := ctx.Err(); err != nil {
		return Title{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.current(t.ID, expectedVersion)
	if err != nil {
		return Title{}, err
	}
	t.Version = cur.Version + 1
	s.titles[t.ID] = t
	return t, nil
}

// Delete implements [Store].
func (s *MemoryStore) Delete(ctx context.Context, id string, expectedVersion int64) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, err := s.current(id, expectedVersion)
	if err != nil {
		return 0, err
	}
	delete(s.titles, id)
	s.tombstones[id] = cur.Version + 1
	return cur.Version + 1, nil
}

// current returns the stored title with id after checking expectedVersion.
// s.mu must be held.
func (s *MemoryStore) current(id string, expectedVersion int64) (Title, error) {
	cur, ok := s.titles[id]
	if !ok {
		return Title{}, fmt.Errorf("%w: title %s", ErrNotFound, id)
	}
	if expectedVersion != 0 && expectedVersion != cur.Version {
		return Title{}, fmt.Errorf("%w: title %s is at version %d, expected %d", ErrVersionMismatch, id, cur.Version, expectedVersion)
	}
	return cur, nil
}

// Get implements [Store].
func (s *MemoryStore) Get(ctx context.Context, ids []string) (map[string]Title, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	found := make(map[string]Title, len(ids))
	for _, id := range ids {
		if t, ok := s.titles[id]; ok {
			found[id] = t
		}
	}
	return found, nil
}
