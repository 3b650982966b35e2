package schema_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

// envelopeWith returns the envelope schema with extra fields appended.
func envelopeWith(t *testing.T, fields string) string {
	t.Helper()
	s := schema.EnvelopeSchema()
	i := strings.LastIndex(s, "]")
	return s[:i] + "," + fields + s[i:]
}

// appendLong appends v in Avro's zig-zag varint encoding.
func appendLong(b []byte, v int64) []byte {
	u := uint64(v<<1) ^ uint64(v>>63)
	for u >= 0x80 {
		b = append(b, byte(u)|0x80)
		u >>= 7
	}
	return append(b, byte(u))
}

// decodeWithin runs fn and fails the test if it has not returned in 10s:
// a hung decode must fail the test, not the whole run.
func decodeWithin(t *testing.T, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(10 * time.Second):
		t.Fatal("decode did not return within 10s")
		return nil
	}
}

// A registered variant of the envelope adds an array<null> field; a
// 97-byte record declares 2^62 items in it. Decoding used to loop forever.
// It must now be poison, with an error naming the field.
func TestCodecDecodeRefusesZeroSizeItems(t *testing.T) {
	ctx := context.Background()
	_, reg := testenv.Registry(t)
	topic := "studio.title.changes"
	codec, err := schema.NewCodec(reg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := codec.SchemaID(ctx, "other.topic"); err != nil {
		t.Fatal(err)
	}
	variant := envelopeWith(t, `{"name":"pad","type":{"type":"array","items":"null"},"default":[]}`)
	id, err := reg.Register(ctx, schema.ValueSubject(topic), variant)
	if err != nil {
		t.Fatal(err)
	}
	e := schema.Envelope{ID: "0193e8f4-5b6c-7d8e-9fa0-b1c2d3e4f5a6", Source: "svc.titles", SpecVersion: "1.0",
		Type: schema.OpCreate, EntityType: "title", Subject: "t1", Time: time.UnixMicro(1_700_000_000_000_000)}
	payload, err := avro.Marshal(avro.MustParse(schema.EnvelopeSchema()), e)
	if err != nil {
		t.Fatal(err)
	}
	payload = appendLong(payload, 1<<62) // one block of 2^62 nulls
	payload = append(payload, 0)         // end of the array
	record := schema.Frame(nil, id, payload)
	if len(record) != 97 {
		t.Fatalf("repro record is %d bytes, want 97", len(record))
	}

	err = decodeWithin(t, func() error { _, err := codec.Decode(ctx, record); return err })
	if !errors.Is(err, schema.ErrDecode) || !errors.Is(err, schema.ErrZeroSizeItems) || !strings.Contains(err.Error(), `"pad"`) {
		t.Fatalf("Decode = %v, want ErrDecode and ErrZeroSizeItems naming field pad", err)
	}
}

func TestCheckItems(t *testing.T) {
	tests := []struct {
		name, schema, field string // field is empty when the schema is fine
	}{
		{"array of null", `{"type":"array","items":"null"}`, "(top level)"},
		{"map of null", `{"type":"map","values":"null"}`, "(top level)"},
		{"empty record", `{"type":"record","name":"R","fields":[{"name":"xs","type":{"type":"array","items":{"type":"record","name":"E","fields":[]}}}]}`, "xs"},
		{"fixed 0", `{"type":"record","name":"R","fields":[{"name":"fs","type":{"type":"array","items":{"type":"fixed","name":"F","size":0}}}]}`, "fs"},
		{"nested zero-size record", `{"type":"record","name":"R","fields":[{"name":"a","type":{"type":"record","name":"In","fields":[{"name":"b","type":{"type":"map","values":{"type":"record","name":"Z","fields":[{"name":"n","type":"null"},{"name":"f","type":{"type":"fixed","name":"F0","size":0}}]}}}]}}]}`, "a.b"},
		{"array in union", `{"type":"record","name":"R","fields":[{"name":"u","type":["null",{"type":"array","items":"null"}]}]}`, "u"},
		{"array of arrays of null", `{"type":"array","items":{"type":"array","items":"null"}}`, "[]"},
		{"array of strings", `{"type":"array","items":"string"}`, ""},
		{"array of unions with null", `{"type":"array","items":["null","long"]}`, ""},
		{"array of records with a field", `{"type":"array","items":{"type":"record","name":"P","fields":[{"name":"n","type":"null"},{"name":"x","type":"int"}]}}`, ""},
		{"array of enums", `{"type":"array","items":{"type":"enum","name":"E","symbols":["A"]}}`, ""},
		{"recursive list", `{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"]},{"name":"xs","type":{"type":"array","items":"L"}}]}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := schema.CheckItems(avro.MustParse(tt.schema))
			if tt.field == "" {
				if err != nil {
					t.Fatalf("CheckItems = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, schema.ErrZeroSizeItems) || !strings.Contains(err.Error(), `"`+tt.field+`"`) {
				t.Fatalf("CheckItems = %v, want ErrZeroSizeItems naming %q", err, tt.field)
			}
		})
	}
}

// Records that declare more than they hold, or more than the limits
// allow, are poison, decoded in time proportional to their length.
func TestDecodeLimits(t *testing.T) {
	ctx := context.Background()
	_, reg := testenv.Registry(t)
	const s = `{"type":"record","name":"Blob","namespace":"studio","fields":[{"name":"xs","type":{"type":"array","items":"long"}},{"name":"m","type":{"type":"map","values":"string"}},{"name":"b","type":"bytes"}]}`
	id, err := reg.Register(ctx, "studio.Blob", s)
	if err != nil {
		t.Fatal(err)
	}
	rec := func(parts ...[]byte) []byte {
		var p []byte
		for _, x := range parts {
			p = append(p, x...)
		}
		return schema.Frame(nil, id, p)
	}
	l := func(vs ...int64) []byte {
		var b []byte
		for _, v := range vs {
			b = appendLong(b, v)
		}
		return b
	}
	ok := rec(l(2, 1, 2, 0), l(1), []byte{2, 'k'}, l(1), []byte{'v'}, l(0), l(3), []byte("abc"))
	tests := []struct {
		name string
		data []byte
		lim  schema.Limits
		want string // empty: decodes
	}{
		{"fits", ok, schema.Limits{}, ""},
		{"array count beyond bytes", rec(l(1 << 62)), schema.Limits{}, "xs[]"},
		{"negative block count", rec(l(-(1<<40), 3), l(1, 2, 3)), schema.Limits{}, "xs[]"},
		{"block size beyond bytes", rec(l(-2, 1<<40)), schema.Limits{}, "xs[]"},
		{"map count beyond bytes", rec(l(0), l(1<<50)), schema.Limits{}, "m{}"},
		{"bytes beyond bytes", rec(l(0), l(0), l(1<<40)), schema.Limits{}, "b"},
		{"negative bytes length", rec(l(0), l(0), l(-5)), schema.Limits{}, "b"},
		{"items over limit", ok, schema.Limits{MaxItems: 2}, "m{}"},
		{"bytes over limit", ok, schema.Limits{MaxBytes: 2}, "b"},
		{"truncated", ok[:len(ok)-2], schema.Limits{}, "b"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sd, err := schema.NewSerde(reg, s, schema.WithDecodeLimits(tt.lim))
			if err != nil {
				t.Fatal(err)
			}
			var got map[string]any
			err = decodeWithin(t, func() error { return sd.Decode(ctx, tt.data, &got) })
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Decode = %v", err)
				}
				if string(got["b"].([]byte)) != "abc" {
					t.Fatalf("decoded %v", got)
				}
				return
			}
			if !errors.Is(err, schema.ErrDecode) || !errors.Is(err, schema.ErrLimit) || !strings.Contains(err.Error(), `"`+tt.want+`"`) {
				t.Fatalf("Decode = %v, want ErrDecode and ErrLimit naming %q", err, tt.want)
			}
			if tt.lim == (schema.Limits{}) {
				err = decodeWithin(t, func() error { return schema.DecodeData(ctx, reg, tt.data, &got) })
				if !errors.Is(err, schema.ErrLimit) {
					t.Fatalf("DecodeData = %v, want ErrLimit", err)
				}
			}
		})
	}
}

// Data written with a writer schema of zero-size items is poison for a
// serde and for DecodeData too.
func TestSerdeRefusesZeroSizeItems(t *testing.T) {
	ctx := context.Background()
	_, reg := testenv.Registry(t)
	w := `{"type":"record","name":"Budget","namespace":"studio","fields":[{"name":"id","type":"string"},{"name":"marks","type":{"type":"map","values":{"type":"fixed","name":"Mark","size":0}}}]}`
	id, err := reg.Register(ctx, "studio.Budget-w", w)
	if err != nil {
		t.Fatal(err)
	}
	data := schema.Frame(nil, id, appendLong(append(appendLong(nil, 1), 'x'), 1<<62))
	sd, err := schema.NewSerde(reg, `{"type":"record","name":"Budget","namespace":"studio","fields":[{"name":"id","type":"string"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	for name, fn := range map[string]func() error{
		"Serde.Decode": func() error { return sd.Decode(ctx, data, &got) },
		"DecodeData":   func() error { return schema.DecodeData(ctx, reg, data, &got) },
	} {
		err := decodeWithin(t, fn)
		if !errors.Is(err, schema.ErrDecode) || !errors.Is(err, schema.ErrZeroSizeItems) || !strings.Contains(err.Error(), `"marks"`) {
			t.Errorf("%s = %v, want ErrDecode and ErrZeroSizeItems naming marks", name, err)
		}
	}
}

// A decode after ctx ended returns ctx's error, not poison.
func TestDecodeHonoursContext(t *testing.T) {
	_, reg := testenv.Registry(t)
	codec, err := schema.NewCodec(reg)
	if err != nil {
		t.Fatal(err)
	}
	e := schema.NewEnvelope("svc", schema.OpCreate, "title", "t1")
	b, err := codec.Encode(context.Background(), nil, "studio.title.changes", &e)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := codec.Decode(ctx, b); !errors.Is(err, context.Canceled) || errors.Is(err, schema.ErrDecode) {
		t.Fatalf("Decode after cancel = %v, want context.Canceled", err)
	}
	if _, err := codec.Decode(context.Background(), b); err != nil {
		t.Fatal(err)
	}
}
