package registry_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/slatehq/slate/schema"
)

// TestEnvelopeCodec runs slate's own codec against the server: the envelope
// schema registers, and an envelope survives Encode and Decode.
func TestEnvelopeCodec(t *testing.T) {
	ctx := context.Background()
	tr := newTestRegistry(t)

	topic := schema.ChangesTopic("title")
	id, _, err := tr.client.CreateSchema(ctx, schema.ValueSubject(topic), schema.EnvelopeSchema())
	if err != nil {
		t.Fatalf("register envelope schema: %v", err)
	}

	rc, err := schema.NewRegistryClient(tr.url)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := schema.NewCodec(rc)
	if err != nil {
		t.Fatal(err)
	}
	e := schema.NewEnvelope("//studio/titles", schema.OpUpdate, "title", "t-42")
	e.Sequence = 7
	e.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

	b, err := codec.Encode(ctx, nil, topic, &e)
	if err != nil {
		t.Fatalf("Encode: %v", err)
	}
	gotID, _, err := schema.Unframe(b)
	if err != nil || gotID != id {
		t.Fatalf("framed id = %d, %v; want %d (the id registered above)", gotID, err, id)
	}

	// A fresh codec has no cached schema: it must fetch the writer's by id.
	rc2, err := schema.NewRegistryClient(tr.url)
	if err != nil {
		t.Fatal(err)
	}
	reader, err := schema.NewCodec(rc2)
	if err != nil {
		t.Fatal(err)
	}
	got, err := reader.Decode(ctx, b)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	if got.ID != e.ID || got.Subject != e.Subject || got.Type != e.Type || got.Sequence != e.Sequence ||
		got.TraceParent != e.TraceParent || !got.Time.Equal(e.Time) || !bytes.Equal(got.Data, e.Data) {
		t.Fatalf("decoded %+v, want %+v", got, e)
	}

	// The materialized topic's subject shares the id.
	id2, err := codec.SchemaID(ctx, schema.MaterializedTopic("title"))
	if err != nil || id2 != id {
		t.Fatalf("materialized subject id = %d, %v; want %d", id2, err, id)
	}
}
