package enricher_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/schema"
)

var summarySchema = avro.MustParse(`{"type":"record","name":"TitleSummary","namespace":"test.v1","fields":[
	{"name":"id","type":"string"},{"name":"release_year","type":"string"},{"name":"budget_cents","type":"long"}]}`).(*avro.RecordSchema)

// summary derives a title's release year and its total budget from the
// title with its budget joined.
type summary struct{ closed bool }

func (s *summary) Schema() avro.NamedSchema { return summarySchema }

func (s *summary) Derive(_ context.Context, id string, _ int64, rec map[string]any) (map[string]any, error) {
	date, _ := rec["release_date"].(string)
	if len(date) < 4 {
		return nil, errors.New("no release date")
	}
	var cents int64
	for _, b := range rec["budget"].([]any) {
		cents += b.(map[string]any)["amount_cents"].(int64)
	}
	return map[string]any{"id": id, "release_year": date[:4], "budget_cents": cents}, nil
}

func (s *summary) Close() error { s.closed = true; return nil }

func init() {
	enricher.RegisterDerive("test.summary", func(_ context.Context, settings map[string]string) (enricher.Deriver, error) {
		if settings["fail"] != "" {
			return nil, errors.New("fail: " + settings["fail"])
		}
		return &summary{}, nil
	})
}

// A derive step turns the built record (the title with its budget
// joined) into the view's own record, at the built record's version.
func TestDerive(t *testing.T) {
	reg := newRegistry(t)
	ctx := context.Background()
	store := &titles{byID: map[string]title{
		"t1": {ID: "t1", ReleaseDate: "2027-07-16", Version: 4},
		"t2": {ID: "t2", ReleaseDate: "", Version: 1},
	}}
	budgets := enricher.ResolverFunc(func(_ context.Context, _ string, ids []string) (map[string]enricher.Record, error) {
		out := map[string]enricher.Record{}
		for _, id := range ids {
			if id == "t1" {
				out[id] = enricher.Record{Version: 2, Schema: budgetSchema, Value: budget{TitleID: id, AmountCents: 12_500_00}}
			}
		}
		return out, nil
	})
	d, err := enricher.NewDerive(ctx, "test.summary", nil)
	if err != nil {
		t.Fatal(err)
	}
	pub := &capture{}
	e, err := enricher.New("title", store.resolver(), pub, reg, enricher.WithDerive(d),
		enricher.WithJoin(enricher.Join{Field: "budget", EntityType: "budget", Resolver: budgets, Schema: budgetSchema}))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Handle(ctx, []sink.Event{change("title", "t1", schema.OpUpdate, 4, 0), change("title", "gone", schema.OpDelete, 3, 1)}); err != nil {
		t.Fatal(err)
	}
	out := pub.published()
	if len(out) != 2 {
		t.Fatalf("published %d, want t1 and the delete of gone", len(out))
	}
	if !strings.Contains(out[0].DataSchema, "test.v1.TitleSummary") || out[0].Sequence != 4<<32+2 {
		t.Errorf("t1: schema %s at %d, want test.v1.TitleSummary at the view version %d", out[0].DataSchema, out[0].Sequence, int64(4<<32+2))
	}
	var got map[string]any
	if err := schema.DecodeData(ctx, reg, out[0].Data, &got); err != nil {
		t.Fatal(err)
	}
	if got["release_year"] != "2027" || got["budget_cents"] != int64(12_500_00) {
		t.Errorf("derived %v", got)
	}
	if out[1].Type != schema.OpDelete || out[1].Subject != "gone" {
		t.Errorf("delete: %s %s", out[1].Type, out[1].Subject)
	}

	// A record the deriver refuses fails the batch, naming it.
	err = e.Handle(ctx, []sink.Event{change("title", "t2", schema.OpUpdate, 1, 2)})
	if err == nil || !strings.Contains(err.Error(), "title t2: derive test.v1.TitleSummary: no release date") {
		t.Errorf("refused record: err %v", err)
	}
}

func TestDeriveIsNamedInPipelines(t *testing.T) {
	ctx := context.Background()
	if _, err := enricher.NewDerive(ctx, "nope", nil); err == nil || !errors.Is(err, enricher.ErrConfig) ||
		!strings.Contains(err.Error(), `no deriver is registered as "nope"`) || !strings.Contains(err.Error(), "test.summary") {
		t.Errorf("unknown deriver: %v", err)
	}
	if _, err := enricher.NewDerive(ctx, "test.summary", map[string]string{"fail": "x"}); err == nil {
		t.Error("factory error lost")
	}
	for _, tt := range []struct {
		derive enricher.DeriveSpec
		want   string
	}{
		{enricher.DeriveSpec{Name: "test.summary"}, ""},
		{enricher.DeriveSpec{Name: "studio.nope"}, `derive.name: "studio.nope" is not a registered deriver (registered: [test.summary])`},
		{enricher.DeriveSpec{Settings: map[string]string{"a": "b"}}, "derive.name: required when derive.settings are set"},
	} {
		p := enricher.Pipeline{EntityType: "title", Resolvers: map[string]enricher.ResolverSpec{"title": {Target: "x:1"}}, Derive: tt.derive}
		p.Defaults()
		err := p.Validate()
		if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%+v: err %v, want %q", tt.derive, err, tt.want)
		}
	}
}

// A view with an entity type of its own over another entity's records: a
// cashflow view of budgets. A budget's change events are the view's own
// (a budget gone is a DELETE of the view); a schedule's re-materialize
// the view of the same id, and a schedule of a title without a budget
// publishes nothing.
func TestViewOfAnotherEntity(t *testing.T) {
	reg := newRegistry(t)
	ctx := context.Background()
	budgets := enricher.ResolverFunc(func(_ context.Context, _ string, ids []string) (map[string]enricher.Record, error) {
		out := map[string]enricher.Record{}
		for _, id := range ids {
			if id == "t1" || id == "t2" {
				out[id] = enricher.Record{Version: 3, Schema: budgetSchema, Value: budget{TitleID: id, AmountCents: 100}}
			}
		}
		return out, nil
	})
	pub := &capture{}
	e, err := enricher.New("cashflow", budgets, pub, reg, enricher.WithPrimaryEntity("budget"),
		enricher.WithFanOut(enricher.FanOut{EntityType: "schedule", SameID: true}))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Handle(ctx, []sink.Event{
		change("budget", "t1", schema.OpUpdate, 3, 0),
		change("schedule", "t2", schema.OpUpdate, 7, 1),
		change("schedule", "t9", schema.OpUpdate, 1, 2),
		change("budget", "t8", schema.OpDelete, 4, 3),
	}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, env := range pub.published() {
		got = append(got, env.EntityType+" "+env.Subject+" "+string(env.Type))
	}
	if want := []string{"cashflow t1 UPDATE", "cashflow t8 DELETE", "cashflow t2 UPDATE"}; !slices.Equal(got, want) {
		t.Errorf("published %v, want %v", got, want)
	}
	if _, err := enricher.New("cashflow", budgets, pub, reg, enricher.WithFanOut(enricher.FanOut{EntityType: "schedule"})); err == nil {
		t.Error("a fan-out with neither dependents nor SameID was accepted")
	}

	p := enricher.Pipeline{EntityType: "cashflow", PrimaryEntityType: "budget",
		Resolvers: map[string]enricher.ResolverSpec{"budget": {Target: "x:1"}},
		FanOut:    []enricher.FanOutSpec{{EntityType: "schedule", SameID: true}}}
	p.Defaults()
	if err := p.Validate(); err != nil || p.Primary != "budget" || p.Inputs[0] != "studio.budget.changes" {
		t.Errorf("pipeline: %v, primary %q, inputs %v", err, p.Primary, p.Inputs)
	}
	p.FanOut[0].Resolver = "budget"
	if err := p.Validate(); err == nil || !strings.Contains(err.Error(), "same_id fans out to the same id: no resolver") {
		t.Errorf("same_id with a resolver: %v", err)
	}
}
