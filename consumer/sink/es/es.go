package es

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
	"github.com/elastic/go-elasticsearch/v8/esutil"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/internal/promreg"
	"github.com/slatehq/slate/schema"
)

// DefaultIndexPrefix is put before the entity type to name its index:
// entity type "title" is kept in index "studio-title".
const DefaultIndexPrefix = "studio-"

// EnvelopeField is the document field that holds the envelope's attributes
// (id, type, entitytype, subject, sequence, time, source, traceparent,
// dataschema) and the Kafka coordinates (topic, partition, offset).
const EnvelopeField = "slate"

// newVersionConflicts returns slate_es_version_conflicts_total.
func newVersionConflicts() *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_es_version_conflicts_total",
		Help: "Bulk items Elasticsearch refused with 409 because it holds the same or a newer version (replays, late events), by index.",
	}, []string{"index"})
}

// Option configures [New].
type Option func(*Sink)

// WithRegistry sets the schema registry used to decode Avro data. Without
// one, events with Avro data fail with [ErrData].
func WithRegistry(r schema.Registry) Option { return func(s *Sink) { s.reg = r } }

// WithIndexPrefix sets the prefix of index names (default
// [DefaultIndexPrefix]). The index template matches prefix + "*".
func WithIndexPrefix(p string) Option { return func(s *Sink) { s.prefix = p } }

// WithEntityTypes names entity types whose indices [New] creates up front,
// so that their mapping exists before the first event. Indices of other
// entity types are created by their first write, from the same template.
func WithEntityTypes(types ...string) Option {
	return func(s *Sink) { s.entityTypes = append(s.entityTypes, types...) }
}

// WithRefresh sets the bulk refresh parameter ("true", "wait_for"; default
// none: documents become searchable at the next periodic refresh).
func WithRefresh(r string) Option { return func(s *Sink) { s.refresh = r } }

// WithFlushBytes bounds the size of one bulk request (default 5 MB); a
// larger batch is sent as several requests.
func WithFlushBytes(n int) Option { return func(s *Sink) { s.flushBytes = n } }

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(s *Sink) { s.log = l } }

// WithMetrics registers the sink's metric (slate_es_version_conflicts_total)
// on r; the default is prometheus.DefaultRegisterer. It is registered by
// [New], which fails if r holds a different collector under its name.
// Sinks on one Registerer share it, each counting under its indices'
// labels.
func WithMetrics(r prometheus.Registerer) Option { return func(s *Sink) { s.metrics = r } }

// Sink writes events to Elasticsearch. Write must not be called
// concurrently (the consumer never does); Close may be called at any time.
type Sink struct {
	client      *elasticsearch.Client
	reg         schema.Registry
	prefix      string
	entityTypes []string
	refresh     string
	flushBytes  int
	log         *slog.Logger
	metrics     prometheus.Registerer
	conflicts   *prometheus.CounterVec

	mu     sync.Mutex
	closed bool
}

var _ sink.Sink = (*Sink)(nil)

// Name returns "es", the sink's name in consumer.ToSinks: the label of
// its slate_sink_* metrics and the key of its per-sink dedupe marks.
func (s *Sink) Name() string { return "es" }

// New validates the options, installs the index template (mappings for the
// envelope fields; strings of the data as text with a keyword subfield) and
// creates the indices of [WithEntityTypes]. It fails if the cluster cannot
// be reached within ctx.
func New(ctx context.Context, client *elasticsearch.Client, opts ...Option) (*Sink, error) {
	s := &Sink{client: client, prefix: DefaultIndexPrefix, flushBytes: 5 << 20, log: slog.New(slog.DiscardHandler),
		metrics: prometheus.DefaultRegisterer}
	for _, o := range opts {
		o(s)
	}
	if s.metrics == nil {
		s.metrics = prometheus.DefaultRegisterer
	}
	var err error
	if s.conflicts, err = promreg.Register(s.metrics, newVersionConflicts()); err != nil {
		return nil, fmt.Errorf("%w: metrics (WithMetrics): register slate_es_version_conflicts_total: %w", ErrConfig, err)
	}
	switch {
	case client == nil:
		return nil, fmt.Errorf("%w: client is nil", ErrConfig)
	case s.prefix == "" || s.prefix != strings.ToLower(s.prefix) || strings.ContainsAny(s.prefix, `\/*?"<>| ,#:`) ||
		strings.HasPrefix(s.prefix, "_") || strings.HasPrefix(s.prefix, "-"):
		return nil, fmt.Errorf("%w: index prefix %q must be a non-empty, lower-case index name", ErrConfig, s.prefix)
	case s.flushBytes < 1024:
		return nil, fmt.Errorf("%w: flush bytes %d, need at least 1024", ErrConfig, s.flushBytes)
	}
	if err := s.putTemplate(ctx); err != nil {
		return nil, err
	}
	for _, et := range s.entityTypes {
		if err := s.createIndex(ctx, s.Index(et)); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Index returns the name of the index that holds an entity type.
func (s *Sink) Index(entityType string) string { return s.prefix + strings.ToLower(entityType) }

// TemplateName is the name of the index template [New] installs.
func (s *Sink) TemplateName() string { return strings.TrimSuffix(s.prefix, "-") + "-slate" }

func (s *Sink) putTemplate(ctx context.Context) error {
	kw := map[string]any{"type": "keyword"}
	body := map[string]any{
		"index_patterns": []string{s.prefix + "*"},
		"priority":       200,
		"_meta":          map[string]any{"managed_by": "slate"},
		"template": map[string]any{
			"mappings": map[string]any{
				// A view's dates are strings ("2027-07-16", or "" for none):
				// detected as dates, the first one would make the field a
				// date and every later "" a mapping error. Strings stay
				// text with a keyword, whose ranges order ISO dates.
				"date_detection": false,
				"dynamic_templates": []any{map[string]any{"strings": map[string]any{
					"match_mapping_type": "string",
					"mapping": map[string]any{"type": "text",
						"fields": map[string]any{"keyword": map[string]any{"type": "keyword", "ignore_above": 256}}},
				}}},
				"properties": map[string]any{EnvelopeField: map[string]any{"properties": map[string]any{
					"id": kw, "type": kw, "entitytype": kw, "subject": kw, "source": kw,
					"traceparent": kw, "dataschema": kw, "topic": kw,
					"sequence":  map[string]any{"type": "long"},
					"time":      map[string]any{"type": "date"},
					"partition": map[string]any{"type": "integer"},
					"offset":    map[string]any{"type": "long"},
				}}},
			},
		},
	}
	b, _ := json.Marshal(body)
	res, err := s.client.Indices.PutIndexTemplate(s.TemplateName(), bytes.NewReader(b),
		s.client.Indices.PutIndexTemplate.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("%w: put index template %s: %w", ErrUnavailable, s.TemplateName(), err)
	}
	defer drain(res.Body)
	if res.IsError() {
		return responseError("put index template "+s.TemplateName(), res)
	}
	return nil
}

func (s *Sink) createIndex(ctx context.Context, index string) error {
	res, err := s.client.Indices.Create(index, s.client.Indices.Create.WithContext(ctx))
	if err != nil {
		return fmt.Errorf("%w: create index %s: %w", ErrUnavailable, index, err)
	}
	defer drain(res.Body)
	if res.IsError() {
		if e := decodeError(res); e.Type == "resource_already_exists_exception" {
			return nil
		}
		return responseError("create index "+index, res)
	}
	s.log.Info("index created", "index", index)
	return nil
}

// MaxIDBytes is Elasticsearch's bound on a document id, in UTF-8 bytes.
const MaxIDBytes = 512

// bulkItem is one action of a bulk request.
type bulkItem struct {
	action  string // "index" or "delete"
	index   string
	id      string
	version int64
	body    []byte // the document of an index action
	ev      int    // the event's position in the batch
}

// Write applies the batch with one or more bulk requests and checks every
// item. It returns nil when each event is applied or was refused with 409
// (Elasticsearch holds the same or a newer version). TRUNCATE events are
// skipped: an index is not emptied by a stream event.
//
// Events refused for good do not fail the batch when everything else was
// applied: Write returns a [*sink.RejectedError] naming them, for the
// consumer to dead-letter. Those are data that is not a document
// ([ErrData]); an event Elasticsearch's request validation would refuse
// (an empty subject, a subject over [MaxIDBytes] bytes, a negative
// sequence), checked before sending because Elasticsearch refuses the
// whole bulk request for one such item; and documents refused with an
// [*ItemError] wrapping [ErrRejected], including every item of a bulk
// request refused as a whole with a 4xx status other than 429. A 429 or a
// 5xx (on an item or on the request) and transport failures fail the batch
// whole with [ErrUnavailable].
func (s *Sink) Write(ctx context.Context, batch []sink.Event) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return sink.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("es: write: %w", err)
	}
	items := make([]bulkItem, 0, len(batch))
	refused := make([]error, len(batch)) // by batch position
	built := map[string]builtDoc{}       // index/id -> the batch's latest document
	for i := range batch {
		it, ok, err := s.item(ctx, &batch[i], built)
		switch {
		case errors.Is(err, ErrData) || errors.Is(err, ErrRejected):
			refused[i] = err
		case err != nil:
			return err
		case ok:
			it.ev = i
			items = append(items, it)
		}
	}
	results := make([]error, len(items))
	for start := 0; start < len(items); {
		end, body := s.chunk(items, start)
		if err := s.bulk(ctx, items[start:end], body, results[start:end]); err != nil {
			return err
		}
		start = end
	}

	var retryable []error
	for i, err := range results {
		switch {
		case err == nil:
		case IsRetryable(err):
			retryable = append(retryable, err)
		default:
			refused[items[i].ev] = err
		}
	}
	if len(retryable) > 0 {
		return fmt.Errorf("%w: %d of %d items refused for now, first: %v", ErrUnavailable, len(retryable), len(items), retryable[0])
	}
	// Every other item was applied: the refused events are the
	// consumer's to dead-letter.
	var rs []sink.Rejection
	for i, err := range refused {
		if err != nil {
			rs = append(rs, sink.Rejection{Event: batch[i], Err: err})
		}
	}
	return sink.Reject(rs...)
}

// chunk returns the end of the bulk request that starts at items[start]
// and its NDJSON body: as many items as fit in the flush bytes, at least
// one.
func (s *Sink) chunk(items []bulkItem, start int) (int, []byte) {
	var buf bytes.Buffer
	end := start
	for ; end < len(items); end++ {
		it := &items[end]
		meta, _ := json.Marshal(map[string]any{it.action: map[string]any{
			"_index": it.index, "_id": it.id, "version": it.version, "version_type": "external"}})
		if end > start && buf.Len()+len(meta)+len(it.body)+2 > s.flushBytes {
			break
		}
		buf.Write(meta)
		buf.WriteByte('\n')
		if it.body != nil {
			buf.Write(it.body)
			buf.WriteByte('\n')
		}
	}
	return end, buf.Bytes()
}

// bulk sends one bulk request and sets results[i] for items[i]. It returns
// an error only when ctx ended.
func (s *Sink) bulk(ctx context.Context, items []bulkItem, body []byte, results []error) error {
	req := esapi.BulkRequest{Body: bytes.NewReader(body), Refresh: s.refresh}
	res, err := req.Do(ctx, s.client)
	if cerr := ctx.Err(); cerr != nil {
		if err == nil {
			drain(res.Body)
		}
		return fmt.Errorf("es: write: %w", cerr)
	}
	if err != nil {
		for i := range items {
			results[i] = fmt.Errorf("%w: bulk request: %w", ErrUnavailable, err)
		}
		return nil
	}
	defer drain(res.Body)
	if res.IsError() {
		// The request was refused as a whole: a 429 or 5xx for now, any
		// other status for good (request validation, a request too large).
		e := decodeError(res)
		for i, it := range items {
			ie := &ItemError{Index: it.index, DocID: it.id, Status: res.StatusCode, Type: e.Type,
				Reason: "bulk request refused as a whole: " + e.Reason}
			if res.StatusCode < 500 && res.StatusCode != 429 {
				ie.Permanent = true
			}
			results[i] = ie
		}
		return nil
	}
	var blk esutil.BulkIndexerResponse
	if err := json.NewDecoder(res.Body).Decode(&blk); err != nil || len(blk.Items) != len(items) {
		for i := range items {
			results[i] = fmt.Errorf("%w: bulk response of %d items for %d sent (%v)", ErrUnavailable, len(blk.Items), len(items), err)
		}
		return nil
	}
	for i, m := range blk.Items {
		for _, r := range m {
			if r.Error.Type != "" || r.Status > 201 {
				results[i] = s.classify(items[i], r)
			}
		}
	}
	return nil
}

// classify turns a failed bulk item into nil (a 409 version conflict; a
// delete of a missing document) or an error.
func (s *Sink) classify(it bulkItem, r esutil.BulkIndexerResponseItem) error {
	switch {
	case r.Status == 409 && (r.Error.Type == "" || r.Error.Type == "version_conflict_engine_exception"):
		s.conflicts.WithLabelValues(it.index).Inc()
		s.log.Debug("older or replayed event ignored", "index", it.index, "id", it.id, "version", it.version)
		return nil
	case it.action == "delete" && r.Status == 404 && r.Error.Type == "":
		return nil
	}
	reason := r.Error.Reason
	if r.Error.Cause.Reason != "" {
		reason += " (caused by " + r.Error.Cause.Type + ": " + r.Error.Cause.Reason + ")"
	}
	return &ItemError{Index: it.index, DocID: it.id, Status: r.Status, Type: r.Error.Type, Reason: reason}
}

// item builds the bulk item of one event; ok is false for events the sink
// skips. An event Elasticsearch's request validation would refuse is an
// [*ItemError] wrapping [ErrRejected].
func (s *Sink) item(ctx context.Context, ev *sink.Event, built map[string]builtDoc) (it bulkItem, ok bool, err error) {
	it = bulkItem{index: s.Index(ev.EntityType), id: ev.Subject, version: ev.Sequence}
	switch ev.Type {
	case schema.OpDelete:
		it.action = "delete"
	case schema.OpCreate, schema.OpUpdate, schema.OpSnapshot:
		it.action = "index"
	default:
		s.log.Debug("event skipped", "type", ev.Type, "id", ev.ID)
		return it, false, nil
	}
	if reason := invalidItem(it); reason != "" {
		return it, false, &ItemError{Index: it.index, DocID: it.id, Status: 400, Type: "action_request_validation_exception",
			Reason: reason + " (refused before sending)", Permanent: true}
	}
	key := it.index + "/" + it.id
	if it.action == "delete" {
		if b, ok := built[key]; !ok || b.version < it.version {
			built[key] = builtDoc{version: it.version}
		}
		return it, true, nil
	}
	doc, err := s.document(ctx, ev)
	if err != nil {
		return it, false, err
	}
	if len(ev.Unchanged) > 0 {
		prev, ok := built[key]
		if !ok {
			if prev.doc, err = s.stored(ctx, it.index, it.id); err != nil {
				return it, false, err
			}
		}
		sink.MergeUnchanged(doc, prev.doc, ev)
	}
	if b, ok := built[key]; !ok || b.version < it.version {
		built[key] = builtDoc{version: it.version, doc: doc}
	}
	if it.body, err = json.Marshal(doc); err != nil {
		return it, false, fmt.Errorf("%w: event %s: %w", ErrData, ev.ID, err)
	}
	return it, true, nil
}

// builtDoc is the latest document a batch built for one id (nil for a
// delete): what later events of the batch with unchanged fields merge with.
type builtDoc struct {
	version int64
	doc     map[string]any
}

// stored returns the document Elasticsearch holds, or nil when there is
// none.
func (s *Sink) stored(ctx context.Context, index, id string) (map[string]any, error) {
	res, err := s.client.Get(index, id, s.client.Get.WithContext(ctx))
	if err != nil {
		return nil, fmt.Errorf("%w: get %s/%s: %w", ErrUnavailable, index, id, err)
	}
	defer drain(res.Body)
	if res.StatusCode == 404 {
		return nil, nil
	}
	if res.IsError() {
		return nil, responseError("get "+index+"/"+id, res)
	}
	var body struct {
		Source map[string]any `json:"_source"`
	}
	dec := json.NewDecoder(res.Body)
	dec.UseNumber() // kept fields stay exact
	if err := dec.Decode(&body); err != nil {
		return nil, fmt.Errorf("%w: get %s/%s: %w", ErrUnavailable, index, id, err)
	}
	return body.Source, nil
}

// invalidItem returns why Elasticsearch's request validation refuses an
// item, or "": the id must be set and at most [MaxIDBytes] bytes of UTF-8,
// and an external version must not be negative.
func invalidItem(it bulkItem) string {
	switch {
	case it.id == "":
		return "id is missing (the event has no subject)"
	case len(it.id) > MaxIDBytes:
		return fmt.Sprintf("id is too long, must be no longer than %d bytes but was: %d", MaxIDBytes, len(it.id))
	case it.version < 0:
		return fmt.Sprintf("illegal version value [%d] for version type [EXTERNAL] (the event's sequence)", it.version)
	}
	return ""
}

// document returns the event's data as a JSON object with the envelope
// under [EnvelopeField] (see sink.Document); data errors wrap [ErrData].
func (s *Sink) document(ctx context.Context, ev *sink.Event) (map[string]any, error) {
	doc, err := sink.Document(ctx, s.reg, ev, EnvelopeField)
	if errors.Is(err, sink.ErrData) {
		return nil, fmt.Errorf("%w: %w", ErrData, err)
	}
	return doc, err
}

// Close marks the sink closed; Write is synchronous, so nothing is
// buffered. The client is the caller's and stays open.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return sink.ErrClosed
	}
	s.closed = true
	return nil
}

type esError struct {
	Type   string `json:"type"`
	Reason string `json:"reason"`
}

func decodeError(res *esapi.Response) esError {
	var body struct {
		Error esError `json:"error"`
	}
	_ = json.NewDecoder(res.Body).Decode(&body)
	return body.Error
}

func responseError(what string, res *esapi.Response) error {
	e := decodeError(res)
	err := fmt.Errorf("es: %s: %d %s: %s", what, res.StatusCode, e.Type, e.Reason)
	if retryableStatus(res.StatusCode) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}

func drain(r io.ReadCloser) {
	if r != nil {
		_, _ = io.Copy(io.Discard, r)
		_ = r.Close()
	}
}
