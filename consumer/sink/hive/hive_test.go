package hive_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/consumer/sink/hive"
	"github.com/slatehq/slate/consumer/sink/sinktest"
	"github.com/slatehq/slate/schema"
)

func newSink(t testing.TB, opts ...hive.Option) (*hive.Sink, *duckReader) {
	t.Helper()
	s, err := hive.New(t.TempDir(), "audit", opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s, newDuckReader(t, s.Dir())
}

// at returns events of topic/partition at offsets from first, with event
// time t.
func at(topic string, partition int32, first int64, n int, t time.Time) []sink.Event {
	evs := sinktest.Events(partition, first, n)
	for i := range evs {
		evs[i].Topic = topic
		evs[i].Time = t
	}
	return evs
}

// files lists every file under dir, relative, slash-separated, sorted.
func files(t testing.TB, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, path)
		out = append(out, filepath.ToSlash(rel))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func mustWrite(t testing.TB, s *hive.Sink, batch []sink.Event) {
	t.Helper()
	if err := s.Write(context.Background(), batch); err != nil {
		t.Fatalf("Write: %v", err)
	}
}

func TestLayout(t *testing.T) {
	s, r := newSink(t)
	h13 := time.Date(2024, 5, 1, 13, 59, 59, 999_000_000, time.UTC)
	h14 := h13.Add(time.Millisecond) // the next hour
	// An event time in another zone is partitioned by its UTC hour.
	nextDay := time.Date(2024, 5, 1, 22, 30, 0, 0, time.FixedZone("UTC-3", -3*3600))

	var batch []sink.Event
	batch = append(batch, at("studio.title.materialized", 0, 10, 3, h13)...)
	batch = append(batch, at("studio.title.materialized", 0, 13, 2, h14)...)
	batch = append(batch, at("studio.title.materialized", 1, 7, 1, h13)...)
	batch = append(batch, at("studio.budget-v2.changes", 0, 100, 2, nextDay)...)
	mustWrite(t, s, batch)

	want := []string{
		"_hive.sql",
		"dt=2024-05-01/hour=13/part-studio.title.materialized-0-10-12.parquet",
		"dt=2024-05-01/hour=13/part-studio.title.materialized-1-7-7.parquet",
		"dt=2024-05-01/hour=14/part-studio.title.materialized-0-13-14.parquet",
		"dt=2024-05-02/hour=01/part-studio.budget-v2.changes-0-100-101.parquet",
	}
	if got := files(t, s.Dir()); !slices.Equal(got, want) {
		t.Fatalf("files:\n got %q\nwant %q", got, want)
	}

	// DuckDB sees the partitions, and each row's coordinates in them.
	got := r.strings(t, "SELECT dt || ' ' || hour || ' ' || kafka_topic || ' ' || kafka_partition || ' ' || kafka_offset FROM "+
		r.from()+" ORDER BY ALL")
	wantRows := []string{
		"2024-05-01 13 studio.title.materialized 0 10",
		"2024-05-01 13 studio.title.materialized 0 11",
		"2024-05-01 13 studio.title.materialized 0 12",
		"2024-05-01 13 studio.title.materialized 1 7",
		"2024-05-01 14 studio.title.materialized 0 13",
		"2024-05-01 14 studio.title.materialized 0 14",
		"2024-05-02 01 studio.budget-v2.changes 0 100",
		"2024-05-02 01 studio.budget-v2.changes 0 101",
	}
	if !slices.Equal(got, wantRows) {
		t.Fatalf("rows:\n got %q\nwant %q", got, wantRows)
	}
}

func TestColumns(t *testing.T) {
	ingested := time.Date(2024, 6, 1, 0, 0, 0, 123_456_789, time.UTC)
	s, r := newSink(t, hive.WithClock(func() time.Time { return ingested }))
	ev := at("t", 3, 42, 1, time.Date(2024, 5, 1, 13, 0, 0, 987_654_321, time.UTC))[0]
	ev.Type = schema.OpDelete
	ev.Sequence = 77
	ev.DataSchema = "studio.title-value/4"
	noData := at("t", 3, 43, 1, ev.Time)[0]
	noData.Data, noData.DataContentType = nil, ""
	mustWrite(t, s, []sink.Event{ev, noData})

	types := r.strings(t, "SELECT column_name || ' ' || column_type FROM (DESCRIBE SELECT * FROM "+r.from()+")")
	wantTypes := []string{
		"id VARCHAR", "source VARCHAR", "specversion VARCHAR", "type VARCHAR", "entitytype VARCHAR",
		"subject VARCHAR", "time TIMESTAMP WITH TIME ZONE", "sequence BIGINT", "traceparent VARCHAR",
		"dataschema VARCHAR", "data VARCHAR", "kafka_topic VARCHAR", "kafka_partition INTEGER",
		"kafka_offset BIGINT", "ingested_at TIMESTAMP WITH TIME ZONE", "dt VARCHAR", "hour VARCHAR",
	}
	if !slices.Equal(types, wantTypes) {
		t.Fatalf("columns:\n got %q\nwant %q", types, wantTypes)
	}

	got := r.strings(t, `SELECT concat_ws('|', id, source, specversion, type, entitytype, subject,
		epoch_us(time), sequence, traceparent, dataschema, coalesce(data, 'NULL'),
		kafka_topic, kafka_partition, kafka_offset, epoch_us(ingested_at)) FROM `+r.from()+` ORDER BY kafka_offset`)
	want := []string{
		strings.Join([]string{ev.ID, ev.Source, "1.0", "DELETE", "title", ev.Subject,
			"1714568400987654", "77", ev.TraceParent, "studio.title-value/4", string(ev.Data),
			"t", "3", "42", "1717200000123456"}, "|"),
		strings.Join([]string{noData.ID, noData.Source, "1.0", "UPDATE", "title", noData.Subject,
			"1714568400987654", "1", noData.TraceParent, "", "NULL",
			"t", "3", "43", "1717200000123456"}, "|"),
	}
	if !slices.Equal(got, want) {
		t.Fatalf("rows:\n got %q\nwant %q", got, want)
	}
}

func TestReplayOverwritesSameFile(t *testing.T) {
	var (
		mu  sync.Mutex
		now = time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s, r := newSink(t, hive.WithClock(clock))
	batch := at("t", 0, 0, 50, time.Date(2024, 5, 1, 13, 0, 0, 0, time.UTC))
	mustWrite(t, s, batch)
	before := files(t, s.Dir())

	mu.Lock()
	now = now.Add(time.Hour)
	mu.Unlock()
	mustWrite(t, s, batch)

	if after := files(t, s.Dir()); !slices.Equal(after, before) {
		t.Fatalf("files after replay %q, want %q", after, before)
	}
	if n, err := r.Count(t.Context()); err != nil || n != len(batch) {
		t.Fatalf("Count = %d, %v; want %d", n, err, len(batch))
	}
	// The replay replaced the file: every row carries its ingestion time.
	got := r.strings(t, "SELECT DISTINCT strftime(ingested_at AT TIME ZONE 'UTC', '%H') FROM "+r.from())
	if !slices.Equal(got, []string{"01"}) {
		t.Fatalf("ingested_at hours = %q, want [01]", got)
	}
}

func TestOverlapMerge(t *testing.T) {
	hour := time.Date(2024, 5, 1, 13, 0, 0, 0, time.UTC)
	evs := at("t", 0, 0, 40, hour)
	other := at("t", 1, 0, 40, hour) // another partition: never merged with partition 0
	span := func(first, last int) []sink.Event { return evs[first : last+1] }

	tests := []struct {
		name   string
		writes [][]sink.Event
		want   []string // data files of partition 0
		rows   int
	}{
		{
			name:   "disjoint batches stay apart",
			writes: [][]sink.Event{span(0, 9), span(10, 19)},
			want:   []string{"part-t-0-0-9.parquet", "part-t-0-10-19.parquet"},
			rows:   20,
		},
		{
			name:   "subset replay keeps the range",
			writes: [][]sink.Event{span(0, 9), {evs[2], evs[5], evs[7]}},
			want:   []string{"part-t-0-0-9.parquet"},
			rows:   10,
		},
		{
			name:   "overlap runs past the end",
			writes: [][]sink.Event{span(0, 9), span(5, 14)},
			want:   []string{"part-t-0-0-14.parquet"},
			rows:   15,
		},
		{
			name:   "overlap bridges two files",
			writes: [][]sink.Event{span(0, 9), span(10, 19), span(20, 29), span(8, 12)},
			want:   []string{"part-t-0-0-19.parquet", "part-t-0-20-29.parquet"},
			rows:   30,
		},
		{
			name:   "widened range reaches a further file",
			writes: [][]sink.Event{span(0, 4), span(10, 14), span(3, 11)},
			want:   []string{"part-t-0-0-14.parquet"},
			rows:   15,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, r := newSink(t)
			mustWrite(t, s, other[:5])
			for _, w := range tt.writes {
				mustWrite(t, s, w)
			}
			dir := filepath.Join(s.Dir(), "dt=2024-05-01", "hour=13")
			var got []string
			entries, err := os.ReadDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range entries {
				if strings.HasPrefix(e.Name(), "part-t-0-") {
					got = append(got, e.Name())
				}
			}
			slices.Sort(got)
			slices.Sort(tt.want)
			if !slices.Equal(got, tt.want) {
				t.Fatalf("files %q, want %q", got, tt.want)
			}
			if n, err := r.Count(t.Context()); err != nil || n != tt.rows+5 {
				t.Fatalf("Count = %d, %v; want %d", n, err, tt.rows+5)
			}
			dups := r.strings(t, "SELECT id FROM "+r.from()+" GROUP BY id HAVING count(*) > 1")
			if len(dups) > 0 {
				t.Fatalf("ids stored twice: %q", dups)
			}
			if !slices.Contains(files(t, s.Dir()), "dt=2024-05-01/hour=13/part-t-1-0-4.parquet") {
				t.Fatal("the other partition's file is gone")
			}
		})
	}
}

func TestNoTemporaryFilesLeft(t *testing.T) {
	s, _ := newSink(t)
	base := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	for i := range 5 {
		mustWrite(t, s, at("t", int32(i%2), int64(i*10), 10, base.Add(time.Duration(i)*time.Hour)))
	}
	// An event whose data cannot be stored is refused by name, for the
	// consumer to dead-letter; the rest of its batch is written, and
	// nothing temporary is left behind.
	bad := at("t", 0, 1000, 3, base)
	bad[2].Data = []byte("{not json")
	err := s.Write(t.Context(), bad)
	rs, ok := sink.Rejections(err)
	if !ok || len(rs) != 1 || rs[0].Event.ID != bad[2].ID || !errors.Is(err, hive.ErrData) {
		t.Fatalf("Write with invalid json in one event: err = %v, want a sink.RejectedError naming it", err)
	}
	var written bool
	for _, f := range files(t, s.Dir()) {
		if strings.HasPrefix(filepath.Base(f), ".tmp-") {
			t.Fatalf("temporary file left: %s", f)
		}
		written = written || strings.HasSuffix(f, "part-t-0-1000-1001.parquet")
	}
	if !written {
		t.Fatalf("the batch's good events were not written: %v", files(t, s.Dir()))
	}
}

func TestDDL(t *testing.T) {
	root := t.TempDir()
	s, err := hive.New(root, "studio_audit")
	if err != nil {
		t.Fatal(err)
	}
	ddl := func() string {
		b, err := os.ReadFile(filepath.Join(s.Dir(), hive.DDLFile))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if got := ddl(); strings.Contains(got, "ALTER TABLE") {
		t.Fatalf("new table lists partitions:\n%s", got)
	}
	mustWrite(t, s, at("t", 0, 0, 1, time.Date(2024, 5, 1, 13, 0, 0, 0, time.UTC)))
	mustWrite(t, s, at("t", 0, 1, 1, time.Date(2024, 5, 1, 9, 0, 0, 0, time.UTC)))
	mustWrite(t, s, at("t", 0, 2, 1, time.Date(2024, 5, 1, 9, 30, 0, 0, time.UTC)))

	abs, _ := filepath.Abs(filepath.Join(root, "studio_audit"))
	got := ddl()
	for _, want := range []string{
		"CREATE EXTERNAL TABLE IF NOT EXISTS `studio_audit` (\n  `id` STRING,\n",
		"  `time` TIMESTAMP,\n",
		"  `kafka_partition` INT,\n",
		"  `ingested_at` TIMESTAMP\n)\nPARTITIONED BY (`dt` STRING, `hour` STRING)\nSTORED AS PARQUET\nLOCATION 'file://" + filepath.ToSlash(abs) + "';\n",
		"ALTER TABLE `studio_audit` ADD IF NOT EXISTS PARTITION (`dt`='2024-05-01', `hour`='09');\n" +
			"ALTER TABLE `studio_audit` ADD IF NOT EXISTS PARTITION (`dt`='2024-05-01', `hour`='13');\n",
	} {
		if !strings.Contains(got, want) {
			t.Fatalf("_hive.sql lacks %q:\n%s", want, got)
		}
	}
	if n := strings.Count(got, "ALTER TABLE"); n != 2 {
		t.Fatalf("%d partition lines, want 2:\n%s", n, got)
	}

	// A second sink on the same table, with another location, lists the
	// partitions already on disk.
	s2, err := hive.New(root, "studio_audit", hive.WithLocation("s3a://lake/audit/studio_audit"))
	if err != nil {
		t.Fatal(err)
	}
	got = ddl()
	if !strings.Contains(got, "LOCATION 's3a://lake/audit/studio_audit';") || strings.Count(got, "ALTER TABLE") != 2 {
		t.Fatalf("_hive.sql of the second sink:\n%s", got)
	}
	_ = s2.Close(t.Context())
}

// memRegistry is the test's own stand-in for a schema registry: schemas in
// a map, ids from a counter. It is a test double, not a product registry.
type memRegistry struct {
	mu      sync.Mutex
	schemas []avro.Schema
}

func (r *memRegistry) Register(_ context.Context, _ string, s string) (int, error) {
	parsed, err := avro.Parse(s)
	if err != nil {
		return 0, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, have := range r.schemas {
		if have.Fingerprint() == parsed.Fingerprint() {
			return i + 1, nil
		}
	}
	r.schemas = append(r.schemas, parsed)
	return len(r.schemas), nil
}

func (r *memRegistry) SchemaByID(_ context.Context, id int) (avro.Schema, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if id < 1 || id > len(r.schemas) {
		return nil, fmt.Errorf("memRegistry: schema id %d not found", id)
	}
	return r.schemas[id-1], nil
}

const budgetSchema = `{
  "type": "record", "name": "Budget", "namespace": "studio.finance",
  "fields": [
    {"name": "id", "type": "string"},
    {"name": "amount_cents", "type": "long"},
    {"name": "approved", "type": "boolean"},
    {"name": "lines", "type": {"type": "array", "items": "string"}},
    {"name": "note", "type": ["null", "string"], "default": null}
  ]
}`

type budget struct {
	ID          string   `avro:"id"`
	AmountCents int64    `avro:"amount_cents"`
	Approved    bool     `avro:"approved"`
	Lines       []string `avro:"lines"`
	Note        *string  `avro:"note"`
}

func TestAvroDataAsJSON(t *testing.T) {
	ctx := t.Context()
	reg := &memRegistry{}
	s, r := newSink(t, hive.WithRegistry(reg))
	sch := avro.MustParse(budgetSchema)
	note := "over by 2%"
	data, ref, err := schema.EncodeData(ctx, reg, "studio.budget-value", sch,
		budget{ID: "b-1", AmountCents: 1_250_000_00, Approved: true, Lines: []string{"vfx", "crew"}, Note: &note})
	if err != nil {
		t.Fatal(err)
	}
	ev := at("studio.budget.materialized", 0, 5, 1, time.Date(2024, 5, 1, 13, 0, 0, 0, time.UTC))[0]
	ev.EntityType, ev.DataContentType, ev.Data, ev.DataSchema = "budget", schema.ContentTypeAvro, data, ref
	mustWrite(t, s, []sink.Event{ev})

	got := r.strings(t, "SELECT data FROM "+r.from()+" WHERE id = ?", ev.ID)
	if len(got) != 1 {
		t.Fatalf("%d rows, want 1", len(got))
	}
	var doc map[string]any
	if err := json.Unmarshal([]byte(got[0]), &doc); err != nil {
		t.Fatalf("data %q is not json: %v", got[0], err)
	}
	want := map[string]any{
		"id": "b-1", "amount_cents": float64(1_250_000_00), "approved": true,
		"lines": []any{"vfx", "crew"},
		// A nullable union holds its value directly, not wrapped in its
		// branch name as the Avro JSON encoding would.
		"note": note,
	}
	if fmt.Sprint(doc) != fmt.Sprint(want) {
		t.Fatalf("data = %v, want %v", doc, want)
	}
	// DuckDB's JSON functions can reach into the column.
	if v := r.strings(t, "SELECT json_extract_string(data, '$.lines[1]') FROM "+r.from()); !slices.Equal(v, []string{"crew"}) {
		t.Fatalf("json_extract_string = %q", v)
	}
}

func TestDataErrors(t *testing.T) {
	ctx := t.Context()
	reg := &memRegistry{}
	sch := avro.MustParse(budgetSchema)
	avroData, _, err := schema.EncodeData(ctx, reg, "studio.budget-value", sch, budget{ID: "b-1", Lines: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	unknownID := schema.Frame(nil, 999, avroData[5:])
	truncated := avroData[:len(avroData)-3]

	tests := []struct {
		name      string
		reg       schema.Registry
		ct        string
		data      []byte
		ok        bool // the write succeeds
		poison    bool // the error wraps ErrData
		decodeErr bool // the error also wraps schema.ErrDecode
	}{
		{"json with parameters", nil, "application/json; charset=utf-8", []byte(`{"a":1}`), true, false, false},
		{"json suffix type", nil, "application/cloudevents+json", []byte(`[1,2]`), true, false, false},
		{"invalid json", nil, schema.ContentTypeJSON, []byte(`{"a":`), false, true, false},
		{"avro without registry", nil, schema.ContentTypeAvro, avroData, false, true, false},
		{"avro not framed", reg, schema.ContentTypeAvro, []byte("xx"), false, true, true},
		{"avro truncated", reg, schema.ContentTypeAvro, truncated, false, true, true},
		{"unsupported type", nil, "text/plain", []byte("hello"), false, true, false},
		{"bad media type", nil, "application/", []byte("hello"), false, true, false},
		// The registry failing is not the event's fault: a retry may work.
		{"unknown schema id", reg, schema.ContentTypeAvro, unknownID, false, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []hive.Option
			if tt.reg != nil {
				opts = append(opts, hive.WithRegistry(tt.reg))
			}
			s, r := newSink(t, opts...)
			ev := at("t", 0, 0, 1, time.Date(2024, 5, 1, 13, 0, 0, 0, time.UTC))[0]
			ev.DataContentType, ev.Data = tt.ct, tt.data
			err := s.Write(ctx, []sink.Event{ev})
			switch {
			case tt.ok && err != nil:
				t.Fatalf("Write: %v", err)
			case !tt.ok && err == nil:
				t.Fatal("Write succeeded, want an error")
			case errors.Is(err, hive.ErrData) != tt.poison:
				t.Fatalf("err = %v; wraps ErrData = %v, want %v", err, errors.Is(err, hive.ErrData), tt.poison)
			case errors.Is(err, schema.ErrDecode) != tt.decodeErr:
				t.Fatalf("err = %v; wraps schema.ErrDecode = %v, want %v", err, errors.Is(err, schema.ErrDecode), tt.decodeErr)
			}
			if n, _ := r.Count(ctx); tt.ok != (n == 1) {
				t.Fatalf("Count = %d after err %v", n, err)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, root, table string
		ok                bool
		config            bool // the error wraps ErrConfig
	}{
		{"ok", dir, "audit_2024", true, false},
		{"empty root", "", "audit", false, true},
		{"empty table", dir, "", false, true},
		{"table with slash", dir, "a/b", false, true},
		{"table with dot", dir, "db.audit", false, true},
		{"table starting with digit", dir, "1audit", false, true},
		{"root is a file", file, "audit", false, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := hive.New(tt.root, tt.table)
			if tt.ok {
				if err != nil {
					t.Fatal(err)
				}
				_ = s.Close(t.Context())
				return
			}
			if err == nil {
				t.Fatal("New succeeded")
			}
			if errors.Is(err, hive.ErrConfig) != tt.config {
				t.Fatalf("err = %v; wraps ErrConfig = %v, want %v", err, errors.Is(err, hive.ErrConfig), tt.config)
			}
		})
	}
}

// blockingRegistry holds every schema lookup until release is closed.
type blockingRegistry struct {
	*memRegistry
	entered chan struct{}
	release chan struct{}
}

func (r *blockingRegistry) SchemaByID(ctx context.Context, id int) (avro.Schema, error) {
	r.entered <- struct{}{}
	<-r.release
	return r.memRegistry.SchemaByID(ctx, id)
}

func TestCloseWaitsForWrite(t *testing.T) {
	ctx := t.Context()
	reg := &blockingRegistry{memRegistry: &memRegistry{}, entered: make(chan struct{}, 1), release: make(chan struct{})}
	s, r := newSink(t, hive.WithRegistry(reg))
	data, _, err := schema.EncodeData(ctx, reg, "studio.budget-value", avro.MustParse(budgetSchema), budget{ID: "b-1", Lines: []string{}})
	if err != nil {
		t.Fatal(err)
	}
	ev := at("t", 0, 0, 1, time.Date(2024, 5, 1, 13, 0, 0, 0, time.UTC))[0]
	ev.DataContentType, ev.Data = schema.ContentTypeAvro, data

	written := make(chan error, 1)
	go func() { written <- s.Write(context.Background(), []sink.Event{ev}) }()
	<-reg.entered // the Write is in progress

	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := s.Close(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close during a Write: err = %v, want DeadlineExceeded", err)
	}
	close(reg.release)
	if err := <-written; err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if n, err := r.Count(ctx); err != nil || n != 1 {
		t.Fatalf("Count = %d, %v; want 1", n, err)
	}
}

func BenchmarkWrite(b *testing.B) {
	const batch = 1000
	s, _ := newSink(b)
	ctx := context.Background()
	base := time.Date(2024, 5, 1, 13, 0, 0, 0, time.UTC)
	evs := at("studio.title.materialized", 0, 0, batch, base)
	b.ReportAllocs()
	var off int64
	for b.Loop() {
		for i := range evs {
			evs[i].Offset = off
			off++
		}
		if err := s.Write(ctx, evs); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*batch)/b.Elapsed().Seconds(), "rows/s")
}
