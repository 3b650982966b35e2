package cdc_test

import (
	"context"
	"errors"
	"testing"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/schema"
)

func TestFilterTables(t *testing.T) {
	f := cdc.Filter{IncludeTables: []string{"public.*", "audit.log"}, ExcludeTables: []string{"public.tmp_*"}}
	tests := []struct {
		schema, table string
		want          bool
	}{
		{"public", "budget", true},
		{"public", "tmp_x", false},
		{"audit", "log", true},
		{"audit", "other", false},
	}
	for _, tt := range tests {
		t.Run(tt.schema+"."+tt.table, func(t *testing.T) {
			if got := f.IncludesTable(tt.schema, tt.table); got != tt.want {
				t.Errorf("IncludesTable = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestFilterValidate(t *testing.T) {
	tests := []struct {
		name string
		f    cdc.Filter
		ok   bool
	}{
		{"zero", cdc.Filter{}, true},
		{"good", cdc.Filter{IncludeTables: []string{"s.t"}, MaskColumns: []string{"s.t.c"}}, true},
		{"table without schema", cdc.Filter{ExcludeTables: []string{"t"}}, false},
		{"column without table", cdc.Filter{ExcludeColumns: []string{"t.c"}}, false},
		{"bad glob", cdc.Filter{IncludeTables: []string{"s.[t"}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.f.Validate()
			if (err == nil) != tt.ok || (err != nil && !errors.Is(err, cdc.ErrConfig)) {
				t.Fatalf("Validate = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// A table that gains a column registers a new version of the same
// subject; old and new records both decode.
func TestChangedTableIsANewSchemaVersion(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	enc := cdc.NewEncoder(reg, nil)
	v1 := &cdc.Table{DB: "fin", Schema: "public", Name: "budget", Columns: []cdc.Column{{Name: "id", Kind: cdc.KindLong, Key: true}}}
	v2 := &cdc.Table{DB: "fin", Schema: "public", Name: "budget", Columns: []cdc.Column{
		{Name: "id", Kind: cdc.KindLong, Key: true}, {Name: "amount", Kind: cdc.KindString}}}
	for i, tc := range []struct {
		t    *cdc.Table
		vals []any
	}{{v1, []any{"1"}}, {v2, []any{"1", "9.99"}}} {
		ev, err := enc.Encode(ctx, &cdc.Change{Op: schema.OpCreate, Table: tc.t, After: tc.vals, ID: string(rune('a' + i))})
		if err != nil {
			t.Fatal(err)
		}
		var rec map[string]any
		if err := schema.DecodeData(ctx, reg, ev.Envelope.Data, &rec); err != nil {
			t.Fatal(err)
		}
	}
	versions, err := reg.Client().GetVersions(ctx, cdc.RecordName(v1))
	if err != nil {
		t.Fatal(err)
	}
	if len(versions) != 2 {
		t.Fatalf("versions of %s = %v, want 2", cdc.RecordName(v1), versions)
	}
}

func TestKeys(t *testing.T) {
	enc := cdc.NewEncoder(nil, nil)
	tbl := &cdc.Table{Schema: "s", Name: "t", Columns: []cdc.Column{
		{Name: "a", Key: true}, {Name: "b"}, {Name: "c", Key: true}}}
	tests := []struct {
		name string
		vals []any
		want string
		err  bool
	}{
		{"composite", []any{"1", "x", "z"}, `["1","z"]`, false},
		{"null key", []any{nil, "x", "z"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := enc.Key(tbl, tt.vals)
			if (err != nil) != tt.err || got != tt.want {
				t.Fatalf("Key = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}
