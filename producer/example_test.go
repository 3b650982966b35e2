package producer_test

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
)

// A service records a change and its event in one transaction; the CDC
// sidecar publishes the event once the transaction committed.
func ExampleOutbox_WriteChange() {
	ctx := context.Background()
	reg, _ := schema.NewRegistryClient("http://127.0.0.1:8081")
	codec, _ := schema.NewCodec(reg)
	outbox, err := producer.NewOutbox(codec, "//studio/titles")
	if err != nil {
		panic(err)
	}
	conn, err := pgx.Connect(ctx, "postgres://postgres@127.0.0.1:5432/postgres")
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	if err := producer.EnsureOutbox(ctx, conn); err != nil {
		return
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return
	}
	defer tx.Rollback(ctx) // a no-op after Commit
	if _, err := tx.Exec(ctx, `UPDATE title SET name = $1, version = version + 1 WHERE id = $2`, "Dune", "t-1"); err != nil {
		return
	}
	if _, err := outbox.WriteChange(ctx, tx, "title", "t-1", schema.OpUpdate, 8); err != nil {
		return
	}
	_ = tx.Commit(ctx)
}

// Connecting to a cluster that requires SCRAM over TLS.
func ExampleWithSASL() {
	reg, _ := schema.NewRegistryClient("https://registry.example.com")
	p, err := producer.New(
		producer.WithBrokers("kafka-1.example.com:9093,kafka-2.example.com:9093"),
		producer.WithRegistry(reg),
		producer.WithSource("//studio/titles"),
		producer.WithSASL("SCRAM-SHA-512", "titles", "secret-from-the-environment"),
		producer.WithTLS("/etc/slate/ca.pem", "", ""),
	)
	if err != nil {
		return
	}
	defer p.Close(context.Background())
}
