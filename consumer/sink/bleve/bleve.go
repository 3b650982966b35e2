package bleve

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"

	blv "github.com/blevesearch/bleve/v2"
	"github.com/blevesearch/bleve/v2/mapping"
	"github.com/blevesearch/bleve/v2/search/query"
	bolt "go.etcd.io/bbolt"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/schema"
)

// IndexPrefix is put before the lower-cased entity type to name its index
// (and its directory): entity type "title" is kept in "studio-title", the
// name the es sink gives its index.
const IndexPrefix = "studio-"

// EnvelopeField is the document field that holds the envelope's attributes
// (id, type, entitytype, subject, sequence, time, source, traceparent,
// dataschema) and the Kafka coordinates (topic, partition, offset), as in
// the es sink. Its string fields are indexed as keywords, so
// `slate.subject:"t-1"` matches exactly.
const EnvelopeField = "slate"

// DefaultSearchSize is the number of hits [Sink.Search] returns when asked
// for size 0 or less.
const DefaultSearchSize = 10

var (
	// ErrConfig is wrapped by every configuration error of [New].
	ErrConfig = errors.New("bleve: invalid config")
	// ErrData is wrapped when an event's data cannot be decoded into a
	// document.
	ErrData = errors.New("bleve: undecodable data")
	// ErrRejected is wrapped when an event cannot be stored whatever the
	// retry: an entity type that is not a valid index name, an empty
	// subject.
	ErrRejected = errors.New("bleve: event rejected")
	// ErrStore is wrapped when the index on disk could not be opened,
	// read or written.
	// It matches [sink.ErrUnavailable]: a later retry may succeed.
	ErrStore = sink.NewUnavailable("bleve: index store failed")
	// ErrQuery is wrapped when a search query cannot be parsed.
	ErrQuery = errors.New("bleve: bad query")
)

// Option configures [New].
type Option func(*Sink)

// WithRegistry sets the schema registry used to decode Avro data. Without
// one, events with Avro data fail with [ErrData].
func WithRegistry(r schema.Registry) Option { return func(s *Sink) { s.reg = r } }

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(s *Sink) { s.log = l } }

// Hit is one search result.
type Hit struct {
	ID      string         // the document id: the envelope's subject
	Score   float64        // the relevance score
	Version int64          // the sequence of the event that wrote the document
	Doc     map[string]any // the document, as [Sink.Get] returns it
	// Source is the document's JSON as it was written: a reader that
	// needs integers past 2^53 exact decodes it with json.Decoder.UseNumber
	// rather than reading Doc's float64s.
	Source json.RawMessage
}

// Stored is what [Sink.Lookup] finds for one id.
type Stored struct {
	ID string
	// Version is the sequence of the event that last wrote or deleted
	// the document; 0 when the id was never written.
	Version int64
	// Live is false when the id was never written or was deleted.
	Live bool
	// Source is the document's JSON as it was written, when live.
	Source json.RawMessage
}

// Sink keeps one Bleve index per entity type under a directory. Write must
// not be called concurrently (the consumer never does); Search, Get and
// Count may be called at any time, also during a Write.
type Sink struct {
	dir string
	reg schema.Registry
	log *slog.Logger

	mu      sync.Mutex
	closed  bool
	indexes map[string]*index // by index name
}

// index is one entity type's store: the Bleve index that answers
// searches and, beside it, a bbolt file with each document's version and
// source (kept outside Bleve's internal key space, which Bleve rewrites
// whole on every persist).
type index struct {
	name string
	bl   blv.Index
	db   *bolt.DB
}

var docsBucket = []byte("docs")

func (ix *index) close() error {
	return errors.Join(ix.bl.Close(), ix.db.Close())
}

var _ sink.Sink = (*Sink)(nil)

// Name returns "bleve", the sink's name in consumer.ToSinks: the label of
// its slate_sink_* metrics and the key of its per-sink dedupe marks.
func (s *Sink) Name() string { return "bleve" }

// New opens or creates the directory that holds the indices. Indices are
// opened when first used and created by the first write of their entity
// type; what a previous Sink wrote under dir is found again. One Sink at a
// time uses a directory: a second one waits up to 5 s for the file lock of
// an index and then fails with [ErrStore].
func New(dir string, opts ...Option) (*Sink, error) {
	s := &Sink{dir: dir, log: slog.New(slog.DiscardHandler), indexes: map[string]*index{}}
	for _, o := range opts {
		o(s)
	}
	if dir == "" {
		return nil, fmt.Errorf("%w: dir is empty", ErrConfig)
	}
	if s.log == nil {
		return nil, fmt.Errorf("%w: logger is nil", ErrConfig)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return s, nil
}

// Dir returns the directory that holds the indices.
func (s *Sink) Dir() string { return s.dir }

// Index returns the name of the index (a directory under [Sink.Dir]) that
// holds an entity type.
func (s *Sink) Index(entityType string) string { return IndexPrefix + strings.ToLower(entityType) }

var validName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// index returns the open index of an entity type. It creates the index
// when create is true and returns nil, nil when the index does not exist
// and create is false.
func (s *Sink) index(entityType string, create bool) (*index, error) {
	name := s.Index(entityType)
	if !validName.MatchString(strings.ToLower(entityType)) {
		return nil, fmt.Errorf("%w: entity type %q is not a valid index name", ErrRejected, entityType)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, sink.ErrClosed
	}
	if ix, ok := s.indexes[name]; ok {
		return ix, nil
	}
	path := filepath.Join(s.dir, name)
	bl, err := blv.Open(path)
	switch {
	case err == nil:
	case errors.Is(err, blv.ErrorIndexPathDoesNotExist):
		if !create {
			return nil, nil
		}
		if bl, err = createIndex(s.dir, name); err != nil {
			return nil, fmt.Errorf("%w: create %s: %w", ErrStore, path, err)
		}
		s.log.Info("index created", "index", name, "path", path)
	default:
		return nil, fmt.Errorf("%w: open %s: %w", ErrStore, path, err)
	}
	db, err := bolt.Open(path+".versions", 0o644, &bolt.Options{Timeout: 5 * time.Second})
	if err == nil {
		err = db.Update(func(tx *bolt.Tx) error {
			_, err := tx.CreateBucketIfNotExists(docsBucket)
			return err
		})
		if err != nil {
			_ = db.Close()
		}
	}
	if err != nil {
		_ = bl.Close()
		return nil, fmt.Errorf("%w: open %s.versions: %w", ErrStore, path, err)
	}
	ix := &index{name: name, bl: bl, db: db}
	s.indexes[name] = ix
	return ix, nil
}

// createIndex creates the index name in dir whole or not at all: it is
// built under a hidden name (never an index's) and renamed into place, so
// that a process killed while creating it leaves no half-made index that
// every later open would fail on.
func createIndex(dir, name string) (blv.Index, error) {
	path, tmp := filepath.Join(dir, name), filepath.Join(dir, ".creating-"+name)
	if err := os.RemoveAll(tmp); err != nil {
		return nil, err
	}
	bl, err := blv.New(tmp, newMapping())
	if err != nil {
		return nil, err
	}
	if err := bl.Close(); err != nil {
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		return nil, err
	}
	return blv.Open(path)
}

// newMapping indexes the data dynamically (text with the standard
// analyzer, numbers, dates) and the envelope's strings as keywords. Field
// values are not stored in the index: the document is kept whole next to
// its version.
func newMapping() mapping.IndexMapping {
	kw := blv.NewKeywordFieldMapping()
	num := blv.NewNumericFieldMapping()
	env := blv.NewDocumentMapping()
	for _, f := range []string{"id", "type", "entitytype", "subject", "source", "traceparent", "dataschema", "topic"} {
		env.AddFieldMappingsAt(f, kw)
	}
	for _, f := range []string{"sequence", "partition", "offset"} {
		env.AddFieldMappingsAt(f, num)
	}
	env.AddFieldMappingsAt("time", blv.NewDateTimeFieldMapping())
	m := blv.NewIndexMapping()
	m.StoreDynamic = false
	m.DefaultMapping.AddSubDocumentMapping(EnvelopeField, env)
	return m
}

// record is what the index keeps for a document id next to the document:
// the version and, unless the document was deleted, its source.
type record struct {
	known   bool // a version is stored
	version int64
	live    bool
	source  []byte // JSON, when live
}

func (r record) encode() []byte {
	b := make([]byte, 9, 9+len(r.source))
	binary.BigEndian.PutUint64(b, uint64(r.version))
	if r.live {
		b[8] = 1
	}
	return append(b, r.source...)
}

// getRecord reads the record of id within tx; the source is copied out.
func getRecord(tx *bolt.Tx, name, id string) (record, error) {
	b := tx.Bucket(docsBucket).Get([]byte(id))
	if b == nil {
		return record{}, nil
	}
	if len(b) < 9 {
		return record{}, fmt.Errorf("%w: %s: version record of %s is %d bytes", ErrStore, name, id, len(b))
	}
	return record{known: true, version: int64(binary.BigEndian.Uint64(b)), live: b[8] == 1,
		source: append([]byte(nil), b[9:]...)}, nil
}

func (ix *index) load(id string) (rec record, err error) {
	err = ix.db.View(func(tx *bolt.Tx) error {
		rec, err = getRecord(tx, ix.name, id)
		return err
	})
	if err != nil && !errors.Is(err, ErrStore) {
		err = fmt.Errorf("%w: %s: read %s: %w", ErrStore, ix.name, id, err)
	}
	return rec, err
}

// change is the state one write leaves for a document.
type change struct {
	rec record
	doc map[string]any // what is indexed, when live
}

// pending collects the changes of one batch to one index.
type pending struct {
	ix      *index
	tx      *bolt.Tx // read transaction for the version lookups
	changes map[string]*change
	order   []string
}

// Write applies the batch: per index, one Bleve batch with the documents,
// then one bbolt transaction with their versions, each on disk before the
// next step. An event whose sequence is not newer than the stored version
// (a DELETE's too) changes nothing. TRUNCATE events are skipped. Events
// that Elasticsearch would refuse or that cannot become documents
// ([ErrData]; no subject, a subject over 512 bytes, a negative sequence)
// are left out and named in a [*sink.RejectedError] once the rest is
// applied.
func (s *Sink) Write(ctx context.Context, batch []sink.Event) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return sink.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("bleve: write: %w", err)
	}
	byIndex := map[string]*pending{}
	var indexOrder []string
	skipped := 0
	var refused []sink.Rejection // events that cannot be documents
	for i := range batch {
		ev := &batch[i]
		switch ev.Type {
		case schema.OpCreate, schema.OpUpdate, schema.OpSnapshot, schema.OpDelete:
		default:
			s.log.Debug("event skipped", "type", ev.Type, "id", ev.ID)
			continue
		}
		if reason := invalidEvent(ev); reason != "" {
			refused = append(refused, sink.Rejection{Event: *ev, Err: fmt.Errorf("%w: event %s %s", ErrRejected, ev.ID, reason)})
			continue
		}
		name := s.Index(ev.EntityType)
		p := byIndex[name]
		if p == nil {
			ix, err := s.index(ev.EntityType, true)
			if errors.Is(err, ErrRejected) { // an entity type that is no index name
				refused = append(refused, sink.Rejection{Event: *ev, Err: err})
				continue
			}
			if err != nil {
				return err
			}
			tx, err := ix.db.Begin(false)
			if err != nil {
				return fmt.Errorf("%w: %s: %w", ErrStore, name, err)
			}
			defer func() { _ = tx.Rollback() }()
			p = &pending{ix: ix, tx: tx, changes: map[string]*change{}}
			byIndex[name] = p
			indexOrder = append(indexOrder, name)
		}
		cur := p.changes[ev.Subject]
		if cur == nil {
			rec, err := getRecord(p.tx, name, ev.Subject)
			if err != nil {
				return err
			}
			cur = &change{rec: rec}
		}
		next, ok, err := s.apply(ctx, cur, ev)
		if errors.Is(err, ErrData) {
			refused = append(refused, sink.Rejection{Event: *ev, Err: err})
			continue
		}
		if err != nil {
			return err
		}
		if !ok {
			skipped++
			continue
		}
		if _, seen := p.changes[ev.Subject]; !seen {
			p.order = append(p.order, ev.Subject)
		}
		p.changes[ev.Subject] = next
	}
	for _, name := range indexOrder {
		_ = byIndex[name].tx.Rollback()
	}
	for _, name := range indexOrder {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("bleve: write: %w", err)
		}
		p := byIndex[name]
		if len(p.order) == 0 {
			continue
		}
		// The documents first, then their versions: after a crash in
		// between, the stored version is the older one and the retried
		// batch applies the same events again.
		b := p.ix.bl.NewBatch()
		for _, id := range p.order {
			c := p.changes[id]
			if c.rec.live {
				if err := b.Index(id, c.doc); err != nil {
					return fmt.Errorf("%w: %s/%s: %w", ErrRejected, name, id, err)
				}
			} else {
				b.Delete(id)
			}
		}
		err := p.ix.bl.Batch(b)
		if err == nil {
			err = p.ix.db.Update(func(tx *bolt.Tx) error {
				bk := tx.Bucket(docsBucket)
				for _, id := range p.order {
					if err := bk.Put([]byte(id), p.changes[id].rec.encode()); err != nil {
						return err
					}
				}
				return nil
			})
		}
		if err != nil {
			return s.closedOr(fmt.Errorf("%w: write %s: %w", ErrStore, name, err))
		}
	}
	if skipped > 0 {
		s.log.Debug("older or replayed events ignored", "count", skipped)
	}
	return sink.Reject(refused...)
}

// maxIDBytes is Elasticsearch's bound on a document id, in UTF-8 bytes,
// kept here so that both search sinks refuse the same events.
const maxIDBytes = 512

// invalidEvent returns why the es sink would refuse ev, or "".
func invalidEvent(ev *sink.Event) string {
	switch {
	case ev.Subject == "":
		return "has no subject"
	case len(ev.Subject) > maxIDBytes:
		return fmt.Sprintf("has a subject of %d bytes, more than %d", len(ev.Subject), maxIDBytes)
	case ev.Sequence < 0:
		return fmt.Sprintf("has a negative sequence %d", ev.Sequence)
	}
	return ""
}

// apply returns the state ev leaves on top of cur, or ok=false when the
// stored version wins.
func (s *Sink) apply(ctx context.Context, cur *change, ev *sink.Event) (*change, bool, error) {
	// As Elasticsearch with version_type=external: only a greater version
	// than the stored one (a document's or a tombstone's) is applied.
	if cur.rec.known && ev.Sequence <= cur.rec.version {
		return nil, false, nil
	}
	if ev.Type == schema.OpDelete {
		return &change{rec: record{known: true, version: ev.Sequence}}, true, nil
	}
	doc, err := s.document(ctx, ev)
	if err != nil {
		return nil, false, err
	}
	if len(ev.Unchanged) > 0 && cur.rec.live {
		var prev map[string]any
		if err := sink.DecodeJSON(cur.rec.source, &prev); err != nil { // kept fields stay exact
			return nil, false, fmt.Errorf("%w: stored source of %s: %w", ErrStore, ev.Subject, err)
		}
		sink.MergeUnchanged(doc, prev, ev)
	}
	src, err := json.Marshal(doc)
	if err != nil {
		return nil, false, fmt.Errorf("%w: event %s: %w", ErrData, ev.ID, err)
	}
	// The index sees the document as Get returns it: plain JSON values.
	var indexed map[string]any
	if err := json.Unmarshal(src, &indexed); err != nil {
		return nil, false, fmt.Errorf("%w: event %s: %w", ErrData, ev.ID, err)
	}
	return &change{rec: record{known: true, version: ev.Sequence, live: true, source: src}, doc: indexed}, true, nil
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

// Get returns the document of an entity and the version (sequence) that
// wrote it. found is false when the entity was never written or was
// deleted; after a delete, version is the delete's sequence.
func (s *Sink) Get(ctx context.Context, entityType, id string) (doc map[string]any, version int64, found bool, err error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, false, fmt.Errorf("bleve: get: %w", err)
	}
	ix, err := s.index(entityType, false)
	if err != nil || ix == nil {
		return nil, 0, false, err
	}
	rec, err := ix.load(id)
	if err != nil {
		return nil, 0, false, s.closedOr(err)
	}
	if !rec.live {
		return nil, rec.version, false, nil
	}
	if err := json.Unmarshal(rec.source, &doc); err != nil {
		return nil, 0, false, fmt.Errorf("%w: source of %s: %w", ErrStore, id, err)
	}
	return doc, rec.version, true, nil
}

// Lookup returns what the index of an entity type holds for each of ids,
// in their order, read in one transaction: one call for a batch of ids
// where [Sink.Get] is one per id. An entity type that was never written
// holds nothing for any id.
func (s *Sink) Lookup(ctx context.Context, entityType string, ids []string) ([]Stored, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("bleve: lookup: %w", err)
	}
	out := make([]Stored, len(ids))
	for i, id := range ids {
		out[i].ID = id
	}
	ix, err := s.index(entityType, false)
	if err != nil || ix == nil {
		return out, err
	}
	err = ix.db.View(func(tx *bolt.Tx) error {
		for i, id := range ids {
			rec, err := getRecord(tx, ix.name, id)
			if err != nil {
				return err
			}
			out[i].Version, out[i].Live = rec.version, rec.live
			if rec.live {
				out[i].Source = rec.source
			}
		}
		return nil
	})
	if err != nil {
		if !errors.Is(err, ErrStore) {
			err = fmt.Errorf("%w: %s: lookup: %w", ErrStore, ix.name, err)
		}
		return nil, s.closedOr(err)
	}
	return out, nil
}

// Search runs a Bleve query string (for example `name:heat`,
// `+slate.type:UPDATE budget:>1000`; "" or "*" matches everything) against
// the index of an entity type and returns up to size hits (size <= 0 means
// [DefaultSearchSize]), best first, each with its document. An entity type
// that was never written has no hits.
func (s *Sink) Search(ctx context.Context, entityType, queryString string, size int) ([]Hit, error) {
	ix, err := s.index(entityType, false)
	if err != nil || ix == nil {
		return nil, err
	}
	if size <= 0 {
		size = DefaultSearchSize
	}
	var q query.Query
	if qs := strings.TrimSpace(queryString); qs == "" || qs == "*" {
		q = blv.NewMatchAllQuery()
	} else {
		qq := blv.NewQueryStringQuery(qs)
		if _, err := qq.Parse(); err != nil {
			return nil, fmt.Errorf("%w: %q: %w", ErrQuery, queryString, err)
		}
		q = qq
	}
	res, err := ix.bl.SearchInContext(ctx, blv.NewSearchRequestOptions(q, size, 0, false))
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("bleve: search: %w", ctx.Err())
		}
		return nil, s.closedOr(fmt.Errorf("%w: search %s: %w", ErrStore, s.Index(entityType), err))
	}
	hits := make([]Hit, 0, len(res.Hits))
	for _, h := range res.Hits {
		rec, err := ix.load(h.ID)
		if err != nil {
			return nil, s.closedOr(err)
		}
		if !rec.live {
			continue // deleted after the search ran
		}
		hit := Hit{ID: h.ID, Score: h.Score, Version: rec.version, Source: rec.source}
		if err := json.Unmarshal(rec.source, &hit.Doc); err != nil {
			return nil, fmt.Errorf("%w: source of %s: %w", ErrStore, h.ID, err)
		}
		hits = append(hits, hit)
	}
	return hits, nil
}

// Count returns how many documents the index of an entity type holds
// (deleted ones not counted).
func (s *Sink) Count(ctx context.Context, entityType string) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("bleve: count: %w", err)
	}
	ix, err := s.index(entityType, false)
	if err != nil || ix == nil {
		return 0, err
	}
	n, err := ix.bl.DocCount()
	if err != nil {
		return 0, s.closedOr(fmt.Errorf("%w: count %s: %w", ErrStore, s.Index(entityType), err))
	}
	return n, nil
}

// closedOr returns [sink.ErrClosed] if the sink was closed (an index
// closed under a running call fails it), err otherwise.
func (s *Sink) closedOr(err error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return sink.ErrClosed
	}
	return err
}

// Close closes the indices; every write already returned is on disk.
// Calls after Close return [sink.ErrClosed].
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return sink.ErrClosed
	}
	s.closed = true
	indexes := s.indexes
	s.indexes = nil
	s.mu.Unlock()
	// Closing waits for a Write's read transactions; that Write fails
	// with ErrClosed at its next step and releases them.
	var errs []error
	for name, ix := range indexes {
		if err := ix.close(); err != nil {
			errs = append(errs, fmt.Errorf("%w: close %s: %w", ErrStore, name, err))
		}
	}
	return errors.Join(errs...)
}
