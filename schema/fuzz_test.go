package schema_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"

	"github.com/slatehq/slate/schema"
)

// mapRegistry is a fixed set of schemas by id: fuzzing needs no server,
// and registry behaviour is not what is fuzzed.
type mapRegistry map[int]avro.Schema

func (r mapRegistry) Register(context.Context, string, string) (int, error) {
	return 0, errors.New("mapRegistry: read only")
}

func (r mapRegistry) SchemaByID(_ context.Context, id int) (avro.Schema, error) {
	if s, ok := r[id]; ok {
		return s, nil
	}
	return nil, fmt.Errorf("%w: no schema %d", schema.ErrDecode, id)
}

// FuzzDecodeEnvelope feeds arbitrary bytes to the wire-format unframing and
// the envelope decode, with the envelope schema (id 1), a registered
// variant that adds an array, a map and a union (id 2), and one that adds an
// array of nulls (id 3), which Decode must refuse however few bytes declare
// however many items. Decode must not panic or hang, and what it accepts
// must encode back to an envelope that decodes the same.
func FuzzDecodeEnvelope(f *testing.F) {
	env := avro.MustParse(schema.EnvelopeSchema())
	s := schema.EnvelopeSchema()
	i := strings.LastIndex(s, "]")
	variant := avro.MustParse(s[:i] + `,{"name":"tags","type":{"type":"array","items":"string"},"default":[]},` +
		`{"name":"attrs","type":{"type":"map","values":["null","long"]},"default":{}}` + s[i:])
	nulls := avro.MustParse(s[:i] + `,{"name":"pad","type":{"type":"array","items":"null"},"default":[]}` + s[i:])
	reg := mapRegistry{1: env, 2: variant, 3: nulls}
	codec, err := schema.NewCodec(reg)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := codec.Decode(context.Background(), b)
		if err != nil {
			if !errors.Is(err, schema.ErrDecode) {
				t.Fatalf("Decode error %v does not wrap ErrDecode", err)
			}
			return
		}
		payload, err := avro.Marshal(env, e)
		if err != nil {
			t.Fatalf("decoded envelope does not encode: %v", err)
		}
		again, err := codec.Decode(context.Background(), schema.Frame(nil, 1, payload))
		if err != nil {
			t.Fatalf("re-encoded envelope does not decode: %v", err)
		}
		if !again.Time.Equal(e.Time) || again.ID != e.ID || !bytes.Equal(again.Data, e.Data) || again.Sequence != e.Sequence {
			t.Fatalf("round trip changed %+v into %+v", e, again)
		}
	})
}

// parseWriter parses a fuzzed writer schema as a registry that accepted
// it would have: hamba/avro's parser panics on some malformed schemas (an
// empty union with a default), which slate's registry refuses, so a panic
// here means the schema could never reach a decode.
func parseWriter(text string) (s avro.Schema, err error) {
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, fmt.Errorf("parser panic: %v", p)
		}
	}()
	return avro.ParseWithCache(text, "", &avro.SchemaCache{})
}

// FuzzDecodeData decodes arbitrary payloads with arbitrary writer schemas:
// DecodeData must not panic or hang, whatever either holds.
func FuzzDecodeData(f *testing.F) {
	f.Fuzz(func(t *testing.T, schemaText string, payload []byte) {
		s, err := parseWriter(schemaText)
		if err != nil {
			return
		}
		reg := mapRegistry{7: s}
		var v any
		if err := schema.DecodeData(context.Background(), reg, schema.Frame(nil, 7, payload), &v); err != nil && !errors.Is(err, schema.ErrDecode) {
			t.Fatalf("DecodeData error %v does not wrap ErrDecode", err)
		}
	})
}

// FuzzFromHeaders rebuilds envelopes from arbitrary ce_* header values:
// FromHeaders must not panic, and what it accepts must survive
// AppendHeaders and FromHeaders again unchanged.
func FuzzFromHeaders(f *testing.F) {
	f.Fuzz(func(t *testing.T, id, source, spec, typ, entity, subject, tm, seq, trace, dataSchema string) {
		hs := []schema.Header{
			{Key: schema.HeaderID, Value: []byte(id)},
			{Key: schema.HeaderSource, Value: []byte(source)},
			{Key: schema.HeaderSpecVersion, Value: []byte(spec)},
			{Key: schema.HeaderType, Value: []byte(typ)},
			{Key: schema.HeaderEntityType, Value: []byte(entity)},
			{Key: schema.HeaderSubject, Value: []byte(subject)},
			{Key: schema.HeaderTime, Value: []byte(tm)},
			{Key: schema.HeaderSequence, Value: []byte(seq)},
			{Key: schema.HeaderTraceParent, Value: []byte(trace)},
			{Key: schema.HeaderDataSchema, Value: []byte(dataSchema)},
		}
		e, err := schema.FromHeaders(hs)
		if err != nil {
			if !errors.Is(err, schema.ErrInvalidEnvelope) {
				t.Fatalf("FromHeaders error %v does not wrap ErrInvalidEnvelope", err)
			}
			return
		}
		again, err := schema.FromHeaders(schema.AppendHeaders(nil, &e))
		if err != nil {
			t.Fatalf("headers of an accepted envelope are refused: %v", err)
		}
		if !again.Time.Equal(e.Time) {
			t.Fatalf("time %v came back as %v", e.Time, again.Time)
		}
		again.Time = e.Time
		if !reflect.DeepEqual(again, e) {
			t.Fatalf("round trip changed %+v into %+v", e, again)
		}
	})
}
