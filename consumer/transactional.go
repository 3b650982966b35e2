package consumer

import (
	"context"
	"fmt"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/slatehq/slate/consumer/sink"
)

// TransactionalHandler is a [Handler] that can take a batch's input
// offsets into its own Kafka transaction (read-process-write, exactly
// once): HandleTx publishes the batch's outputs and, in the same
// transaction, commits offsets for the consumer group described by meta
// (producer SendOffsetsToTransaction), then commits the transaction. It
// returns nil only if the transaction committed; on error it must have
// aborted it (or lost it to a fencing producer), so that neither outputs
// nor offsets took effect and the batch can be handled again.
//
// The consumer hands batches to HandleTx, instead of Handle, only with
// [WithTransactional]; the ability is checked when [New] runs.
type TransactionalHandler interface {
	Handler
	HandleTx(ctx context.Context, batch []sink.Event, offsets []kafka.TopicPartition, meta *kafka.ConsumerGroupMetadata) error
}

// WithTransactional makes the consumer hand each batch's offsets to the
// handler's transaction instead of storing or committing them itself:
// the handler must implement [TransactionalHandler], and concurrency
// ([WithConcurrency]) must stay 1, as one transaction covers a batch. The
// consumer then reads its input with isolation.level=read_committed and
// never commits offsets on its own (not in the background, not on
// revocation or close), so a batch's outputs and its offsets become
// visible together or not at all; readers of the outputs must use
// isolation.level=read_committed too. Undecodable records still go to the
// dead-letter topic outside the transaction, and their offsets are
// committed with the batch's. The lag gauges are not updated in this
// mode.
func WithTransactional() Option { return func(c *config) { c.transactional = true } }

// validateTransactional checks what [WithTransactional] needs of h.
func (c *config) validateTransactional(h Handler) error {
	if !c.transactional {
		return nil
	}
	if _, ok := h.(TransactionalHandler); !ok {
		return fmt.Errorf("%w: WithTransactional needs a handler with HandleTx (consumer.TransactionalHandler), got %T", ErrConfig, h)
	}
	if c.lanes != 1 {
		return fmt.Errorf("%w: WithTransactional needs concurrency 1, got %d", ErrConfig, c.lanes)
	}
	return nil
}

// transactionalKafka is what [WithTransactional] sets on the client: no
// offsets are committed by it, and only committed records are read.
func transactionalKafka() kafka.ConfigMap {
	return kafka.ConfigMap{"enable.auto.commit": false, "isolation.level": "read_committed"}
}

// handleTx hands the events of the partitions still assigned, and the
// offsets after the batch's last record of each of them, to the handler's
// transaction with the group's current metadata. Records of partitions
// revoked while the batch waited are left to their new owner: neither
// their outputs nor their offsets go into the transaction.
func (c *Consumer) handleTx(ctx context.Context, kc *kafka.Consumer, msgs []*kafka.Message, events []sink.Event) error {
	owned := map[tp]bool{}
	as, err := kc.Assignment()
	if err != nil {
		return fmt.Errorf("consumer: assignment: %w", err)
	}
	for _, p := range as {
		owned[tp{*p.Topic, p.Partition}] = true
	}
	next := make(map[tp]kafka.Offset)
	for _, m := range msgs {
		k := tp{*m.TopicPartition.Topic, m.TopicPartition.Partition}
		if o := m.TopicPartition.Offset + 1; owned[k] && o > next[k] {
			next[k] = o
		}
	}
	if len(next) == 0 {
		return nil
	}
	offsets := make([]kafka.TopicPartition, 0, len(next))
	for k, o := range next {
		offsets = append(offsets, kafka.TopicPartition{Topic: &k.topic, Partition: k.part, Offset: o})
	}
	batch := make([]sink.Event, 0, len(events))
	for _, ev := range events {
		if owned[tp{ev.Topic, ev.Partition}] {
			batch = append(batch, ev)
		}
	}
	meta, err := kc.GetConsumerGroupMetadata()
	if err != nil {
		return fmt.Errorf("consumer: group metadata: %w", err)
	}
	return c.h.(TransactionalHandler).HandleTx(ctx, batch, offsets, meta)
}
