package schedules_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/slatehq/slate/services/schedules"
)

func openStore(t *testing.T, path string) *schedules.BoltStore {
	t.Helper()
	s, err := schedules.OpenBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func sched(id, start, end string) schedules.Schedule {
	return schedules.Schedule{TitleID: id, ProductionStart: start, ProductionEnd: end,
		Releases:  []schedules.Release{{Territory: "FR", Date: "2028-03-01"}, {Territory: "US", Date: "2028-02-01"}},
		UpdatedAt: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC), Version: 42}
}

func TestBoltStore(t *testing.T) {
	ctx := context.Background()

	t.Run("put assigns versions and checks the expected one", func(t *testing.T) {
		s := openStore(t, filepath.Join(t.TempDir(), "s.db"))
		got, created, err := s.Put(ctx, sched("a", "2027-01-04", "2027-06-30"), 0)
		if err != nil || !created || got.Version != 1 || got.ProductionEnd != "2027-06-30" {
			t.Fatalf("first Put = %+v, %v, %v", got, created, err)
		}
		got, created, err = s.Put(ctx, sched("a", "2027-02-01", "2027-06-30"), 1)
		if err != nil || created || got.Version != 2 {
			t.Fatalf("Put at expected version = %+v, %v, %v", got, created, err)
		}
		if _, _, err := s.Put(ctx, sched("a", "2027-02-01", "2027-06-30"), 1); !errors.Is(err, schedules.ErrVersionMismatch) {
			t.Fatalf("stale Put = %v, want ErrVersionMismatch", err)
		}
		if _, _, err := s.Put(ctx, sched("b", "2027-02-01", "2027-06-30"), 1); !errors.Is(err, schedules.ErrNotFound) {
			t.Fatalf("Put with an expected version of a missing schedule = %v, want ErrNotFound", err)
		}
		if _, err := s.Delete(ctx, "b", 0); !errors.Is(err, schedules.ErrNotFound) {
			t.Fatalf("Delete of a missing schedule = %v, want ErrNotFound", err)
		}
	})

	t.Run("reopen after close keeps schedules, versions and deletes", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "s.db")
		s, err := schedules.OpenBoltStore(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"a", "a", "b"} {
			if _, _, err := s.Put(ctx, sched(id, "2027-01-04", "2027-06-30"), 0); err != nil {
				t.Fatal(err)
			}
		}
		if v, err := s.Delete(ctx, "b", 1); err != nil || v != 2 {
			t.Fatalf("Delete(b) = %d, %v; want 2", v, err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}

		s = openStore(t, path)
		got, err := s.Get(ctx, []string{"a", "b"})
		if err != nil {
			t.Fatal(err)
		}
		want := sched("a", "2027-01-04", "2027-06-30")
		if b := got["b"]; !b.Deleted || b.Version != 2 || b.ProductionStart != "" {
			t.Fatalf("Get of the deleted b after reopen = %+v, want its tombstone at version 2", b)
		}
		a, ok := got["a"]
		if len(got) != 2 || !ok || a.Deleted || a.Version != 2 || a.TitleID != "a" || a.ProductionStart != want.ProductionStart ||
			len(a.Releases) != 2 || a.Releases[1] != want.Releases[1] || !a.UpdatedAt.Equal(want.UpdatedAt) {
			t.Fatalf("Get after reopen = %+v, want a at version 2 as put", got)
		}
		stored, created, err := s.Put(ctx, sched("b", "2027-01-04", "2027-06-30"), 0)
		if err != nil || !created || stored.Version != 3 {
			t.Fatalf("Put after the delete and a reopen = %+v, %v, %v; want a create at version 3", stored, created, err)
		}
	})
}
