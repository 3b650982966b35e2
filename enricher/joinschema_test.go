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

// A joined record that holds a named type the primary holds too (an enum
// both services share) gets a view whose schema defines it once, so the
// registry accepts it and the view decodes.
func TestJoinDefinesSharedNamedTypesOnce(t *testing.T) {
	status := `{"type":"enum","name":"Status","namespace":"test.v1","symbols":["DRAFT","LIVE"]}`
	titleS := avro.MustParse(`{"type":"record","name":"Title","namespace":"test.v1","fields":[
		{"name":"id","type":"string"},{"name":"status","type":` + status + `}]}`).(*avro.RecordSchema)
	parsed, err := avro.ParseWithCache(`{"type":"record","name":"Sched","namespace":"test.v1","fields":[
		{"name":"id","type":"string"},{"name":"status","type":`+status+`}]}`, "", &avro.SchemaCache{})
	if err != nil {
		t.Fatal(err)
	}
	schedS := parsed.(*avro.RecordSchema)
	titles := enricher.ResolverFunc(func(_ context.Context, _ string, ids []string) (map[string]enricher.Record, error) {
		out := map[string]enricher.Record{}
		for _, id := range ids {
			out[id] = enricher.Record{Version: 1, Schema: titleS, Value: map[string]any{"id": id, "status": "LIVE"}}
		}
		return out, nil
	})
	scheds := enricher.ResolverFunc(func(_ context.Context, _ string, ids []string) (map[string]enricher.Record, error) {
		out := map[string]enricher.Record{}
		for _, id := range ids {
			out[id] = enricher.Record{Version: 2, Schema: schedS, Value: map[string]any{"id": id, "status": "DRAFT"}}
		}
		return out, nil
	})
	pub := &capture{}
	reg := newRegistry(t)
	e, err := enricher.New("title", titles, pub, reg,
		enricher.WithJoin(enricher.Join{Field: "schedules", EntityType: "sched", Resolver: scheds, Schema: schedS}))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Handle(context.Background(), []sink.Event{change("title", "t1", schema.OpUpdate, 1, 0)}); err != nil {
		t.Fatal(err)
	}
	out := pub.published()
	if len(out) != 1 {
		t.Fatalf("published %d events, want 1", len(out))
	}
	var view map[string]any
	if err := schema.DecodeData(context.Background(), reg, out[0].Data, &view); err != nil {
		t.Fatal(err)
	}
	scheds0, _ := view["schedules"].([]any)
	if view["status"] != "LIVE" || len(scheds0) != 1 || scheds0[0].(map[string]any)["status"] != "DRAFT" {
		t.Errorf("view %v, want status LIVE and one schedule with status DRAFT", view)
	}
}
