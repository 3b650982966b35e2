package enricher_test

import (
	"context"
	"testing"

	"github.com/hamba/avro/v2"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/schema"
)

// A primary schema whose fields have defaults hamba/avro keeps in decoded
// form (bytes "", as the generic gRPC resolver writes for a protobuf
// bytes field) still gets a joined view.
func TestJoinKeepsPrimaryFieldDefaults(t *testing.T) {
	clip := avro.MustParse(`{"type":"record","name":"Clip","namespace":"test.v1","fields":[
		{"name":"id","type":"string"},
		{"name":"thumbnail","type":"bytes","default":""},
		{"name":"tags","type":{"type":"array","items":"string"},"default":[]}]}`).(*avro.RecordSchema)
	primary := enricher.ResolverFunc(func(_ context.Context, _ string, ids []string) (map[string]enricher.Record, error) {
		out := map[string]enricher.Record{}
		for _, id := range ids {
			out[id] = enricher.Record{Version: 1, Schema: clip,
				Value: map[string]any{"id": id, "thumbnail": []byte{1, 2}, "tags": []any{"x"}}}
		}
		return out, nil
	})
	budgets := enricher.ResolverFunc(func(_ context.Context, _ string, ids []string) (map[string]enricher.Record, error) {
		out := map[string]enricher.Record{}
		for _, id := range ids {
			out[id] = enricher.Record{Version: 1, Schema: budgetSchema, Value: budget{TitleID: id, AmountCents: 5}}
		}
		return out, nil
	})
	pub := &capture{}
	e, err := enricher.New("clip", primary, pub, newRegistry(t),
		enricher.WithJoin(enricher.Join{Field: "budget", EntityType: "budget", Resolver: budgets, Schema: budgetSchema}))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Handle(context.Background(), []sink.Event{change("clip", "c1", schema.OpUpdate, 1, 0)}); err != nil {
		t.Fatal(err)
	}
	if out := pub.published(); len(out) != 1 || out[0].Subject != "c1" {
		t.Fatalf("published %v, want c1", out)
	}
}
