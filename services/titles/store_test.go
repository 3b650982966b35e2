package titles_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/slatehq/slate/services/titles"
)

// testStore is the contract every titles.Store passes.
func testStore(t *testing.T, newStore func(t *testing.T) titles.Store) {
	ctx := context.Background()
	title := func(id, name string) titles.Title {
		return titles.Title{ID: id, Name: name, Kind: titles.KindEpisode, Status: titles.StatusPost,
			ReleaseDate: "2026-01-02", UpdatedAt: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), Version: 42}
	}

	t.Run("create assigns version 1 and rejects a taken id", func(t *testing.T) {
		s := newStore(t)
		got, err := s.Create(ctx, title("a", "A"))
		if err != nil || got.Version != 1 || got.Name != "A" || !got.UpdatedAt.Equal(title("a", "").UpdatedAt) {
			t.Fatalf("Create = %+v, %v", got, err)
		}
		if _, err := s.Create(ctx, title("a", "again")); !errors.Is(err, titles.ErrExists) {
			t.Fatalf("second Create = %v, want ErrExists", err)
		}
	})

	t.Run("update bumps the version and checks the expected one", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Create(ctx, title("a", "A")); err != nil {
			t.Fatal(err)
		}
		got, err := s.Update(ctx, title("a", "B"), 0)
		if err != nil || got.Version != 2 || got.Name != "B" {
			t.Fatalf("Update = %+v, %v", got, err)
		}
		if _, err := s.Update(ctx, title("a", "C"), 1); !errors.Is(err, titles.ErrVersionMismatch) {
			t.Fatalf("stale Update = %v, want ErrVersionMismatch", err)
		}
		if got, err := s.Update(ctx, title("a", "C"), 2); err != nil || got.Version != 3 {
			t.Fatalf("Update at expected version = %+v, %v", got, err)
		}
		if _, err := s.Update(ctx, title("zz", "Z"), 0); !errors.Is(err, titles.ErrNotFound) {
			t.Fatalf("Update unknown = %v, want ErrNotFound", err)
		}
	})

	t.Run("delete records a version and re-create continues after it", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Create(ctx, title("a", "A")); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Delete(ctx, "a", 5); !errors.Is(err, titles.ErrVersionMismatch) {
			t.Fatalf("stale Delete = %v, want ErrVersionMismatch", err)
		}
		v, err := s.Delete(ctx, "a", 1)
		if err != nil || v != 2 {
			t.Fatalf("Delete = %d, %v; want 2", v, err)
		}
		if _, err := s.Delete(ctx, "a", 0); !errors.Is(err, titles.ErrNotFound) {
			t.Fatalf("second Delete = %v, want ErrNotFound", err)
		}
		if _, err := s.Update(ctx, title("a", "B"), 0); !errors.Is(err, titles.ErrNotFound) {
			t.Fatalf("Update deleted = %v, want ErrNotFound", err)
		}
		got, err := s.Create(ctx, title("a", "A2"))
		if err != nil || got.Version != 3 {
			t.Fatalf("re-Create = %+v, %v; want version 3", got, err)
		}
	})

	t.Run("get returns only stored ids", func(t *testing.T) {
		s := newStore(t)
		for _, id := range []string{"a", "b", "c"} {
			if _, err := s.Create(ctx, title(id, id)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Delete(ctx, "b", 0); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, []string{"a", "b", "c", "d"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 2 || got["a"].Name != "a" || got["c"].Version != 1 {
			t.Fatalf("Get = %+v", got)
		}
		if got, err := s.Get(ctx, nil); err != nil || len(got) != 0 {
			t.Fatalf("Get(nil) = %v, %v", got, err)
		}
	})

	t.Run("honours a done context", func(t *testing.T) {
		s := newStore(t)
		done, cancel := context.WithCancel(ctx)
		cancel()
		if _, err := s.Create(done, title("a", "A")); !errors.Is(err, context.Canceled) {
			t.Fatalf("Create = %v, want context.Canceled", err)
		}
		if _, err := s.Get(done, []string{"a"}); !errors.Is(err, context.Canceled) {
			t.Fatalf("Get = %v, want context.Canceled", err)
		}
	})

	t.Run("concurrent updates get distinct versions", func(t *testing.T) {
		s := newStore(t)
		if _, err := s.Create(ctx, title("a", "A")); err != nil {
			t.Fatal(err)
		}
		const n = 50
		versions := make(chan int64, n)
		var wg sync.WaitGroup
		for range n {
			wg.Go(func() {
				got, err := s.Update(ctx, title("a", "A"), 0)
				if err != nil {
					t.Error(err)
					return
				}
				versions <- got.Version
			})
		}
		wg.Wait()
		close(versions)
		seen := make(map[int64]bool)
		for v := range versions {
			if seen[v] || v < 2 || v > n+1 {
				t.Errorf("version %d repeated or out of range", v)
			}
			seen[v] = true
		}
	})
}

func TestMemoryStore(t *testing.T) {
	testStore(t, func(*testing.T) titles.Store { return titles.NewMemoryStore() })
}

func openBolt(t *testing.T, path string) *titles.BoltStore {
	t.Helper()
	s, err := titles.OpenBoltStore(path)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestBoltStore(t *testing.T) {
	testStore(t, func(t *testing.T) titles.Store {
		s := openBolt(t, filepath.Join(t.TempDir(), "titles.db"))
		t.Cleanup(func() { s.Close() })
		return s
	})
}

// Both stores word their errors alike, so a client sees the same message
// whichever the server keeps titles in.
func TestStoresAgreeOnErrors(t *testing.T) {
	ctx := context.Background()
	bolt := openBolt(t, filepath.Join(t.TempDir(), "titles.db"))
	defer bolt.Close()
	a := titles.Title{ID: "a", Name: "A", Kind: titles.KindFeature, Status: titles.StatusDevelopment}
	errs := func(s titles.Store) []string {
		var out []string
		add := func(err error) { out = append(out, fmt.Sprint(err)) }
		_, err := s.Update(ctx, a, 0)
		add(err)
		if _, err := s.Create(ctx, a); err != nil {
			t.Fatal(err)
		}
		_, err = s.Create(ctx, a)
		add(err)
		_, err = s.Update(ctx, a, 7)
		add(err)
		_, err = s.Delete(ctx, "a", 7)
		add(err)
		_, err = s.Delete(ctx, "b", 0)
		add(err)
		return out
	}
	mem, disk := errs(titles.NewMemoryStore()), errs(bolt)
	if !slices.Equal(mem, disk) {
		t.Fatalf("MemoryStore errors\n  %q\nBoltStore errors\n  %q", mem, disk)
	}
	if mem[2] != "version mismatch: title a is at version 1, expected 7" {
		t.Fatalf("stale update: %q", mem[2])
	}
}

// A reopened BoltStore serves what was stored before it was closed:
// titles with every field, their versions, and the versions of deletes.
func TestBoltStoreReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "titles.db")
	at := time.Date(2026, 3, 4, 5, 6, 7, 891011121, time.UTC)
	s := openBolt(t, path)
	kept := titles.Title{ID: "kept", Name: "Kept — ünïcode", Kind: titles.KindSeries, Status: titles.StatusProduction,
		ReleaseDate: "2027-05-01", UpdatedAt: at}
	for _, step := range []func() error{
		func() error { _, err := s.Create(ctx, kept); return err },
		func() error { _, err := s.Update(ctx, kept, 1); return err },
		func() error {
			_, err := s.Create(ctx, titles.Title{ID: "gone", Name: "Gone", Kind: titles.KindFeature, Status: titles.StatusPost})
			return err
		},
		func() error { _, err := s.Delete(ctx, "gone", 1); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(ctx, []string{"kept"}); err == nil {
		t.Fatal("Get after Close succeeded")
	}

	s = openBolt(t, path)
	defer s.Close()
	got, err := s.Get(ctx, []string{"kept", "gone"})
	if err != nil {
		t.Fatal(err)
	}
	want := kept
	want.Version = 2
	if len(got) != 1 || got["kept"] != want {
		t.Fatalf("after reopen Get = %+v, want only %+v", got, want)
	}
	if _, err := s.Update(ctx, want, 1); !errors.Is(err, titles.ErrVersionMismatch) {
		t.Fatalf("stale Update after reopen = %v, want ErrVersionMismatch", err)
	}
	if u, err := s.Update(ctx, want, 2); err != nil || u.Version != 3 {
		t.Fatalf("Update after reopen = %+v, %v; want version 3", u, err)
	}
	if _, err := s.Update(ctx, titles.Title{ID: "gone", Name: "G", Kind: titles.KindFeature, Status: titles.StatusPost}, 0); !errors.Is(err, titles.ErrNotFound) {
		t.Fatalf("Update of the deleted title after reopen = %v, want ErrNotFound", err)
	}
	if c, err := s.Create(ctx, titles.Title{ID: "gone", Name: "Back", Kind: titles.KindFeature, Status: titles.StatusPost}); err != nil || c.Version != 3 {
		t.Fatalf("re-Create after reopen = %+v, %v; want version 3, after the delete's 2", c, err)
	}
}
