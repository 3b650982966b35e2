package boltkv_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/slatehq/slate/services/internal/boltkv"
	"github.com/slatehq/slate/services/internal/service"
)

func put(t *testing.T, tab *boltkv.Table, id string, expected int64, value string) int64 {
	t.Helper()
	before, err := tab.Get(context.Background(), []string{id})
	if err != nil {
		t.Fatal(err)
	}
	v, created, err := tab.Put(context.Background(), id, expected, func(int64) ([]byte, error) { return []byte(value), nil })
	if err != nil {
		t.Fatalf("Put(%s, %d) = %v", id, expected, err)
	}
	if _, existed := before[id]; created == existed {
		t.Fatalf("Put(%s) created = %v, but the id existed before: %v", id, created, existed)
	}
	return v
}

func TestTableVersionsSurviveReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "kv.db")
	db, err := boltkv.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	tab, err := db.Table("things")
	if err != nil {
		t.Fatal(err)
	}
	if v := put(t, tab, "a", 0, "one"); v != 1 {
		t.Fatalf("first put version %d, want 1", v)
	}
	if v := put(t, tab, "a", 1, "two"); v != 2 {
		t.Fatalf("second put version %d, want 2", v)
	}
	put(t, tab, "b", 0, "bee")
	if v, err := tab.Delete(ctx, "b", 0); err != nil || v != 2 {
		t.Fatalf("Delete(b) = %d, %v; want 2", v, err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	db, err = boltkv.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tab, err = db.Table("things")
	if err != nil {
		t.Fatal(err)
	}
	got, err := tab.Get(ctx, []string{"a", "b", "c"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got["a"].Version != 2 || string(got["a"].Value) != "two" {
		t.Fatalf("Get after reopen = %+v, want only a at version 2", got)
	}
	if v := put(t, tab, "b", 0, "again"); v != 3 {
		t.Fatalf("put after delete and reopen: version %d, want 3", v)
	}
}

func TestTableChecks(t *testing.T) {
	ctx := context.Background()
	db, err := boltkv.Open(filepath.Join(t.TempDir(), "kv.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tab, err := db.Table("things")
	if err != nil {
		t.Fatal(err)
	}
	noop := func(int64) ([]byte, error) { return nil, nil }
	if _, _, err := tab.Put(ctx, "a", 1, noop); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("Put with expected version of a missing id = %v, want ErrNotFound", err)
	}
	put(t, tab, "a", 0, "one")
	if _, _, err := tab.Put(ctx, "a", 5, noop); !errors.Is(err, service.ErrVersionMismatch) {
		t.Fatalf("stale Put = %v, want ErrVersionMismatch", err)
	}
	if _, err := tab.Delete(ctx, "a", 5); !errors.Is(err, service.ErrVersionMismatch) {
		t.Fatalf("stale Delete = %v, want ErrVersionMismatch", err)
	}
	if _, err := tab.Delete(ctx, "zz", 0); !errors.Is(err, service.ErrNotFound) {
		t.Fatalf("Delete of a missing id = %v, want ErrNotFound", err)
	}
	bad := errors.New("cannot encode")
	if _, _, err := tab.Put(ctx, "a", 0, func(int64) ([]byte, error) { return nil, bad }); !errors.Is(err, bad) {
		t.Fatalf("Put with a failing encode = %v, want its error", err)
	}
	got, _ := tab.Get(ctx, []string{"a"})
	if got["a"].Version != 1 || string(got["a"].Value) != "one" {
		t.Fatalf("after a failed Put: %+v, want version 1 unchanged", got["a"])
	}

	put(t, tab, "EUR>USD", 0, "1")
	put(t, tab, "GBP>USD", 0, "2")
	put(t, tab, "USD>EUR", 0, "3")
	list, err := tab.List(ctx)
	if err != nil || len(list) != 4 {
		t.Fatalf("List = %v, %v; want 4 records", list, err)
	}
	other, err := db.Table("others")
	if err != nil {
		t.Fatal(err)
	}
	if list, _ := other.List(ctx); len(list) != 0 {
		t.Fatalf("another table lists %v, want nothing", list)
	}
}

func TestTableCreateAndReplace(t *testing.T) {
	ctx := context.Background()
	db, err := boltkv.Open(filepath.Join(t.TempDir(), "kv.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tab, err := db.NamedTable("things", "thing")
	if err != nil {
		t.Fatal(err)
	}
	value := func(s string) func(int64) ([]byte, error) {
		return func(int64) ([]byte, error) { return []byte(s), nil }
	}
	for _, tc := range []struct {
		name    string
		write   func() (int64, error)
		version int64
		err     error
		msg     string
	}{
		{"replace of a missing id", func() (int64, error) { return tab.Replace(ctx, "a", 0, value("x")) }, 0, service.ErrNotFound, "not found: thing a"},
		{"create", func() (int64, error) { return tab.Create(ctx, "a", value("one")) }, 1, nil, ""},
		{"create of a taken id", func() (int64, error) { return tab.Create(ctx, "a", value("x")) }, 0, service.ErrExists, "already exists: thing a"},
		{"replace", func() (int64, error) { return tab.Replace(ctx, "a", 0, value("two")) }, 2, nil, ""},
		{"stale replace", func() (int64, error) { return tab.Replace(ctx, "a", 1, value("x")) }, 0, service.ErrVersionMismatch, "version mismatch: thing a is at version 2, expected 1"},
		{"replace at the version", func() (int64, error) { return tab.Replace(ctx, "a", 2, value("three")) }, 3, nil, ""},
		{"delete", func() (int64, error) { return tab.Delete(ctx, "a", 3) }, 4, nil, ""},
		{"replace of a deleted id", func() (int64, error) { return tab.Replace(ctx, "a", 0, value("x")) }, 0, service.ErrNotFound, "not found: thing a"},
		{"create after a delete", func() (int64, error) { return tab.Create(ctx, "a", value("again")) }, 5, nil, ""},
	} {
		v, err := tc.write()
		if tc.err == nil && (err != nil || v != tc.version) {
			t.Fatalf("%s = %d, %v; want version %d", tc.name, v, err, tc.version)
		}
		if tc.err != nil && (!errors.Is(err, tc.err) || err.Error() != tc.msg) {
			t.Fatalf("%s = %v, want %q", tc.name, err, tc.msg)
		}
	}
	got, _ := tab.Get(ctx, []string{"a"})
	if got["a"].Version != 5 || string(got["a"].Value) != "again" {
		t.Fatalf("after the writes: %+v, want version 5 \"again\"", got["a"])
	}
}

// GetWithTombstones answers a deleted id with its tombstone at the
// delete's version, and forgets the tombstone once the id is put again.
func TestGetWithTombstones(t *testing.T) {
	ctx := context.Background()
	db, err := boltkv.Open(filepath.Join(t.TempDir(), "kv.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tab, err := db.Table("things")
	if err != nil {
		t.Fatal(err)
	}
	put(t, tab, "a", 0, "one")
	put(t, tab, "b", 0, "two")
	if v, err := tab.Delete(ctx, "b", 1); err != nil || v != 2 {
		t.Fatalf("Delete(b) = %d, %v; want 2", v, err)
	}
	got, err := tab.GetWithTombstones(ctx, []string{"a", "b", "never"})
	if err != nil {
		t.Fatal(err)
	}
	if a, b := got["a"], got["b"]; len(got) != 2 || a.Deleted || string(a.Value) != "one" || a.Version != 1 ||
		!b.Deleted || b.Version != 2 || len(b.Value) != 0 {
		t.Fatalf("GetWithTombstones = %+v; want a live at 1, b's tombstone at 2, nothing of never", got)
	}
	if plain, err := tab.Get(ctx, []string{"b"}); err != nil || len(plain) != 0 {
		t.Fatalf("Get of a deleted id = %+v, %v; want nothing", plain, err)
	}
	if v := put(t, tab, "b", 0, "again"); v != 3 {
		t.Fatalf("put after the delete at %d, want 3", v)
	}
	got, err = tab.GetWithTombstones(ctx, []string{"b"})
	if err != nil || got["b"].Deleted || got["b"].Version != 3 || string(got["b"].Value) != "again" {
		t.Fatalf("GetWithTombstones after the put again = %+v, %v", got, err)
	}
}
