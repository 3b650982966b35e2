package hive_test

import (
	"context"
	"database/sql"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/duckdb/duckdb-go/v2"
)

// duckReader reads the table back with DuckDB, a real Parquet and Hive
// partitioning reader, as an analyst would. It implements sinktest.Reader.
type duckReader struct {
	db  *sql.DB
	dir string // the table directory
}

func newDuckReader(t testing.TB, dir string) *duckReader {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return &duckReader{db: db, dir: dir}
}

// from is the FROM clause over every data file of the table, with the
// partition columns dt and hour kept as strings.
func (r *duckReader) from() string {
	glob := strings.ReplaceAll(filepath.ToSlash(r.dir)+"/**/*.parquet", "'", "''")
	return "read_parquet('" + glob + "', hive_partitioning = true, hive_types_autocast = false)"
}

// empty reports whether the table has no data file yet; DuckDB refuses a
// glob that matches nothing.
func (r *duckReader) empty() (bool, error) {
	found := false
	err := filepath.WalkDir(r.dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(d.Name(), ".parquet") {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	return !found, err
}

// Count returns the number of rows in the table.
func (r *duckReader) Count(ctx context.Context) (int, error) {
	if empty, err := r.empty(); err != nil || empty {
		return 0, err
	}
	var n int
	err := r.db.QueryRowContext(ctx, "SELECT count(*) FROM "+r.from()).Scan(&n)
	return n, err
}

// Has reports whether a row with the envelope id exists.
func (r *duckReader) Has(ctx context.Context, id string) (bool, error) {
	if empty, err := r.empty(); err != nil || empty {
		return false, err
	}
	var n int
	err := r.db.QueryRowContext(ctx, "SELECT count(*) FROM "+r.from()+" WHERE id = ?", id).Scan(&n)
	return n > 0, err
}

// strings runs a query whose rows are one string column.
func (r *duckReader) strings(t testing.TB, query string, args ...any) []string {
	t.Helper()
	rows, err := r.db.QueryContext(context.Background(), query, args...)
	if err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
