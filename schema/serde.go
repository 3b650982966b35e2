package schema

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/registry"
)

// NameStrategy says under which registry subject a schema is registered,
// as Confluent's serializers' subject.name.strategy does.
type NameStrategy uint8

// The naming strategies of Confluent's serializers.
const (
	// RecordNameStrategy names the subject after the record's full name
	// (studio.Title): one subject per record type, whatever topic carries
	// it. It is the default of a [Serde], because an envelope's data is
	// nested in the envelope, whose own schema holds the topic's value
	// subject.
	RecordNameStrategy NameStrategy = iota
	// TopicNameStrategy names the subject <topic>-value (<topic>-key for
	// keys): one schema lineage per topic. Use it when the record itself
	// is the Kafka value.
	TopicNameStrategy
	// TopicRecordNameStrategy names the subject <topic>-<record full name>:
	// several record types per topic, each with its own lineage.
	TopicRecordNameStrategy
)

// ErrNameStrategy is wrapped when a subject cannot be named: a record
// strategy with a schema that is not a named type, or an unknown strategy.
var ErrNameStrategy = errors.New("schema: cannot name subject")

// String returns the strategy's name as Confluent's configuration spells
// it.
func (n NameStrategy) String() string {
	switch n {
	case RecordNameStrategy:
		return "RecordNameStrategy"
	case TopicNameStrategy:
		return "TopicNameStrategy"
	case TopicRecordNameStrategy:
		return "TopicRecordNameStrategy"
	}
	return fmt.Sprintf("NameStrategy(%d)", uint8(n))
}

// Subject returns the subject of a value (key false) or key (key true) with
// schema s on topic.
func (n NameStrategy) Subject(topic string, s avro.Schema, key bool) (string, error) {
	suffix := "-value"
	if key {
		suffix = "-key"
	}
	switch n {
	case TopicNameStrategy:
		return topic + suffix, nil
	case RecordNameStrategy, TopicRecordNameStrategy:
		named, ok := s.(avro.NamedSchema)
		if !ok {
			return "", fmt.Errorf("%w: %s needs a named schema, got %s", ErrNameStrategy, n, s.Type())
		}
		if n == RecordNameStrategy {
			return named.FullName(), nil
		}
		return topic + "-" + named.FullName(), nil
	}
	return "", fmt.Errorf("%w: unknown strategy %d", ErrNameStrategy, uint8(n))
}

// Serde encodes and decodes records of one type in the Confluent wire
// format, with schema evolution: it writes with its own schema (registered
// under the subject its [NameStrategy] names) and reads data written with
// any schema the registry knows by resolving the writer's schema against
// its own. A reader on schema v2 thus reads data written with v1 (fields v2
// added take their defaults), and a reader on v1 reads data written with v2
// (fields it does not know are skipped), whenever the two are compatible.
//
// Use it for an envelope's data ([Serde.SetData], [Serde.Data]) or for any
// Avro Kafka value. It is safe for concurrent use.
type Serde struct {
	reg      Registry
	schema   avro.Schema
	source   string // the schema as given: avro.Schema.String drops defaults
	strategy NameStrategy
	limits   Limits
	api      avro.API

	mu       sync.Mutex
	writers  map[int]avro.Schema // writer id -> writer schema, checked by CheckItems
	ids      map[string]int      // subject -> id of the serde's schema
	resolved map[int]avro.Schema // writer id -> schema to decode with
}

// SerdeOption configures [NewSerde].
type SerdeOption func(*Serde)

// WithNameStrategy sets the subject naming strategy (default
// [RecordNameStrategy]).
func WithNameStrategy(n NameStrategy) SerdeOption { return func(s *Serde) { s.strategy = n } }

// WithDecodeLimits bounds the work of decoding one record (default: the
// defaults of [Limits]). A record beyond them is poison: [Serde.Decode]
// fails wrapping [ErrDecode] and [ErrLimit].
func WithDecodeLimits(l Limits) SerdeOption { return func(s *Serde) { s.limits = l.withDefaults() } }

// NewSerde returns a serde for records of the Avro schema s (JSON), which
// is both the schema it writes with and the one it reads into.
func NewSerde(reg Registry, s string, opts ...SerdeOption) (*Serde, error) {
	if reg == nil {
		return nil, errors.New("schema: serde: registry is nil")
	}
	parsed, err := avro.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("schema: serde: parse schema: %w", err)
	}
	sd := &Serde{reg: reg, schema: parsed, source: s, limits: defaultLimits, ids: make(map[string]int), resolved: make(map[int]avro.Schema), writers: make(map[int]avro.Schema)}
	for _, o := range opts {
		o(sd)
	}
	sd.api = defaultAPI
	if sd.limits != defaultLimits {
		sd.api = sd.limits.api()
	}
	if _, err := sd.strategy.Subject("t", parsed, false); err != nil {
		return nil, err
	}
	return sd, nil
}

// Schema returns the serde's schema.
func (s *Serde) Schema() avro.Schema { return s.schema }

// Subject returns the subject the serde's schema is registered under for
// values of topic.
func (s *Serde) Subject(topic string) string {
	// NewSerde checked that the strategy can name this schema.
	sub, _ := s.strategy.Subject(topic, s.schema, false)
	return sub
}

// SchemaID registers the serde's schema under its subject for topic (once
// per subject) and returns its id.
func (s *Serde) SchemaID(ctx context.Context, topic string) (int, error) {
	subject := s.Subject(topic)
	s.mu.Lock()
	id, ok := s.ids[subject]
	s.mu.Unlock()
	if ok {
		return id, nil
	}
	id, err := s.reg.Register(ctx, subject, s.source)
	if err != nil {
		return 0, err
	}
	s.mu.Lock()
	s.ids[subject] = id
	s.resolved[id] = s.schema
	s.writers[id] = s.schema
	s.mu.Unlock()
	return id, nil
}

// Encode returns v encoded with the serde's schema in the Confluent wire
// format for topic, appending to dst.
func (s *Serde) Encode(ctx context.Context, dst []byte, topic string, v any) ([]byte, error) {
	id, err := s.SchemaID(ctx, topic)
	if err != nil {
		return nil, err
	}
	payload, err := avro.Marshal(s.schema, v)
	if err != nil {
		return nil, fmt.Errorf("schema: encode %s: %w", s.Subject(topic), err)
	}
	return Frame(dst, id, payload), nil
}

// Decode reads Confluent-framed data written with any registered schema
// into v (a pointer to a struct with avro tags, or to map[string]any),
// resolving the writer's schema against the serde's. Errors about the bytes,
// a schema id the registry does not know or an unresolvable writer schema
// wrap [ErrDecode]; an unreachable or failing registry is returned as is,
// and so is ctx's error when ctx has ended.
// The work of one decode is bounded as [Codec.Decode]'s is, by the serde's
// [Limits] and the length of data.
func (s *Serde) Decode(ctx context.Context, data []byte, v any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	id, payload, err := Unframe(data)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDecode, err)
	}
	w, err := s.writerSchema(ctx, id)
	if err != nil {
		return err
	}
	rs, err := s.readSchema(id, w)
	if err != nil {
		return err
	}
	if err := decodeBounded(s.api, w, rs, payload, s.limits, v); err != nil {
		return fmt.Errorf("%w: data with schema id %d: %w", ErrDecode, id, err)
	}
	return nil
}

// writerSchema returns the writer schema of id, refusing one whose arrays
// or maps hold items of no bytes.
func (s *Serde) writerSchema(ctx context.Context, id int) (avro.Schema, error) {
	s.mu.Lock()
	w, ok := s.writers[id]
	s.mu.Unlock()
	if ok {
		return w, nil
	}
	w, err := lookupWriter(ctx, s.reg, id)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.writers[id] = w
	s.mu.Unlock()
	return w, nil
}

// readSchema returns the schema that decodes data written with w, the
// writer schema of id, into the serde's schema.
func (s *Serde) readSchema(id int, w avro.Schema) (avro.Schema, error) {
	s.mu.Lock()
	rs, ok := s.resolved[id]
	s.mu.Unlock()
	if ok {
		return rs, nil
	}
	var err error
	rs = s.schema
	if w.Fingerprint() != s.schema.Fingerprint() {
		// A fresh checker per resolution: the checker caches by a
		// fingerprint that ignores defaults.
		rs, err = avro.NewSchemaCompatibility().Resolve(s.schema, w)
		if err != nil {
			return nil, fmt.Errorf("%w: writer schema id %d does not resolve to %s: %v", ErrDecode, id, s.schema.Type(), err)
		}
	}
	s.mu.Lock()
	s.resolved[id] = rs
	s.mu.Unlock()
	return rs, nil
}

// SetData encodes v as e's data for the topic e travels on, and sets
// DataContentType to Avro and DataSchema to "<subject>/<id>".
func (s *Serde) SetData(ctx context.Context, e *Envelope, topic string, v any) error {
	data, err := s.Encode(ctx, nil, topic, v)
	if err != nil {
		return err
	}
	id, err := s.SchemaID(ctx, topic)
	if err != nil {
		return err
	}
	e.Data, e.DataContentType, e.DataSchema = data, ContentTypeAvro, fmt.Sprintf("%s/%d", s.Subject(topic), id)
	return nil
}

// Data decodes e's data into v (see [Serde.Decode]). It fails wrapping
// [ErrDecode] when e has no data or its data is not Avro.
func (s *Serde) Data(ctx context.Context, e *Envelope, v any) error {
	switch {
	case len(e.Data) == 0:
		return fmt.Errorf("%w: envelope %s has no data", ErrDecode, e.ID)
	case e.DataContentType != ContentTypeAvro:
		return fmt.Errorf("%w: envelope %s data is %q, not %s", ErrDecode, e.ID, e.DataContentType, ContentTypeAvro)
	}
	return s.Decode(ctx, e.Data, v)
}

// Confluent Schema Registry error codes that say a looked-up schema does
// not exist.
const (
	codeSubjectNotFound = 40401
	codeSchemaNotFound  = 40403
)

// lookupWriter fetches the writer schema of id, the schema id a record
// names, and refuses one whose arrays or maps hold items of no bytes
// ([CheckItems]). An unknown id (see classifyLookup) and a refused schema
// fail wrapping [ErrDecode]; a failing registry is returned as is.
func lookupWriter(ctx context.Context, reg Registry, id int) (avro.Schema, error) {
	w, err := reg.SchemaByID(ctx, id)
	if err != nil {
		return nil, classifyLookup(id, err)
	}
	if err := CheckItems(w); err != nil {
		return nil, fmt.Errorf("%w: writer schema id %d: %w", ErrDecode, id, err)
	}
	return w, nil
}

// classifyLookup classifies a registry lookup error for the schema id a
// record names. The registry answering that it does not know the schema
// (HTTP 404, Confluent codes 40401 subject not found and 40403 schema not
// found) says the record is poison, however often it is retried: the error
// wraps [ErrDecode]. Anything else (registry unreachable, 5xx, a
// cancelled context) is returned as is, since a retry may succeed.
func classifyLookup(id int, err error) error {
	var re registry.Error
	if !errors.As(err, &re) {
		return err
	}
	if re.Code == codeSchemaNotFound || re.Code == codeSubjectNotFound || re.StatusCode == http.StatusNotFound {
		return fmt.Errorf("%w: schema id %d is unknown to the registry: %w", ErrDecode, id, err)
	}
	return err
}
