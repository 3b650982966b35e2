package schema_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
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

// A registry other than slate's may serve a schema that panics hamba/avro's
// parser (an empty union with a default): a decode that fetches it must
// fail as poison naming the id, not take the consumer down.
func TestSchemaThatPanicsTheParserIsPoison(t *testing.T) {
	// A stand-in for a foreign registry's GET /schemas/ids/{id}: slate's
	// own registry refuses to store such a schema.
	foreign := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/schemas/ids/7" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/vnd.schemaregistry.v1+json")
		_ = json.NewEncoder(w).Encode(map[string]string{
			"schema": `{"type":"record","name":"A","fields":[{"name":"f","type":[],"default":null}]}`,
		})
	}))
	t.Cleanup(foreign.Close)
	reg, err := schema.NewRegistryClient(foreign.URL)
	if err != nil {
		t.Fatal(err)
	}
	codec, err := schema.NewCodec(reg)
	if err != nil {
		t.Fatal(err)
	}
	sd, err := schema.NewSerde(reg, `{"type":"record","name":"R","fields":[{"name":"f","type":"int"}]}`)
	if err != nil {
		t.Fatal(err)
	}
	record := schema.Frame(nil, 7, []byte{0})
	for name, decode := range map[string]func() error{
		"DecodeData":   func() error { var v any; return schema.DecodeData(context.Background(), reg, record, &v) },
		"Codec.Decode": func() error { _, err := codec.Decode(context.Background(), record); return err },
		"Serde.Decode": func() error { var v map[string]any; return sd.Decode(context.Background(), record, &v) },
	} {
		err := decode()
		if !errors.Is(err, schema.ErrDecode) || !strings.Contains(err.Error(), "schema id 7") {
			t.Errorf("%s = %v, want ErrDecode naming schema id 7", name, err)
		}
	}
}
