package consumer_test

import (
	"context"
	"fmt"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/dedupe"
	"github.com/slatehq/slate/schema"
)

func ExampleDeduplicate() {
	store := dedupe.NewMemory()
	defer store.Close()
	printer := sink.Func(func(_ context.Context, batch []sink.Event) error {
		for _, ev := range batch {
			fmt.Println("applied", ev.Subject)
		}
		return nil
	})
	h := consumer.Deduplicate(store, consumer.DedupeConfig{
		OnDuplicates: func(n int) { fmt.Println("dropped", n) },
	}, consumer.ToSinks(printer))

	ev := sink.Event{Envelope: schema.NewEnvelope("//studio/titles", schema.OpUpdate, "title", "t-1")}
	ctx := context.Background()
	_ = h.Handle(ctx, []sink.Event{ev})
	_ = h.Handle(ctx, []sink.Event{ev}) // a redelivery
	// Output:
	// applied t-1
	// dropped 1
}
