package hive

import (
	"slices"
	"testing"

	"github.com/parquet-go/parquet-go"
)

func TestFileNameRoundTrip(t *testing.T) {
	tests := []struct {
		topic       string
		partition   int32
		first, last int64
		name        string
	}{
		{"studio.title.changes", 0, 0, 9, "part-studio.title.changes-0-0-9.parquet"},
		{"my-topic-7", 12, 100, 250, "part-my-topic-7-12-100-250.parquet"},
		{"a/b c", 1, 5, 5, "part-a_b_c-1-5-5.parquet"},
		{"", 3, 1, 2, "part-_-3-1-2.parquet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name := fileName(tt.topic, tt.partition, tt.first, tt.last)
			if name != tt.name {
				t.Fatalf("fileName = %q, want %q", name, tt.name)
			}
			f, ok := parseFileName(name)
			if !ok || f.topic != fileTopic(tt.topic) || f.partition != tt.partition || f.first != tt.first || f.last != tt.last {
				t.Fatalf("parseFileName(%q) = %+v, %v", name, f, ok)
			}
		})
	}
	for _, bad := range []string{
		"_hive.sql", ".tmp-part-t-0-1-2.parquet-123", "part-t-0-1.parquet", "part-t-0-9-1.parquet",
		"part-t-x-1-2.parquet", "part-t-0-1-2.parquet.bak",
	} {
		if f, ok := parseFileName(bad); ok {
			t.Errorf("parseFileName(%q) = %+v, want no match", bad, f)
		}
	}
}

// TestColumnsMatchRow keeps the _hive.sql column list in step with the
// Parquet schema of row.
func TestColumnsMatchRow(t *testing.T) {
	var got, want []string
	for _, f := range parquet.SchemaOf(row{}).Fields() {
		got = append(got, f.Name())
	}
	for _, c := range columns {
		want = append(want, c[0])
	}
	if !slices.Equal(got, want) {
		t.Fatalf("parquet columns %q, DDL columns %q", got, want)
	}
}
