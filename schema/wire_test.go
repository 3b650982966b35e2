package schema_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/slatehq/slate/schema"
)

func TestFrameRoundTrip(t *testing.T) {
	framed := schema.Frame(nil, 258, []byte{0xaa, 0xbb})
	if want := []byte{0, 0, 0, 1, 2, 0xaa, 0xbb}; !bytes.Equal(framed, want) {
		t.Fatalf("Frame = %x, want %x (magic 0, big-endian id, payload)", framed, want)
	}
	id, payload, err := schema.Unframe(framed)
	if err != nil || id != 258 || !bytes.Equal(payload, []byte{0xaa, 0xbb}) {
		t.Fatalf("Unframe = %d, %x, %v", id, payload, err)
	}
}

func TestUnframeRejects(t *testing.T) {
	for name, b := range map[string][]byte{
		"empty":      nil,
		"short":      {0, 0, 0, 1},
		"magic byte": {1, 0, 0, 0, 1, 2},
		"json":       []byte(`{"id":"x"}`),
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := schema.Unframe(b); !errors.Is(err, schema.ErrNotWireFormat) {
				t.Fatalf("err = %v, want ErrNotWireFormat", err)
			}
		})
	}
}

func TestEnvelopeValidate(t *testing.T) {
	ok := schema.NewEnvelope("//studio/titles", schema.OpUpdate, "title", "t-1")
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid envelope: %v", err)
	}
	tests := []struct {
		name   string
		mutate func(*schema.Envelope)
		want   string
	}{
		{"no id", func(e *schema.Envelope) { e.ID = "" }, "id is empty"},
		{"no source", func(e *schema.Envelope) { e.Source = "" }, "source is empty"},
		{"spec version", func(e *schema.Envelope) { e.SpecVersion = "0.3" }, "specversion"},
		{"unknown type", func(e *schema.Envelope) { e.Type = "UPSERT" }, `type "UPSERT"`},
		{"no entity type", func(e *schema.Envelope) { e.EntityType = "" }, "entitytype is empty"},
		{"no subject", func(e *schema.Envelope) { e.Subject = "" }, "subject is empty"},
		{"no time", func(e *schema.Envelope) { e.Time = time.Time{} }, "time is zero"},
		{"data without type", func(e *schema.Envelope) { e.Data = []byte("{}") }, "datacontenttype"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := ok
			tt.mutate(&e)
			err := e.Validate()
			if !errors.Is(err, schema.ErrInvalidEnvelope) || !bytes.Contains([]byte(err.Error()), []byte(tt.want)) {
				t.Fatalf("err = %v, want ErrInvalidEnvelope naming %q", err, tt.want)
			}
		})
	}
}

func TestHeadersRoundTrip(t *testing.T) {
	e := schema.NewEnvelope("//pg/finance/public/budget", schema.OpDelete, "budget", "b-9")
	e.Sequence = 42
	e.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	e.DataSchema = "studio.Budget/3"
	got, err := schema.FromHeaders(schema.AppendHeaders(nil, &e))
	if err != nil {
		t.Fatal(err)
	}
	e.Data, e.DataContentType = nil, ""
	if got.ID != e.ID || got.Source != e.Source || got.Type != e.Type || got.Subject != e.Subject ||
		got.Sequence != 42 || got.TraceParent != e.TraceParent || got.DataSchema != e.DataSchema || !got.Time.Equal(e.Time) {
		t.Fatalf("FromHeaders = %+v, want %+v", got, e)
	}
	if v, _ := schema.HeaderValue(schema.AppendHeaders(nil, &e), schema.HeaderID); v != e.ID {
		t.Fatalf("ce_id = %q", v)
	}
}

func TestTopicNames(t *testing.T) {
	if got := schema.ChangesTopic("title"); got != "studio.title.changes" {
		t.Error(got)
	}
	if got := schema.MaterializedTopic("title"); got != "studio.title.materialized" {
		t.Error(got)
	}
	if got := schema.DLQTopic("studio.title.changes"); got != "studio.title.changes.dlq" {
		t.Error(got)
	}
	if got := schema.ValueSubject("studio.title.changes"); got != "studio.title.changes-value" {
		t.Error(got)
	}
}
