package enricher_test

import (
	"context"
	"log"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
)

// Exactly-once materialization: the enricher publishes through a
// transactional producer, and the consumer hands each batch's offsets to
// the same transaction. Readers of studio.title.materialized use
// isolation.level=read_committed.
func ExampleNewTransactional() {
	ctx := context.Background()
	reg, err := schema.NewRegistryClient("http://127.0.0.1:8081")
	if err != nil {
		log.Fatal(err)
	}
	// One transactional.id per running worker, stable across its restarts.
	p, err := producer.New(producer.WithBrokers("127.0.0.1:9092"), producer.WithRegistry(reg),
		producer.WithSource("//slate/enricher"), producer.WithTransactionalID("enricher-title-0"))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(ctx)
	// In production, the owner service's resolver (titles.NewResolver).
	current := map[string]title{"t1": {ID: "t1", ReleaseDate: "2027-07-16", Version: 3}}
	resolver := enricher.ResolverFunc(func(_ context.Context, _ string, ids []string) (map[string]enricher.Record, error) {
		out := map[string]enricher.Record{}
		for _, id := range ids {
			if t, ok := current[id]; ok {
				out[id] = enricher.Record{Version: t.Version, Schema: titleSchema, Value: t}
			}
		}
		return out, nil
	})
	e, err := enricher.New("title", resolver, p, reg)
	if err != nil {
		log.Fatal(err)
	}
	h, err := enricher.NewTransactional(e, p)
	if err != nil {
		log.Fatal(err)
	}
	c, err := consumer.New(h, consumer.WithBrokers("127.0.0.1:9092"), consumer.WithGroup("enricher-title"),
		consumer.WithTopics(schema.ChangesTopic("title")), consumer.WithRegistry(reg), consumer.WithTransactional())
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Run(ctx); err != nil {
		log.Fatal(err)
	}
}
