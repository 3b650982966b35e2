package finance_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/slatehq/slate/services/finance"
)

func openBolt(t *testing.T, path string) *finance.BoltStore {
	t.Helper()
	s, err := finance.OpenBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func budget(id string, amount int64) finance.Budget {
	return finance.Budget{TitleID: id,
		LineItems: []finance.LineItem{
			{Category: "cast", Amount: amount, Currency: "USD", Profile: "production"},
			{Category: "p&a", Amount: 500_000_00, Currency: "EUR", Profile: "before_release:6"},
		},
		Actuals:   []finance.Actual{{Category: "cast", Month: "2027-02", Amount: 12_345_67, Currency: "USD"}},
		UpdatedAt: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), Version: 42}
}

func rate(from, to, r string) finance.Rate {
	return finance.Rate{From: from, To: to, Rate: r, UpdatedAt: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)}
}

// testStore is the contract every finance.Store passes.
func testStore(t *testing.T, newStore func(t *testing.T) finance.Store) {
	ctx := context.Background()

	t.Run("put assigns versions and checks the expected one", func(t *testing.T) {
		s := newStore(t)
		got, created, err := s.PutBudget(ctx, budget("a", 1_000_000_00), 0)
		if err != nil || !created || got.Version != 1 || got.LineItems[0].Amount != 1_000_000_00 {
			t.Fatalf("first PutBudget = %+v, %v, %v", got, created, err)
		}
		got, created, err = s.PutBudget(ctx, budget("a", 2_000_000_00), 1)
		if err != nil || created || got.Version != 2 {
			t.Fatalf("PutBudget at the expected version = %+v, %v, %v", got, created, err)
		}
		if _, _, err := s.PutBudget(ctx, budget("a", 3), 1); !errors.Is(err, finance.ErrVersionMismatch) {
			t.Fatalf("stale PutBudget = %v, want ErrVersionMismatch", err)
		}
		if _, _, err := s.PutBudget(ctx, budget("b", 3), 1); !errors.Is(err, finance.ErrNotFound) {
			t.Fatalf("PutBudget with an expected version of a missing budget = %v, want ErrNotFound", err)
		}
		found, err := s.GetBudgets(ctx, []string{"a", "b"})
		if err != nil || len(found) != 1 || found["a"].Version != 2 || found["a"].LineItems[0].Amount != 2_000_000_00 ||
			found["a"].Actuals[0] != budget("a", 0).Actuals[0] || !found["a"].UpdatedAt.Equal(budget("a", 0).UpdatedAt) {
			t.Fatalf("GetBudgets = %+v, %v; want a at version 2", found, err)
		}
	})

	t.Run("delete records a version and a put after it continues", func(t *testing.T) {
		s := newStore(t)
		if _, _, err := s.PutBudget(ctx, budget("a", 1), 0); err != nil {
			t.Fatal(err)
		}
		if _, err := s.DeleteBudget(ctx, "a", 5); !errors.Is(err, finance.ErrVersionMismatch) {
			t.Fatalf("stale DeleteBudget = %v, want ErrVersionMismatch", err)
		}
		if v, err := s.DeleteBudget(ctx, "a", 1); err != nil || v != 2 {
			t.Fatalf("DeleteBudget = %d, %v; want 2", v, err)
		}
		if _, err := s.DeleteBudget(ctx, "a", 0); !errors.Is(err, finance.ErrNotFound) {
			t.Fatalf("second DeleteBudget = %v, want ErrNotFound", err)
		}
		if found, _ := s.GetBudgets(ctx, []string{"a"}); len(found) != 1 || !found["a"].Deleted || found["a"].Version != 2 || len(found["a"].LineItems) != 0 {
			t.Fatalf("GetBudgets after the delete = %+v, want the tombstone of a at version 2", found)
		}
		got, created, err := s.PutBudget(ctx, budget("a", 1), 0)
		if err != nil || !created || got.Version != 3 {
			t.Fatalf("PutBudget after the delete = %+v, %v, %v; want a create at version 3", got, created, err)
		}
	})

	t.Run("rates are versioned per pair and listed by reporting currency", func(t *testing.T) {
		s := newStore(t)
		for _, r := range []finance.Rate{rate("GBP", "USD", "1.27"), rate("EUR", "USD", "1.08"), rate("USD", "EUR", "0.92"), rate("EUR", "USD", "1.08345")} {
			if _, _, err := s.PutRate(ctx, r); err != nil {
				t.Fatal(err)
			}
		}
		got, created, err := s.PutRate(ctx, rate("JPY", "USD", "0.0067"))
		if err != nil || !created || got.Version != 1 {
			t.Fatalf("PutRate of a new pair = %+v, %v, %v", got, created, err)
		}
		rates, err := s.ListRates(ctx, "USD")
		if err != nil {
			t.Fatal(err)
		}
		if len(rates) != 3 || rates[0].From != "EUR" || rates[0].Rate != "1.08345" || rates[0].Version != 2 ||
			rates[1].From != "GBP" || rates[2].From != "JPY" || !rates[1].UpdatedAt.Equal(rate("", "", "").UpdatedAt) {
			t.Fatalf("ListRates(USD) = %+v; want EUR at version 2, GBP, JPY", rates)
		}
		if rates, _ := s.ListRates(ctx, "CHF"); len(rates) != 0 {
			t.Fatalf("ListRates(CHF) = %+v, want none", rates)
		}
	})

	t.Run("concurrent puts of a new id get distinct versions and one create", func(t *testing.T) {
		s := newStore(t)
		const n = 8
		var (
			wg       sync.WaitGroup
			mu       sync.Mutex
			versions = map[int64]bool{}
			creates  int
		)
		for range n {
			wg.Go(func() {
				got, created, err := s.PutBudget(ctx, budget("c", 1), 0)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				defer mu.Unlock()
				versions[got.Version] = true
				if created {
					creates++
				}
			})
		}
		wg.Wait()
		if len(versions) != n || !versions[1] || !versions[n] || creates != 1 {
			t.Fatalf("versions %v, %d creates; want 1 to %d and one create", versions, creates, n)
		}
	})
}

func TestBoltStore(t *testing.T) {
	testStore(t, func(t *testing.T) finance.Store { return openBolt(t, filepath.Join(t.TempDir(), "finance.db")) })
}

func TestBoltStoreReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "finance.db")
	s, err := finance.OpenBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "a", "b"} {
		if _, _, err := s.PutBudget(ctx, budget(id, 7), 0); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.DeleteBudget(ctx, "b", 0); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.PutRate(ctx, rate("EUR", "USD", "1.08345")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openBolt(t, path)
	found, err := s.GetBudgets(ctx, []string{"a", "b"})
	if err != nil || len(found) != 2 || found["a"].Version != 2 || found["a"].LineItems[1].Profile != "before_release:6" || !found["b"].Deleted {
		t.Fatalf("GetBudgets after reopen = %+v, %v; want a at version 2", found, err)
	}
	got, created, err := s.PutBudget(ctx, budget("b", 7), 0)
	if err != nil || !created || got.Version != 3 {
		t.Fatalf("PutBudget after the delete and a reopen = %+v, %v, %v; want a create at version 3", got, created, err)
	}
	rates, err := s.ListRates(ctx, "USD")
	if err != nil || len(rates) != 1 || rates[0].Rate != "1.08345" || rates[0].Version != 1 {
		t.Fatalf("ListRates after reopen = %+v, %v", rates, err)
	}
}
