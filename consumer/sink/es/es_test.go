package es_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/consumer/sink/es"
	"github.com/slatehq/slate/consumer/sink/es/estest"
	"github.com/slatehq/slate/consumer/sink/sinktest"
	"github.com/slatehq/slate/schema"
)

// backend is a cluster to test against: a real one when SLATE_ES_URL is
// set, the in-process double otherwise (double is nil for a real cluster).
type backend struct {
	client *elasticsearch.Client
	prefix string
	double *estest.Server
}

func newBackend(t *testing.T) backend {
	t.Helper()
	prefix := fmt.Sprintf("slatetest-%d-", time.Now().UnixNano())
	if url := os.Getenv("SLATE_ES_URL"); url != "" {
		c, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{url}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			res, err := c.Indices.Delete([]string{prefix + "*"})
			if err == nil {
				res.Body.Close()
			}
		})
		return backend{client: c, prefix: prefix}
	}
	d := estest.New()
	hs := httptest.NewServer(d)
	t.Cleanup(hs.Close)
	c, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{hs.URL}, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	return backend{client: c, prefix: prefix, double: d}
}

func (b backend) sink(t *testing.T, opts ...es.Option) *es.Sink {
	t.Helper()
	opts = append([]es.Option{es.WithIndexPrefix(b.prefix), es.WithRefresh("wait_for")}, opts...)
	s, err := es.New(t.Context(), b.client, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// reader counts documents through the search API, so it reads a real
// cluster and the double alike.
type reader struct{ b backend }

func (r reader) count(ctx context.Context, query string) (int, error) {
	c := r.b.client
	if res, err := c.Indices.Refresh(c.Indices.Refresh.WithIndex(r.b.prefix+"*"), c.Indices.Refresh.WithContext(ctx)); err == nil {
		res.Body.Close()
	}
	opts := []func(*esapi.CountRequest){c.Count.WithIndex(r.b.prefix + "*"), c.Count.WithContext(ctx)}
	if query != "" {
		opts = append(opts, c.Count.WithBody(strings.NewReader(query)))
	}
	res, err := c.Count(opts...)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.IsError() {
		return 0, errors.New(res.String())
	}
	var body struct {
		Count int `json:"count"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return 0, err
	}
	return body.Count, nil
}

func (r reader) Count(ctx context.Context) (int, error) { return r.count(ctx, "") }

func (r reader) Has(ctx context.Context, id string) (bool, error) {
	q, _ := json.Marshal(map[string]any{"query": map[string]any{"term": map[string]any{es.EnvelopeField + ".id": id}}})
	n, err := r.count(ctx, string(q))
	return n > 0, err
}

// get returns a document's source and version, or found=false.
func (r reader) get(t *testing.T, index, id string) (src map[string]any, version int64, found bool) {
	t.Helper()
	res, err := r.b.client.Get(index, id)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode == 404 {
		return nil, 0, false
	}
	var body struct {
		Version int64          `json:"_version"`
		Source  map[string]any `json:"_source"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Source, body.Version, true
}

func TestContract(t *testing.T) {
	sinktest.Run(t, func(t *testing.T) (sink.Sink, sinktest.Reader) {
		b := newBackend(t)
		return b.sink(t), reader{b}
	})
}

// External versions decide the result, not the order of arrival: an older
// or replayed event is a 409 that counts as success and changes nothing.
func TestExternalVersions(t *testing.T) {
	for _, tt := range sinktest.VersionCases() {
		t.Run(tt.Name, func(t *testing.T) {
			b := newBackend(t)
			s := b.sink(t)
			for _, batch := range tt.Batches {
				if err := s.Write(t.Context(), batch); err != nil {
					t.Fatalf("Write: %v", err)
				}
			}
			src, v, found := reader{b}.get(t, s.Index("title"), "t1")
			if found != tt.Found {
				t.Fatalf("found = %v, want %v (source %v)", found, tt.Found, src)
			}
			if !found {
				return
			}
			if src["name"] != tt.Data || v != tt.Version {
				t.Errorf("name %v version %d, want %q version %d", src["name"], v, tt.Data, tt.Version)
			}
			env, _ := src[es.EnvelopeField].(map[string]any)
			if env["subject"] != "t1" || env["sequence"] != float64(tt.Version) || env["entitytype"] != "title" {
				t.Errorf("envelope fields = %v", env)
			}
		})
	}
}

// An UPDATE that names unchanged fields keeps their stored values.
func TestUnchangedFields(t *testing.T) {
	for _, tt := range sinktest.UnchangedCases() {
		t.Run(tt.Name, func(t *testing.T) {
			b := newBackend(t)
			s := b.sink(t)
			for _, batch := range tt.Batches {
				if err := s.Write(t.Context(), batch); err != nil {
					t.Fatalf("Write: %v", err)
				}
			}
			src, _, found := reader{b}.get(t, s.Index("title"), "t1")
			if !found {
				t.Fatal("t1 not found")
			}
			for f, want := range tt.Want {
				if src[f] != want {
					t.Errorf("%s = %v, want %v (document %v)", f, src[f], want, src)
				}
			}
		})
	}
}

// Avro data in the Confluent wire format is decoded with the writer's
// schema from the registry.
func TestAvroData(t *testing.T) {
	ctx := t.Context()
	reg, ev := sinktest.AvroEvent(t)
	ref := ev.DataSchema

	b := newBackend(t)
	s := b.sink(t, es.WithRegistry(reg))
	if err := s.Write(ctx, []sink.Event{ev}); err != nil {
		t.Fatal(err)
	}
	src, _, found := reader{b}.get(t, s.Index("title"), "t9")
	if !found || src["name"] != "Heat" || src["budget"] != float64(42) {
		t.Fatalf("document = %v (found %v)", src, found)
	}
	if env := src[es.EnvelopeField].(map[string]any); env["dataschema"] != ref {
		t.Errorf("dataschema = %v, want %s", env["dataschema"], ref)
	}

	noReg := b.sink(t)
	if err := noReg.Write(ctx, []sink.Event{ev}); !errors.Is(err, es.ErrData) {
		t.Errorf("Write of Avro data without a registry: err = %v, want ErrData", err)
	}
}

// New installs the index template and creates the indices it is told of.
func TestTemplateAndIndices(t *testing.T) {
	b := newBackend(t)
	s := b.sink(t, es.WithEntityTypes("title", "budget"))
	for _, idx := range []string{s.Index("title"), s.Index("budget")} {
		res, err := b.client.Indices.Exists([]string{idx})
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Errorf("index %s: HEAD status %d", idx, res.StatusCode)
		}
	}
	res, err := b.client.Indices.GetIndexTemplate(b.client.Indices.GetIndexTemplate.WithName(s.TemplateName()))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	_, _ = buf.ReadFrom(res.Body)
	if res.StatusCode != 200 || !strings.Contains(buf.String(), b.prefix+"*") || !strings.Contains(buf.String(), `"sequence"`) ||
		!strings.Contains(buf.String(), `"date_detection":false`) { // a date string then "" must both index
		t.Errorf("template %s: %d %s", s.TemplateName(), res.StatusCode, buf.String())
	}
	// A second sink over the same cluster finds the indices there.
	b.sink(t, es.WithEntityTypes("title"))
}

// The double-only cases: faults a real cluster cannot be told to produce.
func TestFaults(t *testing.T) {
	tests := []struct {
		name          string
		fault         estest.Fault
		wantRetryable bool
	}{
		{"item 429", estest.Fault{Status: 429}, true},
		{"item 503", estest.Fault{Status: 503}, true},
		{"request 503", estest.Fault{Status: 503, Whole: true}, true},
		{"request 429", estest.Fault{Status: 429, Whole: true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBackend(t)
			if b.double == nil {
				t.Skip("needs the double (SLATE_ES_URL is set)")
			}
			s := b.sink(t)
			evs := []sink.Event{sinktest.Event(schema.OpCreate, "a", 1, map[string]any{"n": 1}), sinktest.Event(schema.OpCreate, "b", 1, map[string]any{"n": 2})}
			f := tt.fault
			f.Until = time.Now().Add(time.Hour)
			b.double.Fail(f)
			err := s.Write(t.Context(), evs)
			if err == nil || es.IsRetryable(err) != tt.wantRetryable {
				t.Fatalf("Write during fault: err = %v, retryable = %v, want %v", err, es.IsRetryable(err), tt.wantRetryable)
			}
			if n := b.double.Count(b.prefix + "*"); n != 0 {
				t.Fatalf("%d documents written during the fault", n)
			}
			b.double.Fail(estest.Fault{})
			if err := s.Write(t.Context(), evs); err != nil {
				t.Fatalf("Write after the fault: %v", err)
			}
			if n := b.double.Count(b.prefix + "*"); n != 2 {
				t.Fatalf("count = %d after retry, want 2", n)
			}
		})
	}
}

// A document Elasticsearch refuses for good fails the write with an
// ItemError that names it and is not retryable.
func TestRejectedItem(t *testing.T) {
	b := newBackend(t)
	s := b.sink(t)
	bad := sinktest.Event(schema.OpCreate, "x", 1, map[string]any{"n": 1})
	bad.EntityType = "bad*type" // not a valid index name
	err := s.Write(t.Context(), []sink.Event{sinktest.Event(schema.OpCreate, "ok", 1, map[string]any{"n": 1}), bad})
	var ie *es.ItemError
	if !errors.As(err, &ie) || es.IsRetryable(err) || !errors.Is(err, es.ErrRejected) {
		t.Fatalf("err = %v, want a non-retryable ItemError", err)
	}
	if ie.DocID != "x" || ie.Status != 400 || ie.Reason == "" {
		t.Errorf("ItemError = %+v", ie)
	}
	// The rest of the batch is applied; the refusal names the event, for
	// the consumer to dead-letter.
	if rs, ok := sink.Rejections(err); !ok || len(rs) != 1 || rs[0].Event.ID != bad.ID {
		t.Errorf("err = %v, want a sink.RejectedError naming only %s", err, bad.ID)
	}
	if b.double != nil {
		if n := b.double.Count(b.prefix + "*"); n != 1 {
			t.Errorf("count = %d, want the good document", n)
		}
	}
}

// Items Elasticsearch would refuse in request validation (an id over 512
// bytes, a negative external version) would make it refuse the whole bulk
// request with 400: the sink refuses them for good before sending, and the
// rest of the batch is applied.
func TestInvalidItemsRefused(t *testing.T) {
	b := newBackend(t)
	s := b.sink(t)
	good := sinktest.Event(schema.OpCreate, "ok", 1, map[string]any{"n": 1})
	longID := sinktest.Event(schema.OpCreate, strings.Repeat("é", 257), 1, map[string]any{"n": 2}) // 514 bytes
	negative := sinktest.Event(schema.OpUpdate, "neg", -1, map[string]any{"n": 3})
	negDelete := sinktest.Event(schema.OpDelete, "negdel", -5, nil)
	noID := sinktest.Event(schema.OpDelete, "", 3, nil)
	bad := []sink.Event{longID, negative, negDelete, noID}
	err := s.Write(t.Context(), append([]sink.Event{good}, bad...))
	rs, ok := sink.Rejections(err)
	if !ok || len(rs) != len(bad) || es.IsRetryable(err) || !errors.Is(err, es.ErrRejected) {
		t.Fatalf("err = %v, want a permanent sink.RejectedError for the %d invalid events", err, len(bad))
	}
	for i, r := range rs {
		if r.Event.ID != bad[i].ID {
			t.Errorf("rejection %d names %s, want %s", i, r.Event.ID, bad[i].ID)
		}
	}
	if _, _, found := (reader{b}).get(t, s.Index("title"), "ok"); !found {
		t.Error("the valid event of the batch was not applied")
	}
	// An id of exactly 512 bytes is valid.
	edge := sinktest.Event(schema.OpCreate, strings.Repeat("a", 512), 1, map[string]any{"n": 4})
	if err := s.Write(t.Context(), []sink.Event{edge}); err != nil {
		t.Fatalf("Write of a 512-byte id: %v", err)
	}
	if b.double != nil && b.double.Requests("bulk_invalid") != 0 {
		t.Errorf("%d bulk requests refused by validation: the sink sent invalid items", b.double.Requests("bulk_invalid"))
	}
}

// A batch larger than the flush bytes goes out as several bulk requests,
// every event applied.
func TestBatchSplitsByFlushBytes(t *testing.T) {
	b := newBackend(t)
	s := b.sink(t, es.WithFlushBytes(1024))
	var evs []sink.Event
	for i := range 50 {
		evs = append(evs, sinktest.Event(schema.OpCreate, fmt.Sprintf("t%d", i), 1, map[string]any{"n": i}))
	}
	if err := s.Write(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
	if n, err := (reader{b}).Count(t.Context()); err != nil || n != 50 {
		t.Fatalf("count = %d, %v; want 50", n, err)
	}
	if b.double != nil && b.double.Requests("bulk") < 2 {
		t.Errorf("%d bulk requests, want the batch split", b.double.Requests("bulk"))
	}
}

// A bulk request refused as a whole with a 4xx other than 429 is not
// retried forever: its items are refused for good.
func TestWholeRequestRefused(t *testing.T) {
	b := newBackend(t)
	if b.double == nil {
		t.Skip("needs the double (SLATE_ES_URL is set)")
	}
	s := b.sink(t)
	evs := []sink.Event{sinktest.Event(schema.OpCreate, "a", 1, map[string]any{"n": 1}), sinktest.Event(schema.OpCreate, "b", 1, map[string]any{"n": 2})}
	b.double.Fail(estest.Fault{Status: 400, Whole: true, Until: time.Now().Add(time.Hour)})
	err := s.Write(t.Context(), evs)
	rs, ok := sink.Rejections(err)
	if !ok || len(rs) != 2 || es.IsRetryable(err) {
		t.Fatalf("err = %v, want a permanent sink.RejectedError for both events", err)
	}
	var ie *es.ItemError
	if !errors.As(rs[0].Err, &ie) || ie.Status != 400 || ie.Type != "action_request_validation_exception" {
		t.Fatalf("rejection = %v, want an ItemError with 400 action_request_validation_exception", rs[0].Err)
	}
}

// A value that does not fit the index mapping (dynamic mapping made "n" a
// number) is refused with mapper_parsing_exception, and only that document.
func TestMappingConflictRefusesOneDocument(t *testing.T) {
	b := newBackend(t)
	s := b.sink(t)
	if err := s.Write(t.Context(), []sink.Event{sinktest.Event(schema.OpCreate, "a", 1, map[string]any{"n": 1})}); err != nil {
		t.Fatal(err)
	}
	bad := sinktest.Event(schema.OpCreate, "b", 1, map[string]any{"n": "many"})
	err := s.Write(t.Context(), []sink.Event{bad, sinktest.Event(schema.OpCreate, "c", 1, map[string]any{"n": 3})})
	rs, ok := sink.Rejections(err)
	if !ok || len(rs) != 1 || rs[0].Event.ID != bad.ID || !strings.Contains(err.Error(), "mapper_parsing_exception") {
		t.Fatalf("err = %v, want a sink.RejectedError for %s with mapper_parsing_exception", err, bad.ID)
	}
	if es.IsRetryable(err) {
		t.Errorf("a mapping conflict is retryable: %v", err)
	}
}

func TestNewValidates(t *testing.T) {
	b := newBackend(t)
	tests := []struct {
		name   string
		client *elasticsearch.Client
		opts   []es.Option
	}{
		{"nil client", nil, nil},
		{"upper-case prefix", b.client, []es.Option{es.WithIndexPrefix("Studio-")}},
		{"empty prefix", b.client, []es.Option{es.WithIndexPrefix("")}},
		{"tiny flush", b.client, []es.Option{es.WithFlushBytes(10)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := es.New(t.Context(), tt.client, tt.opts...); !errors.Is(err, es.ErrConfig) {
				t.Fatalf("err = %v, want ErrConfig", err)
			}
		})
	}
}

// An integer past 2^53 in JSON data is stored as sent, also when a later
// UPDATE keeps it as an unchanged field.
func TestExactIntegers(t *testing.T) {
	b := newBackend(t)
	s := b.sink(t)
	ev := sinktest.Event(schema.OpUpdate, "t1", 2, map[string]any{"name": "B"})
	ev.Unchanged = []string{"budget"}
	for _, batch := range [][]sink.Event{{sinktest.Event(schema.OpCreate, "t1", 1, map[string]any{"name": "A", "budget": int64(1<<53 + 1)})}, {ev}} {
		if err := s.Write(t.Context(), batch); err != nil {
			t.Fatal(err)
		}
	}
	res, err := b.client.Get(s.Index("title"), "t1")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw := new(bytes.Buffer)
	_, _ = raw.ReadFrom(res.Body)
	if !strings.Contains(raw.String(), `"budget":9007199254740993`) || !strings.Contains(raw.String(), `"name":"B"`) {
		t.Errorf("stored %s: want budget 9007199254740993 kept exactly", raw)
	}
}
