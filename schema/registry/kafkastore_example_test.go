package registry_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	avroregistry "github.com/hamba/avro/v2/registry"

	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/schema/registry"
)

// A registry whose schemas live in the _schemas topic survives a restart
// with the same ids.
func ExampleNewKafkaStore() {
	ctx := context.Background()
	b, err := broker.Start()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer b.Close()
	serve := func() (*registry.KafkaStore, *httptest.Server, *avroregistry.Client) {
		store, err := registry.NewKafkaStore(ctx, []string{b.Addr()})
		if err != nil {
			panic(err)
		}
		srv, err := registry.New(ctx, registry.WithStore(store))
		if err != nil {
			panic(err)
		}
		hs := httptest.NewServer(srv)
		c, _ := avroregistry.NewClient(hs.URL)
		return store, hs, c
	}
	schema := `{"type":"record","name":"Budget","fields":[{"name":"id","type":"string"}]}`

	store, hs, c := serve()
	id, _, _ := c.CreateSchema(ctx, "studio.Budget", schema)
	hs.Close()
	store.Close()

	store, hs, c = serve() // restarted
	defer store.Close()
	defer hs.Close()
	again, _, _ := c.IsRegistered(ctx, "studio.Budget", schema)
	fmt.Println(id, again)
	// Output: 1 1
}
