package postgres_test

import (
	"context"
	"log"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/cdc/postgres"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
)

// A sidecar capturing the finance database: a slot and publication made
// on first start, a snapshot of the existing rows, then the stream, with
// outbox rows published as the events they carry.
func ExampleNew() {
	ctx := context.Background()
	reg, err := schema.NewRegistryClient("http://127.0.0.1:8081")
	if err != nil {
		log.Fatal(err)
	}
	src, err := postgres.New(postgres.Config{
		DSN:               "postgres://cdc@127.0.0.1:5432/finance",
		Slot:              "finance_cdc",
		Publication:       "finance_cdc",
		CreateSlot:        true,
		CreatePublication: true,
		Snapshot:          true,
		OutboxDelete:      true,
		Filter:            cdc.Filter{MaskColumns: []string{"public.payee.iban"}},
	}, postgres.WithRegistry(reg))
	if err != nil {
		log.Fatal(err)
	}
	p, err := producer.New(producer.WithBrokers("127.0.0.1:9092"), producer.WithRegistry(reg), producer.WithSource("//pg/finance"))
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close(ctx)
	r, err := cdc.NewRunner(p)
	if err != nil {
		log.Fatal(err)
	}
	if err := r.Run(ctx, src); err != nil {
		log.Fatal(err)
	}
}
