package titles

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/slatehq/slate/services/internal/boltkv"
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
// ever used, and forgets everything when the process ends; it is meant for
// tests and demos ([BoltStore] keeps titles on disk). The zero value is not
// usable: call [NewMemoryStore].
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

// BoltStore is a [Store] in a bbolt file: what it stores survives a
// restart, versions and deletes included. One process at a time may open
// the file.
type BoltStore struct {
	db    *boltkv.DB
	table *boltkv.Table
}

var _ Store = (*BoltStore)(nil)

// OpenBoltStore opens the bbolt file at path, creating it if needed. Close
// it when done.
func OpenBoltStore(path string) (*BoltStore, error) {
	db, err := boltkv.Open(path)
	if err != nil {
		return nil, fmt.Errorf("titles: %w", err)
	}
	table, err := db.NamedTable("titles", "title")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("titles: %w", err)
	}
	return &BoltStore{db: db, table: table}, nil
}

// Close closes the file.
func (s *BoltStore) Close() error { return s.db.Close() }

// storedTitle is a title as the file keeps it; the id is its key and the
// version is kept beside it.
type storedTitle struct {
	Name        string    `json:"name"`
	Kind        string    `json:"kind"`
	Status      string    `json:"status"`
	ReleaseDate string    `json:"release_date,omitempty"`
	UpdatedAt   time.Time `json:"updated_at"`
}

func (t Title) encode(int64) ([]byte, error) {
	return json.Marshal(storedTitle{Name: t.Name, Kind: t.Kind, Status: t.Status, ReleaseDate: t.ReleaseDate, UpdatedAt: t.UpdatedAt})
}

// Create implements [Store].
func (s *BoltStore) Create(ctx context.Context, t Title) (Title, error) {
	v, err := s.table.Create(ctx, t.ID, t.encode)
	if err != nil {
		return Title{}, err
	}
	t.Version = v
	return t, nil
}

// Update implements [Store].
func (s *BoltStore) Update(ctx context.Context, t Title, expectedVersion int64) (Title, error) {
	v, err := s.table.Replace(ctx, t.ID, expectedVersion, t.encode)
	if err != nil {
		return Title{}, err
	}
	t.Version = v
	return t, nil
}

// Delete implements [Store].
func (s *BoltStore) Delete(ctx context.Context, id string, expectedVersion int64) (int64, error) {
	return s.table.Delete(ctx, id, expectedVersion)
}

// Get implements [Store].
func (s *BoltStore) Get(ctx context.Context, ids []string) (map[string]Title, error) {
	recs, err := s.table.Get(ctx, ids)
	if err != nil {
		return nil, fmt.Errorf("get: %w", err)
	}
	found := make(map[string]Title, len(recs))
	for id, r := range recs {
		var st storedTitle
		if err := json.Unmarshal(r.Value, &st); err != nil {
			return nil, fmt.Errorf("stored title %s: %w", id, err)
		}
		found[id] = Title{ID: id, Name: st.Name, Kind: st.Kind, Status: st.Status,
			ReleaseDate: st.ReleaseDate, Version: r.Version, UpdatedAt: st.UpdatedAt}
	}
	return found, nil
}
