package cdc

import (
	"fmt"
	"path"
	"strings"
)

// Filter selects what a source captures. Table patterns are
// "schema.table" globs (path.Match syntax: * ? [..]); column patterns are
// "schema.table.column" globs. For MySQL the schema is the database.
// The zero Filter captures every column of every table.
type Filter struct {
	// IncludeTables, when not empty, captures only the matching tables.
	IncludeTables []string `yaml:"include_tables"`
	// ExcludeTables drops matching tables even if included.
	ExcludeTables []string `yaml:"exclude_tables"`
	// ExcludeColumns leaves matching columns out of the row records.
	ExcludeColumns []string `yaml:"exclude_columns"`
	// MaskColumns replaces matching columns' values by the hex SHA-256 of
	// their text (a string field): still joinable, no longer readable.
	// Primary key columns are masked in the row but not in the message key.
	MaskColumns []string `yaml:"mask_columns"`
}

// Validate reports the first malformed pattern.
func (f *Filter) Validate() error {
	check := func(field string, pats []string, dots int) error {
		for _, p := range pats {
			if _, err := path.Match(p, ""); err != nil || strings.Count(p, ".") < dots {
				return fmt.Errorf("%w: %s pattern %q: want %s", ErrConfig, field, p,
					map[int]string{1: "schema.table", 2: "schema.table.column"}[dots])
			}
		}
		return nil
	}
	for _, c := range []struct {
		field string
		pats  []string
		dots  int
	}{
		{"include_tables", f.IncludeTables, 1}, {"exclude_tables", f.ExcludeTables, 1},
		{"exclude_columns", f.ExcludeColumns, 2}, {"mask_columns", f.MaskColumns, 2},
	} {
		if err := check(c.field, c.pats, c.dots); err != nil {
			return err
		}
	}
	return nil
}

func matchAny(pats []string, name string) bool {
	for _, p := range pats {
		if ok, _ := path.Match(p, name); ok {
			return true
		}
	}
	return false
}

// IncludesTable reports whether changes of schema.table are captured.
func (f *Filter) IncludesTable(schemaName, table string) bool {
	n := schemaName + "." + table
	if len(f.IncludeTables) > 0 && !matchAny(f.IncludeTables, n) {
		return false
	}
	return !matchAny(f.ExcludeTables, n)
}

// ExcludesColumn reports whether a column is left out of the records.
func (f *Filter) ExcludesColumn(t *Table, column string) bool {
	return matchAny(f.ExcludeColumns, t.Schema+"."+t.Name+"."+column)
}

// MasksColumn reports whether a column's values are masked.
func (f *Filter) MasksColumn(t *Table, column string) bool {
	return matchAny(f.MaskColumns, t.Schema+"."+t.Name+"."+column)
}
