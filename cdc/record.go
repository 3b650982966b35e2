package cdc

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/hamba/avro/v2"

	"github.com/slatehq/slate/schema"
)

// Kind is the Avro type a column's values are published as.
type Kind int

// The column kinds. Integers become long, booleans boolean, timestamps
// timestamp-micros; text, numeric (kept exact) and every other type string.
// Every column is nullable.
const (
	KindString Kind = iota
	KindLong
	KindBool
	KindTimestamp
)

// Column is one column of a captured table.
type Column struct {
	Name string
	Kind Kind
	Key  bool // part of the primary key
}

// Table describes a captured table as the source saw it last. A change of
// its columns makes a new row schema, registered as a new version.
type Table struct {
	DB      string // database (PostgreSQL) or server name (MySQL)
	Schema  string // PostgreSQL schema or MySQL database
	Name    string
	Columns []Column
}

// QualifiedName returns schema.table.
func (t *Table) QualifiedName() string { return t.Schema + "." + t.Name }

// SourceInfo is the source block of a change record (Debezium's source).
type SourceInfo struct {
	Connector string    // "postgresql" or "mysql"
	LSN       int64     // PostgreSQL LSN of the change, or the binlog-derived sequence
	TxID      int64     // transaction id (PostgreSQL xid; MySQL: a per-process transaction counter)
	TxOrder   int64     // position of the change inside its transaction, from 1
	Snapshot  bool      // read by the initial snapshot
	Time      time.Time // commit time at the source
	File      string    // MySQL binlog file
	Pos       int64     // MySQL binlog offset
	GTID      string    // MySQL GTID, when the server has one
}

// Change is one row change before it is encoded. Before and After hold one
// value per column of Table (nil = SQL NULL), or are nil when absent.
// Values are text as the source sent it, or Go values (int64, bool,
// time.Time, []byte, string, ...) converted by Kind.
type Change struct {
	Op     schema.Op
	Table  *Table
	Before []any
	After  []any
	// Unchanged names columns whose new value the source did not send
	// (PostgreSQL unchanged TOAST without a full old row); After holds a
	// placeholder for them (never null, which a sink would store), written
	// as is also where the column is masked, and they are listed in
	// source.unchanged_toast.
	Unchanged []string
	Source    SourceInfo
	// Sequence is the envelope sequence: it orders the change after every
	// change committed before it (and after the snapshot), and after the
	// changes before it in its own transaction. Zero means Source.LSN.
	Sequence int64
	// ID seeds the envelope id: the same ID always gives the same envelope
	// id, so a replay after a restart is an exact duplicate that dedupe
	// drops. Sources build it from their stream position.
	ID string
}

// idSpace is the UUIDv5 namespace of CDC envelope ids.
var idSpace = uuid.MustParse("5c0f3a49-6a53-4f8c-9b1e-2f3b2d1c9e77")

// Encoder turns changes into envelopes with Avro data: one record schema
// per table and column set, registered under its full name. It applies a
// [Filter]'s column rules. It is safe for concurrent use.
type Encoder struct {
	reg    schema.Registry
	filter *Filter
	prefix string // see WithTopicPrefix

	mu      sync.Mutex
	tables  map[string]*tableCodec // key: table signature
	byTable map[*Table]*tableCodec // tables seen, to skip the signature
}

// maxByTable bounds Encoder.byTable; sources make a new Table per schema
// change, so it is only cleared on a long-running source with many.
const maxByTable = 4096

type tableCodec struct {
	schema  avro.Schema // the parsed schema, which checks the text
	text    string      // the schema as registered
	subject string
	rowName string   // full Avro name of the Row record
	cols    []int    // indexes of the table's columns that are published
	names   []string // Avro field names of cols
	masked  []bool

	once sync.Mutex
	id   int    // registry id, once registered
	ref  string // dataschema reference
}

// encode is schema.EncodeData with the registration done once (rendering
// the schema to register it again per row would cost more than the row)
// and of the schema text with its defaults, and the record written
// straight to Avro binary (appendChange) instead of through maps.
func (tc *tableCodec) encode(ctx context.Context, reg schema.Registry, ch *Change) ([]byte, string, error) {
	tc.once.Lock()
	id, ref := tc.id, tc.ref
	tc.once.Unlock()
	if ref == "" {
		// Register the schema as written, defaults included (the parsed
		// schema's canonical form drops them, and without the null
		// defaults an added column would not be a compatible change).
		var err error
		if id, err = reg.Register(ctx, tc.subject, tc.text); err != nil {
			return nil, "", err
		}
		ref = fmt.Sprintf("%s/%d", tc.subject, id)
		tc.once.Lock()
		tc.id, tc.ref = id, ref
		tc.once.Unlock()
	}
	b, err := tc.appendChange(schema.Frame(make([]byte, 0, 256), id, nil), ch)
	if err != nil {
		return nil, "", err
	}
	return b, ref, nil
}

// NewEncoder returns an encoder registering row schemas in reg. f may be
// nil (publish every column). Its events go to [TopicIn] of the prefix of
// [WithTopicPrefix].
func NewEncoder(reg schema.Registry, f *Filter, opts ...Option) *Encoder {
	if f == nil {
		f = &Filter{}
	}
	o := newOptions(opts)
	return &Encoder{reg: reg, filter: f, prefix: o.prefix, tables: make(map[string]*tableCodec), byTable: make(map[*Table]*tableCodec)}
}

// Filter returns the filter the encoder applies.
func (e *Encoder) Filter() *Filter { return e.filter }

func signature(t *Table) string {
	var b strings.Builder
	b.WriteString(t.DB + "\x00" + t.Schema + "\x00" + t.Name)
	for _, c := range t.Columns {
		fmt.Fprintf(&b, "\x00%s:%d:%t", c.Name, c.Kind, c.Key)
	}
	return b.String()
}

// RecordName returns the full Avro name of a table's change record, which
// is also its registry subject: studio.cdc.<db>.<schema>.<table>.Change,
// each part reduced to Avro name characters.
func RecordName(t *Table) string {
	return "studio.cdc." + avroName(t.DB) + "." + avroName(t.Schema) + "." + avroName(t.Name) + ".Change"
}

// codec returns the codec of t. A Table must not change once encoded
// (sources make a new one for a new column set): codecs are cached by
// pointer as well as by signature.
func (e *Encoder) codec(t *Table) (*tableCodec, error) {
	e.mu.Lock()
	tc, ok := e.byTable[t]
	e.mu.Unlock()
	if ok {
		return tc, nil
	}
	sig := signature(t)
	e.mu.Lock()
	tc, ok = e.tables[sig]
	if ok {
		e.remember(t, tc)
	}
	e.mu.Unlock()
	if ok {
		return tc, nil
	}
	tc = &tableCodec{subject: RecordName(t)}
	ns := strings.TrimSuffix(tc.subject, ".Change")
	tc.rowName = ns + ".Row"
	var fields []string
	seen := map[string]bool{}
	for i, c := range t.Columns {
		if e.filter.ExcludesColumn(t, c.Name) {
			continue
		}
		name := avroName(c.Name)
		for seen[name] {
			name += "_"
		}
		seen[name] = true
		masked := e.filter.MasksColumn(t, c.Name)
		typ := `"string"`
		if !masked {
			switch c.Kind {
			case KindLong:
				typ = `"long"`
			case KindBool:
				typ = `"boolean"`
			case KindTimestamp:
				typ = `{"type":"long","logicalType":"timestamp-micros"}`
			}
		}
		doc, _ := json.Marshal(c.Name)
		fields = append(fields, fmt.Sprintf(`{"name":%q,"type":["null",%s],"default":null,"doc":%s}`, name, typ, doc))
		tc.cols = append(tc.cols, i)
		tc.names = append(tc.names, name)
		tc.masked = append(tc.masked, masked)
	}
	text := fmt.Sprintf(`{"type":"record","name":"Change","namespace":%q,"fields":[
{"name":"before","type":["null",{"type":"record","name":"Row","fields":[%s]}],"default":null},
{"name":"after","type":["null","Row"],"default":null},
{"name":"source","type":%s}]}`, ns, strings.Join(fields, ","), sourceSchema)
	s, err := avro.Parse(text)
	if err != nil {
		return nil, fmt.Errorf("cdc: row schema of %s: %w", t.QualifiedName(), err)
	}
	tc.schema, tc.text = s, text
	e.mu.Lock()
	if prev, ok := e.tables[sig]; ok {
		tc = prev // another goroutine made it first
	} else {
		e.tables[sig] = tc
	}
	e.remember(t, tc)
	e.mu.Unlock()
	return tc, nil
}

// remember caches tc for t; e.mu is held.
func (e *Encoder) remember(t *Table, tc *tableCodec) {
	if len(e.byTable) >= maxByTable {
		clear(e.byTable)
	}
	e.byTable[t] = tc
}

const sourceSchema = `{"type":"record","name":"Source","namespace":"slate.cdc","fields":[
{"name":"connector","type":"string"},
{"name":"db","type":"string"},
{"name":"schema","type":"string"},
{"name":"table","type":"string"},
{"name":"lsn","type":"long"},
{"name":"txid","type":"long"},
{"name":"tx_order","type":"long","default":0},
{"name":"snapshot","type":"boolean"},
{"name":"ts","type":{"type":"long","logicalType":"timestamp-micros"}},
{"name":"binlog_file","type":["null","string"],"default":null},
{"name":"binlog_pos","type":["null","long"],"default":null},
{"name":"gtid","type":["null","string"],"default":null},
{"name":"unchanged_toast","type":{"type":"array","items":"string"},"default":[]}]}`

// Encode returns the event for ch: topic <prefix>cdc.<db>.<schema>.<table>,
// subject the primary key (one column: its value; several: a JSON array
// of the values as strings), sequence ch.Sequence (or the source LSN when
// it is zero), data the Avro change record in the Confluent wire format.
func (e *Encoder) Encode(ctx context.Context, ch *Change) (Event, error) {
	t := ch.Table
	tc, err := e.codec(t)
	if err != nil {
		return Event{}, err
	}
	key := ch.After
	if key == nil {
		key = ch.Before
	}
	subject, err := keyOf(t, key)
	if err != nil && ch.Op != schema.OpTruncate {
		return Event{}, err
	}
	data, ref, err := tc.encode(ctx, e.reg, ch)
	if err != nil {
		return Event{}, err
	}
	connector := "pg"
	if ch.Source.Connector == "mysql" {
		connector = "mysql"
	}
	env := schema.Envelope{
		ID:              uuid.NewSHA1(idSpace, []byte(ch.ID)).String(),
		Source:          SourceURI(connector, t.DB, t.Schema, t.Name),
		SpecVersion:     schema.SpecVersion,
		Type:            ch.Op,
		EntityType:      t.Name,
		Subject:         subject,
		Time:            ch.Source.Time.UTC().Truncate(time.Microsecond),
		Sequence:        ch.Sequence,
		DataSchema:      ref,
		DataContentType: schema.ContentTypeAvro,
		Data:            data,
		Unchanged:       ch.Unchanged,
	}
	if env.Sequence == 0 {
		env.Sequence = ch.Source.LSN
	}
	if env.Time.IsZero() {
		env.Time = time.Now().UTC().Truncate(time.Microsecond)
	}
	return Event{Topic: TopicIn(e.prefix, t.DB, t.Schema, t.Name), Envelope: env}, nil
}

// appendChange appends the Avro binary encoding of ch as the table's
// change record: before and after (unions of null and Row), then source.
func (tc *tableCodec) appendChange(b []byte, ch *Change) ([]byte, error) {
	for n, vals := range [2][]any{ch.Before, ch.After} {
		if vals == nil {
			b = appendLong(b, 0)
			continue
		}
		b = appendLong(b, 1)
		var unchanged []string
		if n == 1 {
			unchanged = ch.Unchanged
		}
		var err error
		if b, err = tc.appendRow(b, ch.Table, vals, unchanged); err != nil {
			return nil, err
		}
	}
	s := ch.Source
	for _, str := range [4]string{s.Connector, ch.Table.DB, ch.Table.Schema, ch.Table.Name} {
		b = appendString(b, str)
	}
	b = appendLong(b, s.LSN)
	b = appendLong(b, s.TxID)
	b = appendLong(b, s.TxOrder)
	b = appendBool(b, s.Snapshot)
	b = appendLong(b, s.Time.UnixMicro())
	if s.File != "" {
		b = appendString(appendLong(b, 1), s.File)
		b = appendLong(appendLong(b, 1), s.Pos)
	} else {
		b = appendLong(appendLong(b, 0), 0)
	}
	if s.GTID != "" {
		b = appendString(appendLong(b, 1), s.GTID)
	} else {
		b = appendLong(b, 0)
	}
	if n := len(ch.Unchanged); n > 0 {
		// One block, written as hamba/avro does: a negative count, then
		// the block's size in bytes.
		var items []byte
		for _, c := range ch.Unchanged {
			items = appendString(items, c)
		}
		b = append(appendLong(appendLong(b, -int64(n)), int64(len(items))), items...)
	}
	return appendLong(b, 0), nil
}

// appendRow appends a Row record: per published column a union of null
// and the column's type. Masked columns hash their value, except those
// named in unchanged, which hold a placeholder, not data.
func (tc *tableCodec) appendRow(b []byte, t *Table, vals []any, unchanged []string) ([]byte, error) {
	if len(vals) != len(t.Columns) {
		return nil, fmt.Errorf("cdc: %s: %d values for %d columns", t.QualifiedName(), len(vals), len(t.Columns))
	}
	for j, i := range tc.cols {
		v := vals[i]
		if v == nil {
			b = appendLong(b, 0)
			continue
		}
		if tc.masked[j] && len(unchanged) > 0 && slices.Contains(unchanged, t.Columns[i].Name) {
			b = appendString(appendLong(b, 1), text(v))
			continue
		}
		if tc.masked[j] {
			sum := sha256.Sum256([]byte(text(v)))
			b = appendString(appendLong(b, 1), hex.EncodeToString(sum[:]))
			continue
		}
		c, err := convert(t.Columns[i].Kind, v)
		if err != nil {
			return nil, fmt.Errorf("cdc: %s.%s: %w", t.QualifiedName(), t.Columns[i].Name, err)
		}
		switch x := c.(type) {
		case nil:
			b = appendLong(b, 0)
		case int64:
			b = appendLong(appendLong(b, 1), x)
		case bool:
			b = appendBool(appendLong(b, 1), x)
		case time.Time:
			b = appendLong(appendLong(b, 1), x.UnixMicro())
		case string:
			b = appendString(appendLong(b, 1), x)
		default:
			return nil, fmt.Errorf("cdc: %s.%s: unexpected %T", t.QualifiedName(), t.Columns[i].Name, c)
		}
	}
	return b, nil
}

// appendLong appends an Avro long (zig-zag varint, as binary.AppendVarint).
func appendLong(b []byte, v int64) []byte { return binary.AppendVarint(b, v) }

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func appendString(b []byte, s string) []byte { return append(appendLong(b, int64(len(s))), s...) }

// keyOf returns the primary key of a row as the envelope subject.
func keyOf(t *Table, vals []any) (string, error) {
	var parts []string
	for i, c := range t.Columns {
		if !c.Key {
			continue
		}
		if i >= len(vals) || vals[i] == nil {
			return "", fmt.Errorf("cdc: %s: key column %s is null or missing", t.QualifiedName(), c.Name)
		}
		parts = append(parts, text(vals[i]))
	}
	switch len(parts) {
	case 0:
		return "", fmt.Errorf("cdc: %s has no primary key", t.QualifiedName())
	case 1:
		return parts[0], nil
	}
	b, _ := json.Marshal(parts)
	return string(b), nil
}

// text renders a value as the source would print it.
func text(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

// timeLayouts are tried in order; a layout matches only the whole text,
// so the order is for speed: PostgreSQL's UTC sessions print "+00" first.
var timeLayouts = []string{
	"2006-01-02 15:04:05.999999999Z07",
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02 15:04:05.999999999Z07:00:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999Z07:00",
	"2006-01-02",
}

func convert(k Kind, v any) (any, error) {
	switch k {
	case KindLong:
		switch x := v.(type) {
		case int64:
			return x, nil
		case int:
			return int64(x), nil
		case int8:
			return int64(x), nil
		case int16:
			return int64(x), nil
		case int32:
			return int64(x), nil
		case uint8:
			return int64(x), nil
		case uint16:
			return int64(x), nil
		case uint32:
			return int64(x), nil
		case uint64:
			return int64(x), nil
		}
		n, err := strconv.ParseInt(text(v), 10, 64)
		if err != nil {
			return nil, fmt.Errorf("not an integer: %w", err)
		}
		return n, nil
	case KindBool:
		switch x := v.(type) {
		case bool:
			return x, nil
		case int64:
			return x != 0, nil
		case int8:
			return x != 0, nil
		}
		switch s := text(v); s {
		case "t", "true", "1", "TRUE":
			return true, nil
		case "f", "false", "0", "FALSE":
			return false, nil
		default:
			return nil, fmt.Errorf("not a boolean: %q", s)
		}
	case KindTimestamp:
		if x, ok := v.(time.Time); ok {
			return x.UTC(), nil
		}
		s := text(v)
		switch s {
		case "infinity", "-infinity", "0000-00-00 00:00:00":
			return nil, nil
		}
		for _, l := range timeLayouts {
			if ts, err := time.Parse(l, s); err == nil {
				return ts.UTC(), nil
			}
		}
		return nil, fmt.Errorf("not a timestamp: %q", s)
	}
	return text(v), nil
}

// Key returns the message key of a row of t: its primary key value, or a
// JSON array of the values as strings when the key has several columns.
func (e *Encoder) Key(t *Table, vals []any) (string, error) { return keyOf(t, vals) }

// KeyChanged reports whether an update from before to after moves the row
// to another primary key. Sources then emit a DELETE of the old key and a
// CREATE of the new one (as Debezium does), so that a sink keyed by the
// primary key drops the old key's document instead of keeping it. It is
// false when either image lacks a key value (an update without a before
// image).
func KeyChanged(t *Table, before, after []any) bool {
	if before == nil || after == nil {
		return false
	}
	old, err := keyOf(t, before)
	if err != nil {
		return false
	}
	new, err := keyOf(t, after)
	return err == nil && old != new
}
