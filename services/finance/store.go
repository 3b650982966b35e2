package finance

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/slatehq/slate/services/internal/boltkv"
)

// Store keeps budgets, keyed by title id, and exchange rates, keyed by
// their pair of currencies, each with its version. Each method is one
// atomic step. Implementations must be safe for concurrent use and return
// the package's sentinel errors, wrapped with %w.
//
// Versions are the store's to assign: 1 for a new id, the stored version
// plus one on every put and delete, and the delete's version plus one for
// a budget put again after a delete.
type Store interface {
	// PutBudget stores b under b.TitleID (its Version is ignored) and
	// returns it as stored, and whether the title had no budget before.
	// With expectedVersion not 0 it replaces only a stored budget at that
	// version: ErrNotFound if there is none, ErrVersionMismatch if it is at
	// another.
	PutBudget(ctx context.Context, b Budget, expectedVersion int64) (stored Budget, created bool, err error)
	// DeleteBudget removes the budget of titleID and returns the version
	// the delete was recorded at. ErrNotFound and ErrVersionMismatch as for
	// PutBudget.
	DeleteBudget(ctx context.Context, titleID string, expectedVersion int64) (int64, error)
	// GetBudgets returns the stored budgets among titleIDs, keyed by title
	// id, and for each deleted one its tombstone: a Budget with only
	// TitleID, Version (the delete's) and Deleted set. Ids that never had
	// a budget are missing from the map.
	GetBudgets(ctx context.Context, titleIDs []string) (map[string]Budget, error)
	// PutRate stores r (its Version is ignored) and returns it as stored,
	// and whether the pair had no rate before.
	PutRate(ctx context.Context, r Rate) (stored Rate, created bool, err error)
	// ListRates returns the rates into the currency to, ordered by From.
	ListRates(ctx context.Context, to string) ([]Rate, error)
}

// TransactionalStore is a [Store] that writes the change event of each
// write in the write's own transaction (an outbox row), so that the event
// exists exactly when the write does. A [Server] with such a store
// publishes nothing itself.
type TransactionalStore interface {
	Store
	// WritesChangeEvents marks the store as one that writes its events.
	WritesChangeEvents()
}

// BoltStore is a [Store] in a bbolt file: what it stores survives a
// restart, versions and deletes included. One process at a time may open
// the file. It writes no events: a [Server] publishes them after each
// write.
type BoltStore struct {
	db             *boltkv.DB
	budgets, rates *boltkv.Table
}

var _ Store = (*BoltStore)(nil)

// OpenBoltStore opens the bbolt file at path, creating it if needed. Close
// it when done.
func OpenBoltStore(path string) (*BoltStore, error) {
	db, err := boltkv.Open(path)
	if err != nil {
		return nil, fmt.Errorf("finance: %w", err)
	}
	s := &BoltStore{db: db}
	if s.budgets, err = db.Table("budgets"); err == nil {
		s.rates, err = db.Table("rates")
	}
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("finance: %w", err)
	}
	return s, nil
}

// Close closes the file.
func (s *BoltStore) Close() error { return s.db.Close() }

// PutBudget implements [Store].
func (s *BoltStore) PutBudget(ctx context.Context, b Budget, expectedVersion int64) (Budget, bool, error) {
	v, created, err := s.budgets.Put(ctx, b.TitleID, expectedVersion, func(int64) ([]byte, error) { return json.Marshal(b) })
	if err != nil {
		return Budget{}, false, fmt.Errorf("budget %w", err)
	}
	b.Version = v
	return b, created, nil
}

// DeleteBudget implements [Store].
func (s *BoltStore) DeleteBudget(ctx context.Context, titleID string, expectedVersion int64) (int64, error) {
	v, err := s.budgets.Delete(ctx, titleID, expectedVersion)
	if err != nil {
		return 0, fmt.Errorf("budget %w", err)
	}
	return v, nil
}

// GetBudgets implements [Store].
func (s *BoltStore) GetBudgets(ctx context.Context, titleIDs []string) (map[string]Budget, error) {
	recs, err := s.budgets.GetWithTombstones(ctx, titleIDs)
	if err != nil {
		return nil, fmt.Errorf("finance: get budgets: %w", err)
	}
	found := make(map[string]Budget, len(recs))
	for id, r := range recs {
		if r.Deleted {
			found[id] = Budget{TitleID: id, Version: r.Version, Deleted: true}
			continue
		}
		var b Budget
		if err := json.Unmarshal(r.Value, &b); err != nil {
			return nil, fmt.Errorf("finance: stored budget %s: %w", id, err)
		}
		b.TitleID, b.Version = id, r.Version
		found[id] = b
	}
	return found, nil
}

// storedRate is a rate's value in a [BoltStore].
type storedRate struct {
	From      string    `json:"from"`
	To        string    `json:"to"`
	Rate      string    `json:"rate"`
	UpdatedAt time.Time `json:"updated_at"`
}

// PutRate implements [Store].
func (s *BoltStore) PutRate(ctx context.Context, r Rate) (Rate, bool, error) {
	v, created, err := s.rates.Put(ctx, r.ID(), 0, func(int64) ([]byte, error) {
		return json.Marshal(storedRate{From: r.From, To: r.To, Rate: r.Rate, UpdatedAt: r.UpdatedAt})
	})
	if err != nil {
		return Rate{}, false, fmt.Errorf("finance: put rate %s: %w", r.ID(), err)
	}
	r.Version = v
	return r, created, nil
}

// ListRates implements [Store].
func (s *BoltStore) ListRates(ctx context.Context, to string) ([]Rate, error) {
	recs, err := s.rates.List(ctx)
	if err != nil {
		return nil, fmt.Errorf("finance: list rates: %w", err)
	}
	var out []Rate
	for _, rec := range recs {
		var r storedRate
		if err := json.Unmarshal(rec.Value, &r); err != nil {
			return nil, fmt.Errorf("finance: stored rate %s: %w", rec.ID, err)
		}
		if r.To == to {
			out = append(out, Rate{From: r.From, To: r.To, Rate: r.Rate, Version: rec.Version, UpdatedAt: r.UpdatedAt})
		}
	}
	sortRates(out)
	return out, nil
}
