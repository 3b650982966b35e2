package cdc_test

import (
	"context"
	"fmt"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/schema"
)

// printPublisher stands in for *producer.Producer, printing what it would
// send.
type printPublisher struct{}

func (printPublisher) Publish(_ context.Context, topic string, envs ...schema.Envelope) error {
	for _, e := range envs {
		fmt.Println(topic, e.Subject, e.Type)
	}
	return nil
}

// oneBatch emits one transaction, then stops.
type oneBatch struct{ acked chan cdc.Position }

func (o oneBatch) Run(ctx context.Context, emit cdc.EmitFunc) error {
	e := schema.NewEnvelope("//pg/finance/public/budget", schema.OpUpdate, "budget", "42")
	err := emit(ctx, cdc.Batch{
		Events:   []cdc.Event{{Topic: cdc.Topic("finance", "public", "budget"), Envelope: e}},
		Position: seqPos(7),
	})
	if err != nil {
		return err
	}
	<-ctx.Done()
	return nil
}

func (o oneBatch) Ack(p cdc.Position) error { o.acked <- p; return nil }

func ExampleNewRunner() {
	r, err := cdc.NewRunner(printPublisher{})
	if err != nil {
		panic(err)
	}
	src := oneBatch{acked: make(chan cdc.Position, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- r.Run(ctx, src) }()
	fmt.Println("acked", <-src.acked)
	cancel()
	<-done
	// Output:
	// studio.cdc.finance.public.budget 42 UPDATE
	// acked 7
}
