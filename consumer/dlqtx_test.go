package consumer_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/internal/broker"
)

// A dead-letter topic written by a transactional producer ends each
// partition with a commit marker, one past the last dead letter:
// ReadDeadLetters still returns every dead letter, and returns.
func TestReadDeadLettersEndsAfterCommitMarker(t *testing.T) {
	b, err := broker.Start(broker.WithPartitions(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	brokers := b.Addr()
	topic := "studio.title.changes.tx.dlq"
	if err := b.CreateTopic(topic, 1, nil); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.TransactionalID("dlq-writer"), kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		r := &kgo.Record{Partition: 0, Key: []byte("k"), Value: fmt.Appendf(nil, "dead %d", i),
			Headers: []kgo.RecordHeader{{Key: consumer.HeaderDLQTopic, Value: []byte("studio.title.changes.tx")}}}
		if err := cl.ProduceSync(ctx, r).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	if err := cl.EndTransaction(ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	var got []string
	err = consumer.ReadDeadLetters(ctx, brokers, topic, func(d consumer.DeadLetter) error {
		got = append(got, string(d.Value))
		return nil
	})
	if err != nil {
		t.Fatalf("ReadDeadLetters: %v (read %d of 3)", err, len(got))
	}
	if len(got) != 3 || got[0] != "dead 0" || got[2] != "dead 2" {
		t.Errorf("dead letters = %q, want dead 0..2", got)
	}
}
