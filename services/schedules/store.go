package schedules

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/slatehq/slate/services/internal/boltkv"
)

// Store keeps schedules and their versions, keyed by title id. Each method
// is one atomic step. Implementations must be safe for concurrent use and
// return the package's sentinel errors, wrapped with %w.
//
// Versions are the store's to assign: 1 for a new id, the stored version
// plus one on every put and delete, and the delete's version plus one for
// an id put again after a delete.
type Store interface {
	// Put stores s under s.TitleID (its Version is ignored) and returns it
	// as stored, and whether the title had no schedule before. With expectedVersion not 0 it replaces only a stored
	// schedule at that version: ErrNotFound if there is none,
	// ErrVersionMismatch if it is at another.
	Put(ctx context.Context, s Schedule, expectedVersion int64) (stored Schedule, created bool, err error)
	// Delete removes the schedule of titleID and returns the version the
	// delete was recorded at. ErrNotFound and ErrVersionMismatch as for
	// Put.
	Delete(ctx context.Context, titleID string, expectedVersion int64) (int64, error)
	// Get returns the stored schedules among titleIDs, keyed by title id,
	// and for each deleted one its tombstone: a Schedule with only
	// TitleID, Version (the delete's) and Deleted set. Ids that never had
	// a schedule are missing from the map.
	Get(ctx context.Context, titleIDs []string) (map[string]Schedule, error)
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
		return nil, fmt.Errorf("schedules: %w", err)
	}
	table, err := db.Table("schedules")
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("schedules: %w", err)
	}
	return &BoltStore{db: db, table: table}, nil
}

// Close closes the file.
func (s *BoltStore) Close() error { return s.db.Close() }

// Put implements [Store].
func (s *BoltStore) Put(ctx context.Context, sc Schedule, expectedVersion int64) (Schedule, bool, error) {
	v, created, err := s.table.Put(ctx, sc.TitleID, expectedVersion, func(int64) ([]byte, error) { return json.Marshal(sc) })
	if err != nil {
		return Schedule{}, false, fmt.Errorf("schedule %w", err)
	}
	sc.Version = v
	return sc, created, nil
}

// Delete implements [Store].
func (s *BoltStore) Delete(ctx context.Context, titleID string, expectedVersion int64) (int64, error) {
	v, err := s.table.Delete(ctx, titleID, expectedVersion)
	if err != nil {
		return 0, fmt.Errorf("schedule %w", err)
	}
	return v, nil
}

// Get implements [Store].
func (s *BoltStore) Get(ctx context.Context, titleIDs []string) (map[string]Schedule, error) {
	recs, err := s.table.GetWithTombstones(ctx, titleIDs)
	if err != nil {
		return nil, fmt.Errorf("schedules: get: %w", err)
	}
	found := make(map[string]Schedule, len(recs))
	for id, r := range recs {
		if r.Deleted {
			found[id] = Schedule{TitleID: id, Version: r.Version, Deleted: true}
			continue
		}
		var sc Schedule
		if err := json.Unmarshal(r.Value, &sc); err != nil {
			return nil, fmt.Errorf("schedules: stored schedule %s: %w", id, err)
		}
		sc.TitleID, sc.Version = id, r.Version
		found[id] = sc
	}
	return found, nil
}
