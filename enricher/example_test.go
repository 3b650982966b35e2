package enricher_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/schema/registry"
)

// An enricher coalesces a batch of ID-only change events, looks the ids up
// and publishes one materialized event per id; an id the owner no longer
// has becomes a DELETE.
func ExampleNew() {
	ctx := context.Background()
	srv, _ := registry.New(ctx)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	reg, _ := schema.NewRegistryClient(hs.URL)

	current := map[string]title{"t1": {ID: "t1", ReleaseDate: "2027-07-16", Version: 3}}
	lookups := 0
	resolver := enricher.ResolverFunc(func(_ context.Context, _ string, ids []string) (map[string]enricher.Record, error) {
		lookups++
		out := map[string]enricher.Record{}
		for _, id := range ids {
			if t, ok := current[id]; ok {
				out[id] = enricher.Record{Version: t.Version, Schema: titleSchema, Value: t}
			}
		}
		return out, nil
	})
	pub := &capture{}
	e, err := enricher.New("title", resolver, pub, reg)
	if err != nil {
		fmt.Println(err)
		return
	}
	batch := []sink.Event{}
	for i, id := range []string{"t1", "t1", "t2", "t1"} {
		ev := sink.Event{Envelope: schema.NewEnvelope("//studio/titles", schema.OpUpdate, "title", id), Topic: "studio.title.changes", Offset: int64(i)}
		ev.Sequence = int64(i + 1)
		batch = append(batch, ev)
	}
	if err := e.Handle(ctx, batch); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("resolver calls:", lookups)
	for _, env := range pub.published() {
		fmt.Println(env.Subject, env.Type, env.Sequence)
	}
	// Output:
	// resolver calls: 1
	// t1 UPDATE 3
	// t2 DELETE 3
}
