package cdc

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/slatehq/slate/schema"
)

// referenceRecord builds the change record as the map hamba/avro encodes
// against the registered schema: what appendChange must match byte for
// byte.
func referenceRecord(t *testing.T, tc *tableCodec, ch *Change) map[string]any {
	t.Helper()
	row := func(vals []any) any {
		if vals == nil {
			return nil
		}
		m := make(map[string]any, len(tc.cols))
		for j, i := range tc.cols {
			v := vals[i]
			switch {
			case v == nil:
				m[tc.names[j]] = nil
			case tc.masked[j]:
				sum := sha256.Sum256([]byte(text(v)))
				m[tc.names[j]] = hex.EncodeToString(sum[:])
			default:
				c, err := convert(ch.Table.Columns[i].Kind, v)
				if err != nil {
					t.Fatal(err)
				}
				m[tc.names[j]] = c
			}
		}
		return map[string]any{tc.rowName: m}
	}
	s := ch.Source
	src := map[string]any{
		"connector": s.Connector, "db": ch.Table.DB, "schema": ch.Table.Schema, "table": ch.Table.Name,
		"lsn": s.LSN, "txid": s.TxID, "tx_order": s.TxOrder, "snapshot": s.Snapshot,
		"ts": s.Time.UTC(), "binlog_file": nil, "binlog_pos": nil, "gtid": nil,
		"unchanged_toast": ch.Unchanged,
	}
	if ch.Unchanged == nil {
		src["unchanged_toast"] = []string{}
	}
	if s.File != "" {
		src["binlog_file"] = s.File
		src["binlog_pos"] = s.Pos
	}
	if s.GTID != "" {
		src["gtid"] = s.GTID
	}
	return map[string]any{"before": row(ch.Before), "after": row(ch.After), "source": src}
}

func TestAppendChangeMatchesHamba(t *testing.T) {
	f := &Filter{ExcludeColumns: []string{"public.acct.secret"}, MaskColumns: []string{"public.acct.email"}}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	enc := NewEncoder(nil, f)
	tbl := &Table{DB: "fin", Schema: "public", Name: "acct", Columns: []Column{
		{Name: "id", Kind: KindLong, Key: true},
		{Name: "name", Kind: KindString},
		{Name: "ok", Kind: KindBool},
		{Name: "at", Kind: KindTimestamp},
		{Name: "secret", Kind: KindString},
		{Name: "email", Kind: KindString},
		{Name: "amount", Kind: KindString},
	}}
	ts := time.Date(2026, 3, 4, 5, 6, 7, 891234000, time.UTC)
	row := []any{"42", "Ünïcode name", "t", "2026-03-04 05:06:07.891234+00", "pw", "a@b.c", "12.50"}
	nulls := []any{"43", nil, nil, "infinity", nil, nil, nil}
	typed := []any{int64(-7), []byte("bytes"), true, ts, "pw", "x@y.z", "-0.01"}
	tests := []struct {
		name string
		ch   Change
	}{
		{"insert", Change{Op: schema.OpCreate, After: row,
			Source: SourceInfo{Connector: "postgresql", LSN: 1 << 40, TxID: 77, TxOrder: 1, Time: ts}}},
		{"update with unchanged toast", Change{Op: schema.OpUpdate, Before: nulls, After: row, Unchanged: []string{"name", "amount"},
			Source: SourceInfo{Connector: "postgresql", LSN: 99, TxID: 1, TxOrder: 3, Time: ts}}},
		{"delete, mysql position and gtid", Change{Op: schema.OpDelete, Before: typed,
			Source: SourceInfo{Connector: "mysql", LSN: 123456, TxID: 5, TxOrder: 2, Time: ts, File: "mysql-bin.000003", Pos: 4711, GTID: "0-1-99"}}},
		{"snapshot, zero time", Change{Op: schema.OpSnapshot, After: typed, Source: SourceInfo{Connector: "postgresql", Snapshot: true}}},
		{"truncate", Change{Op: schema.OpTruncate, Source: SourceInfo{Connector: "postgresql", LSN: 5, Time: ts}}},
	}
	api := avro.Config{}.Freeze()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := tt.ch
			ch.Table = tbl
			tc, err := enc.codec(tbl)
			if err != nil {
				t.Fatal(err)
			}
			got, err := tc.appendChange(nil, &ch)
			if err != nil {
				t.Fatal(err)
			}
			want, err := api.Marshal(tc.schema, referenceRecord(t, tc, &ch))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("appendChange = %x\nhamba/avro   = %x", got, want)
			}
		})
	}
}

func BenchmarkEncode(b *testing.B) {
	enc := NewEncoder(nil, nil)
	tbl := &Table{DB: "fin", Schema: "public", Name: "acct", Columns: []Column{
		{Name: "id", Kind: KindLong, Key: true}, {Name: "n", Kind: KindLong}, {Name: "s", Kind: KindString}, {Name: "at", Kind: KindTimestamp},
	}}
	ch := &Change{Op: schema.OpUpdate, Table: tbl, Before: []any{"1", "2", "abc", "2026-03-04 05:06:07.891234+00"},
		After: []any{"1", "3", "abd", "2026-03-04 05:06:08+00"}, Source: SourceInfo{Connector: "postgresql", LSN: 1, Time: time.Now()}}
	tc, err := enc.codec(tbl)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := tc.appendChange(nil, ch); err != nil {
			b.Fatal(err)
		}
	}
}

// A masked column whose new value the source did not send holds the
// placeholder as is: its hash would pass for a real value.
func TestUnchangedMaskedColumnKeepsPlaceholder(t *testing.T) {
	f := &Filter{MaskColumns: []string{"public.acct.email"}}
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	tbl := &Table{DB: "fin", Schema: "public", Name: "acct", Columns: []Column{
		{Name: "id", Kind: KindLong, Key: true}, {Name: "email", Kind: KindString},
	}}
	tc, err := NewEncoder(nil, f).codec(tbl)
	if err != nil {
		t.Fatal(err)
	}
	const placeholder = "__debezium_unavailable_value"
	ch := &Change{Op: schema.OpUpdate, Table: tbl, Before: []any{"1", placeholder}, After: []any{"1", placeholder},
		Unchanged: []string{"email"}, Source: SourceInfo{Connector: "postgresql", Time: time.Now()}}
	b, err := tc.appendChange(nil, ch)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	if err := avro.Unmarshal(tc.schema, b, &got); err != nil {
		t.Fatal(err)
	}
	email := func(img string) any { return got[img].(map[string]any)[tc.rowName].(map[string]any)["email"] }
	if email("after") != placeholder {
		t.Errorf("after.email = %v, want the placeholder", email("after"))
	}
	sum := sha256.Sum256([]byte(placeholder))
	if email("before") != hex.EncodeToString(sum[:]) {
		t.Errorf("before.email = %v, want masked", email("before"))
	}
}
