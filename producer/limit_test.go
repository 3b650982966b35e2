package producer_test

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/slatehq/slate/producer"
)

// A producer sized with WithBrokerMessageLimit writes records as large as
// the brokers or a named topic accept; librdkafka's default of 1,000,000
// bytes refuses them on the client.
func TestBrokerMessageLimit(t *testing.T) {
	reg := start(t).reg
	ctx := context.Background()
	big := func(n int) []byte {
		b := make([]byte, n)
		_, _ = rand.Read(b) // incompressible
		return b
	}
	for _, tc := range []struct {
		name       string
		opts       []kfake.Opt
		topic      string
		topicLimit string // max.message.bytes of a topic created first, if any
		size       int
		option     producer.Option
	}{
		{"broker limit", []kfake.Opt{kfake.AllowAutoTopicCreation(), kfake.BrokerConfigs(map[string]string{"message.max.bytes": "2000000"})},
			"studio.title.changes.dlq", "", 1_500_000, producer.WithBrokerMessageLimit(producer.DeadLetterHeadroom)},
		{"topic limit", []kfake.Opt{kfake.AllowAutoTopicCreation()},
			"studio.big.changes", "3000000", 2_500_000, producer.WithBrokerMessageLimit(0, "studio.big.changes")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1)}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			if tc.topicLimit != "" {
				if err := c.CreateTopic(tc.topic, 1, map[string]string{"max.message.bytes": tc.topicLimit}); err != nil {
					t.Fatal(err)
				}
			}
			addr := c.ListenAddrs()[0]
			value := big(tc.size)

			plain, err := producerAt(t, addr, reg)
			if err != nil {
				t.Fatal(err)
			}
			wantErr(t, plain.PublishRaw(ctx, tc.topic, []byte("k"), value, nil), producer.ErrTooLarge, "message.max.bytes")

			sized, err := producerAt(t, addr, reg, tc.option)
			if err != nil {
				t.Fatal(err)
			}
			if err := sized.PublishRaw(ctx, tc.topic, []byte("k"), value, nil); err != nil {
				t.Fatalf("%d-byte record with the sized producer: %v", tc.size, err)
			}

			// An explicit message.max.bytes wins.
			fixed, err := producerAt(t, addr, reg, tc.option, producer.WithKafkaConfig(map[string]any{"message.max.bytes": 1_000_000}))
			if err != nil {
				t.Fatal(err)
			}
			wantErr(t, fixed.PublishRaw(ctx, tc.topic, []byte("k"), value, nil), producer.ErrTooLarge, "message.max.bytes")
		})
	}
}
