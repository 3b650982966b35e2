package enricher_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/schema"
)

func TestLoadPipelineFile(t *testing.T) {
	p, err := enricher.LoadPipelineFile("testdata/title-pipeline.yaml")
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"name default", p.Name, "title-enricher"},
		{"output default", p.Output, "studio.title.materialized"},
		{"inputs default", strings.Join(p.Inputs, ","), "studio.title.changes,studio.schedule.changes"},
		{"join entity default", p.Joins[1].EntityType, "budget"},
		{"resolver timeout", p.Resolvers["schedules"].Timeout, 2 * time.Second},
		{"resolver timeout default", p.Resolvers["titles"].Timeout, 5 * time.Second},
		{"retry", p.Retry, enricher.RetrySpec{Attempts: 5, Base: 20 * time.Millisecond, Max: time.Second}},
		{"breaker default", p.Breaker, enricher.BreakerSpec{Failures: 5, Cooldown: 5 * time.Second}},
		{"concurrency", p.Concurrency, 8},
		{"max lookup default", p.MaxLookup, 500},
		{"dead letter", p.DeadLetter, enricher.DeadLetterSpec{Enabled: true, Attempts: 3}},
	}
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			if c.got != c.want {
				t.Errorf("got %v, want %v", c.got, c.want)
			}
		})
	}

	// Bound to in-process resolvers, the pipeline builds a joining,
	// fanning-out enricher.
	reg := newRegistry(t)
	store := &titles{byID: map[string]title{"t1": {ID: "t1", ReleaseDate: "2027-07-16", Version: 3}}}
	empty := enricher.ResolverFunc(func(context.Context, string, []string) (map[string]enricher.Record, error) {
		return map[string]enricher.Record{}, nil
	})
	deps := enricher.DependentsFunc(func(_ context.Context, ids []string) (map[string][]string, error) {
		return map[string][]string{ids[0]: {"t1"}}, nil
	})
	b := enricher.Bindings{
		Resolvers:  map[string]enricher.Resolver{"titles": store.resolver(), "schedules": empty, "budgets": empty},
		Dependents: map[string]enricher.Dependents{"scheduled": deps},
		Schemas:    map[string]avro.NamedSchema{"schedules": scheduleSchema, "budget": budgetSchema},
		DeadLetter: &capture{},
	}
	r, opts, err := p.Options(b)
	if err != nil {
		t.Fatal(err)
	}
	pub := &capture{}
	e, err := enricher.New(p.EntityType, r, pub, reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Handle(context.Background(), []sink.Event{change("schedule", "s1", schema.OpUpdate, 1, 0)}); err != nil {
		t.Fatal(err)
	}
	if out := pub.published(); len(out) != 1 || out[0].Subject != "t1" || out[0].Sequence != 3<<32 {
		t.Fatalf("published %+v, want t1 at the view version of v3 (3<<32, nothing joined) by fan-out", out)
	}

	delete(b.Schemas, "budget")
	if _, _, err := p.Options(b); err == nil || !strings.Contains(err.Error(), "joins[1].field") {
		t.Errorf("missing join schema: err %v, want it to name joins[1].field", err)
	}
}

func TestPipelineValidateNamesField(t *testing.T) {
	const base = `
entity_type: title
resolvers:
  title: {target: "t:1"}
  deps: {target: "d:1", method: dependents}
`
	tests := []struct {
		name  string
		yaml  string
		field string
	}{
		{"no entity type", "resolvers: {title: {target: x}}", "entity_type"},
		{"no resolvers", "entity_type: title", "resolvers"},
		{"unknown key", base + "colour: red\n", "colour"},
		{"missing target", "entity_type: title\nresolvers: {title: {method: get}}", "resolvers.title.target"},
		{"bad method", "entity_type: title\nresolvers: {title: {target: x, method: stream}}", "resolvers.title.method"},
		{"primary unknown", base + "primary: nope\n", "primary"},
		{"primary is dependents", base + "primary: deps\n", "primary"},
		{"join without field", base + "joins: [{resolver: title}]\n", "joins[0].field"},
		{"join unknown resolver", base + "joins: [{field: s, resolver: nope}]\n", "joins[0].resolver"},
		{"join field twice", base + "joins: [{field: s, resolver: title}, {field: s, resolver: title}]\n", "joins[1].field"},
		{"fan-out needs dependents", base + "fan_out: [{entity_type: schedule, resolver: title}]\n", "fan_out[0].resolver"},
		{"fan-out from itself", base + "fan_out: [{entity_type: title, resolver: deps}]\n", "fan_out[0].entity_type"},
		{"negative concurrency", base + "concurrency: -1\n", "concurrency"},
		{"retry max below base", base + "retry: {base: 2s, max: 1s}\n", "retry.max"},
		{"bad duration", base + "breaker: {cooldown: soon}\n", "soon"},
		{"empty input", base + "inputs: [\"\"]\n", "inputs[0]"},
		{"transactional id without transactional", base + "transactional_id: titles-0\n", "transactional_id"},
		{"transactional id with a space", base + "transactional: true\ntransactional_id: titles 0\n", "transactional_id"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := enricher.LoadPipeline(strings.NewReader(tt.yaml))
			if !errors.Is(err, enricher.ErrConfig) || !strings.Contains(err.Error(), tt.field) {
				t.Fatalf("err = %v, want ErrConfig naming %s", err, tt.field)
			}
		})
	}
	if _, err := enricher.LoadPipeline(strings.NewReader(base)); err != nil {
		t.Fatalf("minimal pipeline: %v", err)
	}
}
