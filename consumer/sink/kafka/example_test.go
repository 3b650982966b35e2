package kafka_test

import (
	"context"
	"fmt"

	"github.com/slatehq/slate/consumer/sink"
	kafkasink "github.com/slatehq/slate/consumer/sink/kafka"
	"github.com/slatehq/slate/schema"
)

// printer is a Publisher that prints instead of publishing; a real
// deployment passes a *producer.Producer.
type printer struct{}

func (printer) Publish(_ context.Context, topic string, envs ...schema.Envelope) error {
	for _, e := range envs {
		fmt.Println(topic, e.Subject)
	}
	return nil
}

func ExampleNew() {
	s, err := kafkasink.New(printer{}, kafkasink.ByEntityType())
	if err != nil {
		panic(err)
	}
	defer s.Close(context.Background())
	batch := []sink.Event{
		{Envelope: schema.NewEnvelope("//studio/titles", schema.OpUpdate, "title", "t-1")},
		{Envelope: schema.NewEnvelope("//studio/finance", schema.OpUpdate, "budget", "b-7")},
	}
	if err := s.Write(context.Background(), batch); err != nil {
		panic(err)
	}
	// Output:
	// studio.title.materialized t-1
	// studio.budget.materialized b-7
}
