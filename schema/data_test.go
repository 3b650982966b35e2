package schema_test

import (
	"context"
	"testing"

	"github.com/hamba/avro/v2"

	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

// Adding an optional field to a data record is a compatible evolution:
// EncodeData must register the schema with its defaults for the registry
// (BACKWARD by default) to accept v2.
func TestEncodeDataEvolvesWithDefaults(t *testing.T) {
	ctx := context.Background()
	_, reg := testenv.Registry(t)
	v1 := avro.MustParse(`{"type":"record","name":"Budget","namespace":"studio","fields":[{"name":"id","type":"string"}]}`)
	v2 := avro.MustParse(`{"type":"record","name":"Budget","namespace":"studio","fields":[{"name":"id","type":"string"},{"name":"currency","type":"string","default":"USD"}]}`)
	if _, _, err := schema.EncodeData(ctx, reg, "studio.Budget", v1, map[string]any{"id": "b1"}); err != nil {
		t.Fatal(err)
	}
	data, ref, err := schema.EncodeData(ctx, reg, "studio.Budget", v2, map[string]any{"id": "b2", "currency": "EUR"})
	if err != nil {
		t.Fatalf("v2 with a defaulted field rejected: %v", err)
	}
	var got map[string]any
	if err := schema.DecodeData(ctx, reg, data, &got); err != nil {
		t.Fatal(err)
	}
	if got["currency"] != "EUR" || ref != "studio.Budget/2" {
		t.Fatalf("decoded %v with dataschema %q", got, ref)
	}
}
