package enricher_test

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/consumer/sink/bleve"
	"github.com/slatehq/slate/consumer/sink/es"
	"github.com/slatehq/slate/consumer/sink/es/estest"
	"github.com/slatehq/slate/schema"
)

// views keeps the enricher's output in both search sinks, as the sink
// pipeline does: the es sink (against the in-process double of the
// Elasticsearch API, with its strict external versions) and the embedded
// bleve sink.
type views struct {
	t      *testing.T
	double *estest.Server
	es     *es.Sink
	bleve  *bleve.Sink
}

func newViews(t *testing.T, reg schema.Registry, entityType string) *views {
	t.Helper()
	ctx := context.Background()
	double := estest.New()
	srv := httptest.NewServer(double)
	t.Cleanup(srv.Close)
	client, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	ess, err := es.New(ctx, client, es.WithRegistry(reg), es.WithEntityTypes(entityType))
	if err != nil {
		t.Fatal(err)
	}
	bl, err := bleve.New(t.TempDir(), bleve.WithRegistry(reg))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = ess.Close(ctx)
		_ = bl.Close(ctx)
	})
	return &views{t: t, double: double, es: ess, bleve: bl}
}

// apply writes the materialized events to both sinks, one at a time in
// publication order.
func (v *views) apply(envs ...schema.Envelope) {
	v.t.Helper()
	ctx := context.Background()
	for _, env := range envs {
		batch := []sink.Event{{Envelope: env, Topic: schema.MaterializedTopic(env.EntityType)}}
		if err := v.es.Write(ctx, batch); err != nil {
			v.t.Fatalf("es sink: %v", err)
		}
		if err := v.bleve.Write(ctx, batch); err != nil {
			v.t.Fatalf("bleve sink: %v", err)
		}
	}
}

// doc is what one sink holds of an entity.
type doc struct {
	found   bool
	version int64
}

// get returns what each sink holds of an entity: es, then bleve.
func (v *views) get(entityType, id string) (doc, doc) {
	v.t.Helper()
	_, ev, eok := v.double.Doc(v.es.Index(entityType), id)
	_, bv, bok, err := v.bleve.Get(context.Background(), entityType, id)
	if err != nil {
		v.t.Fatal(err)
	}
	if !bok {
		bv = 0
	}
	return doc{eok, ev}, doc{bok, bv}
}
