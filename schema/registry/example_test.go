package registry_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	avroregistry "github.com/hamba/avro/v2/registry"

	"github.com/slatehq/slate/schema/registry"
)

func ExampleNew() {
	ctx := context.Background()
	srv, err := registry.New(ctx, registry.WithCompatibility(registry.Backward))
	if err != nil {
		fmt.Println(err)
		return
	}
	hs := httptest.NewServer(srv) // or http.ListenAndServe(":8081", srv)
	defer hs.Close()

	client, err := avroregistry.NewClient(hs.URL)
	if err != nil {
		fmt.Println(err)
		return
	}
	v1 := `{"type":"record","name":"Budget","fields":[{"name":"id","type":"string"}]}`
	v2 := `{"type":"record","name":"Budget","fields":[{"name":"id","type":"string"},{"name":"cents","type":"long","default":0}]}`
	bad := `{"type":"record","name":"Budget","fields":[{"name":"id","type":"long"}]}`

	id1, _, _ := client.CreateSchema(ctx, "studio.budget.materialized-value", v1)
	id2, _, _ := client.CreateSchema(ctx, "studio.budget.materialized-value", v2)
	same, _, _ := client.CreateSchema(ctx, "studio.budget.changes-value", v2)
	_, _, err = client.CreateSchema(ctx, "studio.budget.materialized-value", bad)
	fmt.Println(id1, id2, same)
	fmt.Println(err.(avroregistry.Error).Code)
	// Output:
	// 1 2 2
	// 409
}
