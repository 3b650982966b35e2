package hive

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// DDLFile is the name of the file in the table directory that holds the
// statements registering the table and its partitions in a Hive metastore.
const DDLFile = "_hive.sql"

// writeDDL rewrites _hive.sql from the partition directories on disk, so it
// also lists partitions written by other sinks sharing the table.
func (s *Sink) writeDDL() error {
	parts, err := s.scanPartitions()
	if err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("-- Registers the slate audit table and its partitions. Rewritten whenever a\n")
	b.WriteString("-- partition directory appears; every statement is safe to run again.\n")
	fmt.Fprintf(&b, "CREATE EXTERNAL TABLE IF NOT EXISTS %s (\n", quoteIdent(s.table))
	for i, c := range columns {
		sep := ","
		if i == len(columns)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "  %s %s%s\n", quoteIdent(c[0]), c[1], sep)
	}
	b.WriteString(")\nPARTITIONED BY (`dt` STRING, `hour` STRING)\nSTORED AS PARQUET\n")
	fmt.Fprintf(&b, "LOCATION %s;\n", quoteString(s.location))
	for _, p := range parts {
		fmt.Fprintf(&b, "ALTER TABLE %s ADD IF NOT EXISTS PARTITION (`dt`=%s, `hour`=%s);\n",
			quoteIdent(s.table), quoteString(p.dt), quoteString(p.hour))
	}
	if err := writeFileAtomic(s.root, DDLFile, func(f *os.File) error {
		_, err := f.WriteString(b.String())
		return err
	}); err != nil {
		return fmt.Errorf("hive: write %s: %w", DDLFile, err)
	}
	for _, p := range parts {
		s.parts[p] = true
	}
	return nil
}

// scanPartitions lists the dt=*/hour=* directories of the table, sorted.
func (s *Sink) scanPartitions() ([]partition, error) {
	dts, err := filepath.Glob(filepath.Join(s.root, "dt=*", "hour=*"))
	if err != nil {
		return nil, fmt.Errorf("hive: list partitions: %w", err)
	}
	parts := make([]partition, 0, len(dts))
	for _, d := range dts {
		hour := strings.TrimPrefix(filepath.Base(d), "hour=")
		dt := strings.TrimPrefix(filepath.Base(filepath.Dir(d)), "dt=")
		if fi, err := os.Stat(d); err != nil || !fi.IsDir() {
			continue
		}
		parts = append(parts, partition{dt: dt, hour: hour})
	}
	slices.SortFunc(parts, func(a, b partition) int {
		if c := strings.Compare(a.dt, b.dt); c != 0 {
			return c
		}
		return strings.Compare(a.hour, b.hour)
	})
	return parts, nil
}

func quoteIdent(s string) string { return "`" + strings.ReplaceAll(s, "`", "``") + "`" }

func quoteString(s string) string {
	r := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
	return "'" + r.Replace(s) + "'"
}
