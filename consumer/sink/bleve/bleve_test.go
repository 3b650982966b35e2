package bleve_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/consumer/sink/bleve"
	"github.com/slatehq/slate/consumer/sink/sinktest"
	"github.com/slatehq/slate/schema"
)

// reader reads the sink's directory. While the sink is open it asks the
// sink; once the sink is closed it opens the directory again, which also
// shows that what was written survives a restart.
type reader struct{ s *bleve.Sink }

func (r reader) with(ctx context.Context, f func(*bleve.Sink) error) error {
	err := f(r.s)
	if !errors.Is(err, sink.ErrClosed) {
		return err
	}
	s, err := bleve.New(r.s.Dir())
	if err != nil {
		return err
	}
	defer s.Close(ctx)
	return f(s)
}

func (r reader) Count(ctx context.Context) (int, error) {
	var n uint64
	err := r.with(ctx, func(s *bleve.Sink) (err error) {
		n, err = s.Count(ctx, "title")
		return err
	})
	return int(n), err
}

func (r reader) Has(ctx context.Context, id string) (bool, error) {
	var hits []bleve.Hit
	err := r.with(ctx, func(s *bleve.Sink) (err error) {
		hits, err = s.Search(ctx, "title", `slate.id:"`+id+`"`, 2)
		return err
	})
	return len(hits) > 0, err
}

func newSink(t *testing.T, opts ...bleve.Option) *bleve.Sink {
	t.Helper()
	s, err := bleve.New(t.TempDir(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close(context.Background()) })
	return s
}

func TestContract(t *testing.T) {
	sinktest.Run(t, func(t *testing.T) (sink.Sink, sinktest.Reader) {
		s := newSink(t)
		return s, reader{s}
	})
}

// The stored version decides, not the order of arrival (the cases the es
// sink passes too); a delete leaves its version as a tombstone.
// The events the es sink refuses before sending are refused here too.
func TestInvalidEventsRefused(t *testing.T) {
	s := newSink(t)
	good := sinktest.Event(schema.OpCreate, "ok", 1, map[string]any{"n": 1})
	bad := []sink.Event{
		sinktest.Event(schema.OpCreate, strings.Repeat("é", 257), 1, map[string]any{"n": 2}),
		sinktest.Event(schema.OpUpdate, "neg", -1, map[string]any{"n": 3}),
		sinktest.Event(schema.OpDelete, "", 3, nil),
	}
	err := s.Write(t.Context(), append([]sink.Event{good}, bad...))
	rs, ok := sink.Rejections(err)
	if !ok || len(rs) != len(bad) || !errors.Is(err, bleve.ErrRejected) {
		t.Fatalf("err = %v, want a sink.RejectedError for the %d invalid events", err, len(bad))
	}
	if _, _, found, err := s.Get(t.Context(), "title", "ok"); err != nil || !found {
		t.Fatalf("the valid event was not applied: found %v, err %v", found, err)
	}
}

// An UPDATE that names unchanged fields keeps their stored values.
func TestUnchangedFields(t *testing.T) {
	for _, tt := range sinktest.UnchangedCases() {
		t.Run(tt.Name, func(t *testing.T) {
			s := newSink(t)
			for _, batch := range tt.Batches {
				if err := s.Write(t.Context(), batch); err != nil {
					t.Fatalf("Write: %v", err)
				}
			}
			doc, _, found, err := s.Get(t.Context(), "title", "t1")
			if err != nil || !found {
				t.Fatalf("t1: found %v, err %v", found, err)
			}
			for f, want := range tt.Want {
				if doc[f] != want {
					t.Errorf("%s = %v, want %v (document %v)", f, doc[f], want, doc)
				}
			}
		})
	}
}

func TestExternalVersions(t *testing.T) {
	// A delete at the stored version wins here. Elasticsearch refuses it
	// (external versions must grow), so the case is not a shared one.
	for _, tt := range sinktest.VersionCases() {
		t.Run(tt.Name, func(t *testing.T) {
			s := newSink(t)
			for _, batch := range tt.Batches {
				if err := s.Write(t.Context(), batch); err != nil {
					t.Fatalf("Write: %v", err)
				}
			}
			doc, v, found, err := s.Get(t.Context(), "title", "t1")
			if err != nil {
				t.Fatal(err)
			}
			if found != tt.Found || v != tt.Version {
				t.Fatalf("found = %v version %d, want %v version %d (doc %v)", found, v, tt.Found, tt.Version, doc)
			}
			n, err := s.Count(t.Context(), "title")
			if err != nil {
				t.Fatal(err)
			}
			if hits, err := s.Search(t.Context(), "title", `slate.subject:"t1"`, 10); err != nil || len(hits) != int(n) {
				t.Fatalf("Search = %d hits, %v; want %d", len(hits), err, n)
			}
			if !found {
				if n != 0 {
					t.Errorf("Count = %d, want 0", n)
				}
				return
			}
			if doc["name"] != tt.Data {
				t.Errorf("name %v, want %q", doc["name"], tt.Data)
			}
			env, _ := doc[bleve.EnvelopeField].(map[string]any)
			if env["subject"] != "t1" || env["sequence"] != float64(tt.Version) || env["entitytype"] != "title" {
				t.Errorf("envelope fields = %v", env)
			}
		})
	}
}

// Versions and tombstones are kept on disk: a sink reopened over the same
// directory still refuses an event older than a delete.
func TestVersionsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	s, err := bleve.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, []sink.Event{sinktest.Event(schema.OpCreate, "t1", 1, map[string]any{"name": "A"}),
		sinktest.Event(schema.OpDelete, "t1", 2, nil), sinktest.Event(schema.OpUpdate, "t2", 4, map[string]any{"name": "Heat"})}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	s, err = bleve.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	if err := s.Write(ctx, []sink.Event{sinktest.Event(schema.OpUpdate, "t1", 1, map[string]any{"name": "again"}),
		sinktest.Event(schema.OpUpdate, "t2", 3, map[string]any{"name": "older"})}); err != nil {
		t.Fatal(err)
	}
	if _, v, found, err := s.Get(ctx, "title", "t1"); err != nil || found || v != 2 {
		t.Errorf("t1: found %v version %d err %v; want the tombstone of version 2", found, v, err)
	}
	if doc, v, found, err := s.Get(ctx, "title", "t2"); err != nil || !found || v != 4 || doc["name"] != "Heat" {
		t.Errorf("t2: %v version %d found %v err %v", doc, v, found, err)
	}
}

func TestSearch(t *testing.T) {
	s := newSink(t)
	ctx := t.Context()
	err := s.Write(ctx, []sink.Event{
		sinktest.Event(schema.OpCreate, "t1", 1, map[string]any{"name": "Heat", "budget": 60000000}),
		sinktest.Event(schema.OpCreate, "t2", 1, map[string]any{"name": "Ronin", "budget": 55000000}),
		sinktest.Event(schema.OpCreate, "t3", 1, map[string]any{"name": "The Insider", "budget": 90000000}),
		sinktest.Event(schema.OpDelete, "t2", 2, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"heat", []string{"t1"}},
		{"name:insider", []string{"t3"}},
		{"budget:>59000000", []string{"t1", "t3"}},
		{"ronin", nil},
		{`slate.subject:"t3"`, []string{"t3"}},
		{"", []string{"t1", "t3"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			hits, err := s.Search(ctx, "title", tt.query, 10)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]bool{}
			for _, h := range hits {
				got[h.ID] = true
				if h.Version != 1 || h.Doc["name"] == nil {
					t.Errorf("hit %+v", h)
				}
			}
			if len(got) != len(tt.want) {
				t.Fatalf("hits %v, want %v", hits, tt.want)
			}
			for _, id := range tt.want {
				if !got[id] {
					t.Errorf("hits %v, want %v", hits, tt.want)
				}
			}
		})
	}
	if hits, err := s.Search(ctx, "budget", "anything", 10); err != nil || len(hits) != 0 {
		t.Errorf("search of an unwritten entity type: %v, %v", hits, err)
	}
	if _, err := s.Search(ctx, "title", `name:"unterminated`, 10); !errors.Is(err, bleve.ErrQuery) {
		t.Errorf("bad query: err = %v, want ErrQuery", err)
	}
}

// Avro data in the Confluent wire format is decoded with the writer's
// schema from the registry.
func TestAvroData(t *testing.T) {
	ctx := t.Context()
	reg, ev := sinktest.AvroEvent(t)
	ref := ev.DataSchema

	s := newSink(t, bleve.WithRegistry(reg))
	if err := s.Write(ctx, []sink.Event{ev}); err != nil {
		t.Fatal(err)
	}
	doc, _, found, err := s.Get(ctx, "title", "t9")
	if err != nil || !found || doc["name"] != "Heat" || doc["budget"] != float64(42) {
		t.Fatalf("document = %v (found %v, err %v)", doc, found, err)
	}
	if env := doc[bleve.EnvelopeField].(map[string]any); env["dataschema"] != ref {
		t.Errorf("dataschema = %v, want %s", env["dataschema"], ref)
	}
	if hits, err := s.Search(ctx, "title", "budget:42", 1); err != nil || len(hits) != 1 {
		t.Errorf("search on a decoded Avro field: %v, %v", hits, err)
	}

	noReg := newSink(t)
	if err := noReg.Write(ctx, []sink.Event{ev}); !errors.Is(err, bleve.ErrData) {
		t.Errorf("Write of Avro data without a registry: err = %v, want ErrData", err)
	}
}

func TestRejected(t *testing.T) {
	tests := []struct {
		name string
		ev   sink.Event
		want error
	}{
		{"entity type with a slash", func() sink.Event {
			e := sinktest.Event(schema.OpCreate, "x", 1, map[string]any{"n": 1})
			e.EntityType = "../title"
			return e
		}(), bleve.ErrRejected},
		{"empty subject", sinktest.Event(schema.OpCreate, "", 1, map[string]any{"n": 1}), bleve.ErrRejected},
		{"bad JSON", func() sink.Event {
			e := sinktest.Event(schema.OpCreate, "x", 1, nil)
			e.DataContentType, e.Data = schema.ContentTypeJSON, []byte("{")
			return e
		}(), bleve.ErrData},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSink(t)
			ok := sinktest.Event(schema.OpCreate, "ok", 1, map[string]any{"n": 1})
			err := s.Write(t.Context(), []sink.Event{ok, tt.ev})
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			// The refusal names the event, and the rest of the batch is applied.
			if rs, isRej := sink.Rejections(err); !isRej || len(rs) != 1 || rs[0].Event.ID != tt.ev.ID {
				t.Fatalf("err = %v, want a sink.RejectedError naming only %s", err, tt.ev.ID)
			}
			if _, _, found, err := s.Get(t.Context(), ok.EntityType, ok.Subject); err != nil || !found {
				t.Fatalf("the good event of the batch was not applied: found %v, err %v", found, err)
			}
		})
	}
}

func TestNewValidates(t *testing.T) {
	if _, err := bleve.New(""); !errors.Is(err, bleve.ErrConfig) {
		t.Fatalf("err = %v, want ErrConfig", err)
	}
}

// Search, Get and Count may run while a Write is under way, and Close
// may come in the middle of both.
func TestReadsDuringWrites(t *testing.T) {
	s := newSink(t)
	ctx := t.Context()
	done := make(chan struct{})
	readErr := make(chan error, 1)
	go func() {
		defer close(readErr)
		for {
			select {
			case <-done:
				return
			default:
			}
			if _, err := s.Search(ctx, "title", "name:title", 5); err != nil && !errors.Is(err, sink.ErrClosed) {
				readErr <- err
				return
			}
			if _, _, _, err := s.Get(ctx, "title", "title-0"); err != nil && !errors.Is(err, sink.ErrClosed) {
				readErr <- err
				return
			}
		}
	}()
	for i := range 10 {
		if err := s.Write(ctx, sinktest.Events(0, int64(i*50), 50)); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := s.Count(ctx, "title"); err != nil || n != 500 {
		t.Errorf("Count = %d, %v; want 500", n, err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	close(done)
	if err := <-readErr; err != nil {
		t.Fatalf("read during writes: %v", err)
	}
}

// An index is created whole: what a process killed while creating one
// left behind does not stop a later sink from creating it.
func TestIndexCreatedWhole(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	s, err := bleve.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	half := filepath.Join(dir, ".creating-"+s.Index("title"))
	if err := os.MkdirAll(half, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(half, "index_meta.json"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := s.Write(ctx, []sink.Event{sinktest.Event(schema.OpCreate, "t1", 1, map[string]any{"name": "A"})}); err != nil {
		t.Fatalf("Write over a half-created index: %v", err)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Errorf("%s left in the sink's directory", e.Name())
		}
	}
	s, err = bleve.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(ctx)
	if doc, v, found, err := s.Get(ctx, "title", "t1"); err != nil || !found || v != 1 || doc["name"] != "A" {
		t.Errorf("t1 after reopen: %v version %d found %v err %v", doc, v, found, err)
	}
}

// Lookup reads a batch of ids at once: live documents with their source
// as written (integers past 2^53 intact), a deleted one with the delete's
// version, an unknown one with none.
func TestLookup(t *testing.T) {
	s := newSink(t)
	ctx := t.Context()
	if got, err := s.Lookup(ctx, "title", []string{"t1"}); err != nil || len(got) != 1 || got[0].Live || got[0].ID != "t1" {
		t.Fatalf("lookup of an unwritten entity type: %+v, %v", got, err)
	}
	if err := s.Write(ctx, []sink.Event{
		sinktest.Event(schema.OpCreate, "t1", 3, map[string]any{"name": "Heat", "budget": int64(1<<53 + 1)}),
		sinktest.Event(schema.OpCreate, "t2", 1, map[string]any{"name": "Ronin"}),
		sinktest.Event(schema.OpDelete, "t2", 2, nil),
	}); err != nil {
		t.Fatal(err)
	}
	got, err := s.Lookup(ctx, "title", []string{"t2", "t1", "nope"})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0].ID != "t2" || got[0].Live || got[0].Version != 2 ||
		got[1].ID != "t1" || !got[1].Live || got[1].Version != 3 || got[2].Live || got[2].Version != 0 {
		t.Fatalf("lookup: %+v", got)
	}
	if !strings.Contains(string(got[1].Source), `"budget":9007199254740993`) {
		t.Errorf("source %s: want the budget exact", got[1].Source)
	}
	hits, err := s.Search(ctx, "title", "heat", 1)
	if err != nil || len(hits) != 1 || !strings.Contains(string(hits[0].Source), `"budget":9007199254740993`) {
		t.Errorf("search hit source: %+v, %v", hits, err)
	}
}

// A date kept as YYYY-MM-DD is found by a date range of the query string.
func TestSearchDateRange(t *testing.T) {
	s := newSink(t)
	ctx := t.Context()
	if err := s.Write(ctx, []sink.Event{
		sinktest.Event(schema.OpCreate, "t1", 1, map[string]any{"name": "Heat", "release_date": "2027-07-16"}),
		sinktest.Event(schema.OpCreate, "t2", 1, map[string]any{"name": "Ronin", "release_date": "2028-01-01"}),
		sinktest.Event(schema.OpCreate, "t3", 1, map[string]any{"name": "Insider", "release_date": ""}),
	}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		q    string
		want int
	}{
		{`+release_date:>="2027-07-16" +release_date:<="2027-12-31"`, 1},
		{`+release_date:>="2027-01-01"`, 2},
		{`+release_date:<="2027-07-15"`, 0},
	} {
		hits, err := s.Search(ctx, "title", tc.q, 10)
		if err != nil || len(hits) != tc.want {
			t.Errorf("%s: %d hits (%v), want %d", tc.q, len(hits), err, tc.want)
		}
	}
}

// An integer past 2^53 kept as an unchanged field stays exact.
func TestExactUnchangedInteger(t *testing.T) {
	s := newSink(t)
	ev := sinktest.Event(schema.OpUpdate, "t1", 2, map[string]any{"name": "B"})
	ev.Unchanged = []string{"budget"}
	for _, batch := range [][]sink.Event{{sinktest.Event(schema.OpCreate, "t1", 1, map[string]any{"name": "A", "budget": int64(1<<53 + 1)})}, {ev}} {
		if err := s.Write(t.Context(), batch); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Lookup(t.Context(), "title", []string{"t1"})
	if err != nil || !strings.Contains(string(got[0].Source), `"budget":9007199254740993`) || !strings.Contains(string(got[0].Source), `"name":"B"`) {
		t.Errorf("stored %s (%v): want budget 9007199254740993 kept exactly", got[0].Source, err)
	}
}
