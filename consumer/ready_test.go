package consumer_test

import (
	"context"
	"testing"
	"time"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

// A consumer is ready once it joined its group, also when the group has
// more members than the topic has partitions and it got none; it is not
// ready before Run joined or after Run returned.
func TestReadyOnceJoined(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a broker")
	}
	env := testenv.Start(t, "//test/ready", broker.WithPartitions(1))
	topic := "studio.ready.changes"
	if err := env.Producer.PublishChange(t.Context(), "ready", "r-1", schema.OpCreate, 1); err != nil {
		t.Fatal(err)
	}
	nop := consumer.HandlerFunc(func(context.Context, []sink.Event) error { return nil })
	ctx, cancel := context.WithCancel(t.Context())
	var members []*consumer.Consumer
	done := make(chan error, 2)
	for range 2 {
		c, err := consumer.New(nop, consumer.WithBrokers(env.Brokers), consumer.WithGroup("ready-test"),
			consumer.WithTopics(topic), consumer.WithRegistry(env.Registry))
		if err != nil {
			t.Fatal(err)
		}
		if c.Ready() {
			t.Fatal("ready before Run")
		}
		members = append(members, c)
		go func() { done <- c.Run(ctx) }()
	}
	testenv.WaitFor(t, 30*time.Second, "both members ready", func() bool { return members[0].Ready() && members[1].Ready() })
	testenv.WaitFor(t, 30*time.Second, "the one partition assigned once", func() bool {
		return members[0].Assigned()+members[1].Assigned() == 1
	})
	cancel()
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range members {
		if c.Ready() || c.Assigned() != 0 {
			t.Errorf("member %d after Run returned: ready %v, assigned %d", i, c.Ready(), c.Assigned())
		}
	}
}
