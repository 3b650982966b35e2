package schema

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/hamba/avro/v2"
)

// ErrDecode is wrapped by every error of [Codec.Decode]: the bytes are not a
// slate envelope this codec can read. Such a record is poison: retrying will
// not help, it belongs in a dead-letter topic.
var ErrDecode = errors.New("schema: cannot decode")

// Codec encodes envelopes into the Confluent wire format and back. The
// envelope schema is registered once per topic subject; a writer schema that
// differs from the reader's is resolved against it, so readers keep working
// while the envelope evolves compatibly. It is safe for concurrent use.
type Codec struct {
	reg    Registry
	reader avro.Schema
	limits Limits
	api    avro.API

	mu       sync.Mutex
	ids      map[string]int   // topic -> id of the reader schema in its value subject
	resolved map[int]readPlan // writer id -> schemas to decode with
}

// readPlan is how data written with one writer schema is decoded: bounded
// by walking it with the writer schema, then decoded with the resolved one.
type readPlan struct {
	writer, read avro.Schema
}

// CodecOption configures [NewCodec].
type CodecOption func(*Codec)

// WithLimits bounds the work of decoding one envelope (default: the
// defaults of [Limits]). A record beyond them is poison: [Codec.Decode]
// fails wrapping [ErrDecode] and [ErrLimit].
func WithLimits(l Limits) CodecOption { return func(c *Codec) { c.limits = l.withDefaults() } }

// NewCodec returns a codec that registers and looks up schemas in reg.
func NewCodec(reg Registry, opts ...CodecOption) (*Codec, error) {
	s, err := avro.Parse(envelopeSchema)
	if err != nil {
		return nil, fmt.Errorf("schema: parse envelope schema: %w", err)
	}
	c := &Codec{reg: reg, reader: s, limits: Limits{}.withDefaults(), ids: make(map[string]int), resolved: make(map[int]readPlan)}
	for _, o := range opts {
		o(c)
	}
	c.api = c.limits.api()
	return c, nil
}

// SchemaID registers the envelope schema under the value subject of topic
// (once) and returns its id.
func (c *Codec) SchemaID(ctx context.Context, topic string) (int, error) {
	c.mu.Lock()
	id, ok := c.ids[topic]
	c.mu.Unlock()
	if ok {
		return id, nil
	}
	id, err := c.reg.Register(ctx, ValueSubject(topic), envelopeSchema)
	if err != nil {
		return 0, err
	}
	c.mu.Lock()
	c.ids[topic] = id
	c.resolved[id] = readPlan{writer: c.reader, read: c.reader}
	c.mu.Unlock()
	return id, nil
}

// Encode validates e and returns it framed for topic, appending to dst.
func (c *Codec) Encode(ctx context.Context, dst []byte, topic string, e *Envelope) ([]byte, error) {
	if err := e.Validate(); err != nil {
		return nil, err
	}
	id, err := c.SchemaID(ctx, topic)
	if err != nil {
		return nil, err
	}
	payload, err := avro.Marshal(c.reader, e)
	if err != nil {
		return nil, fmt.Errorf("schema: encode envelope %s: %w", e.ID, err)
	}
	return Frame(dst, id, payload), nil
}

// Decode reads a framed envelope. Errors about the bytes and a schema id the
// registry does not know wrap [ErrDecode]; an unreachable or failing
// registry is returned as is, since a retry may succeed, and so is ctx's
// error when ctx has ended. The work of one decode is bounded
// by the codec's [Limits] and by the record's length, whatever the record
// declares: a writer schema whose arrays or maps hold items of no bytes is
// refused ([ErrZeroSizeItems]), and a record that declares more items or
// bytes than it holds or than the limits allow is refused ([ErrLimit]).
func (c *Codec) Decode(ctx context.Context, b []byte) (Envelope, error) {
	var e Envelope
	if err := ctx.Err(); err != nil {
		return e, err
	}
	id, payload, err := Unframe(b)
	if err != nil {
		return e, fmt.Errorf("%w: %w", ErrDecode, err)
	}
	plan, err := c.writerSchema(ctx, id)
	if err != nil {
		return e, err
	}
	if err := checkBounds(plan.writer, payload, c.limits); err != nil {
		return e, fmt.Errorf("%w: envelope with schema id %d: %w", ErrDecode, id, err)
	}
	if err := c.api.Unmarshal(plan.read, payload, &e); err != nil {
		return e, fmt.Errorf("%w: envelope with schema id %d: %v", ErrDecode, id, err)
	}
	if err := e.Validate(); err != nil {
		return e, fmt.Errorf("%w: %w", ErrDecode, err)
	}
	return e, nil
}

func (c *Codec) writerSchema(ctx context.Context, id int) (readPlan, error) {
	c.mu.Lock()
	plan, ok := c.resolved[id]
	c.mu.Unlock()
	if ok {
		return plan, nil
	}
	w, err := lookupWriter(ctx, c.reg, id)
	if err != nil {
		return readPlan{}, err
	}
	plan = readPlan{writer: w, read: c.reader}
	if w.Fingerprint() != c.reader.Fingerprint() {
		// A fresh checker per resolution: the checker caches by a
		// fingerprint that ignores defaults.
		plan.read, err = avro.NewSchemaCompatibility().Resolve(c.reader, w)
		if err != nil {
			return readPlan{}, fmt.Errorf("%w: writer schema id %d does not resolve to the envelope: %v", ErrDecode, id, err)
		}
	}
	c.mu.Lock()
	c.resolved[id] = plan
	c.mu.Unlock()
	return plan, nil
}

// EncodeData registers s under subject and returns v encoded with it in the
// Confluent wire format, ready for [Envelope.Data], and the dataschema
// reference ("<subject>/<id>") to store beside it.
func EncodeData(ctx context.Context, reg Registry, subject string, s avro.Schema, v any) ([]byte, string, error) {
	// Register the full JSON form: the canonical form (s.String()) drops
	// defaults, and without them the registry rejects compatible
	// evolutions such as adding an optional field.
	full, err := json.Marshal(s)
	if err != nil {
		return nil, "", fmt.Errorf("schema: data schema for %q: %w", subject, err)
	}
	id, err := reg.Register(ctx, subject, string(full))
	if err != nil {
		return nil, "", err
	}
	payload, err := avro.Marshal(s, v)
	if err != nil {
		return nil, "", fmt.Errorf("schema: encode data for %q: %w", subject, err)
	}
	return Frame(nil, id, payload), fmt.Sprintf("%s/%d", subject, id), nil
}

// DecodeData decodes Confluent-framed Avro data into v (a struct pointer, or
// *map[string]any for a generic record) with the writer's schema. Its work
// is bounded as [Codec.Decode]'s is, with the default [Limits].
func DecodeData(ctx context.Context, reg Registry, data []byte, v any) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	id, payload, err := Unframe(data)
	if err != nil {
		return fmt.Errorf("%w: data: %w", ErrDecode, err)
	}
	w, err := lookupWriter(ctx, reg, id)
	if err != nil {
		return err
	}
	if err := decodeBounded(defaultAPI, w, w, payload, defaultLimits, v); err != nil {
		return fmt.Errorf("%w: data with schema id %d: %w", ErrDecode, id, err)
	}
	return nil
}

var (
	defaultLimits = Limits{}.withDefaults()
	defaultAPI    = defaultLimits.api()
)

// decodeBounded bounds payload with the writer schema w (which
// [lookupWriter] checked) and l, then decodes it with read (w resolved to
// the reader's schema) into v.
func decodeBounded(api avro.API, w, read avro.Schema, payload []byte, l Limits, v any) error {
	if err := checkBounds(w, payload, l); err != nil {
		return err
	}
	return api.Unmarshal(read, payload, v)
}
