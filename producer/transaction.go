package producer

import (
	"context"
	"errors"
	"fmt"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// ErrTxnAborted is wrapped by [Producer.CommitTransaction] when the
// transaction could not commit and was aborted instead: none of its
// records or offsets take effect, and the work can be redone in a new
// transaction.
var ErrTxnAborted = errors.New("producer: transaction aborted")

// ErrTxnFatal is wrapped when the transactional producer can no longer be
// used: another producer with the same transactional.id fenced it (a newer
// instance of the same worker started), or the broker rejected its
// producer epoch. The producer must be closed; the work belongs to the
// instance that fenced it.
var ErrTxnFatal = errors.New("producer: transactional producer fenced or failed fatally")

// WithTransactionalID makes the producer transactional: every record is
// published inside a transaction ([Producer.BeginTransaction] ...
// [Producer.CommitTransaction]) and becomes visible to read_committed
// readers only when it commits. id must be unique per running worker and
// stable across its restarts (for example the consumer group and the
// worker's instance name): a restarted worker calling
// [Producer.InitTransactions] aborts what its previous incarnation left
// open and fences it if it is still alive.
func WithTransactionalID(id string) Option {
	return func(c *config) { c.kafka["transactional.id"] = id }
}

// InitTransactions registers the transactional.id with the broker once,
// before the first transaction. It aborts a transaction that an earlier
// producer with the same id left open and fences that producer.
func (p *Producer) InitTransactions(ctx context.Context) error {
	if err := p.kp.InitTransactions(ctx); err != nil {
		return txnError("init transactions", err)
	}
	return nil
}

// BeginTransaction starts a transaction; records published until it
// commits or aborts belong to it.
func (p *Producer) BeginTransaction() error {
	if err := p.kp.BeginTransaction(); err != nil {
		return txnError("begin transaction", err)
	}
	return nil
}

// SendOffsetsToTransaction adds a consumer group's offsets to the current
// transaction: they are committed if and only if the transaction commits
// (read-process-write). meta comes from the group's consumer
// (GetConsumerGroupMetadata); its generation makes the broker refuse
// offsets of a consumer that lost its partitions in a rebalance.
func (p *Producer) SendOffsetsToTransaction(ctx context.Context, offsets []kafka.TopicPartition, meta *kafka.ConsumerGroupMetadata) error {
	if err := p.kp.SendOffsetsToTransaction(ctx, offsets, meta); err != nil {
		return txnError("send offsets to transaction", err)
	}
	return nil
}

// CommitTransaction flushes the transaction's records and commits it. A
// retriable failure is retried until ctx ends; a failure that requires an
// abort aborts the transaction and returns an error wrapping
// [ErrTxnAborted]; a fatal one wraps [ErrTxnFatal].
func (p *Producer) CommitTransaction(ctx context.Context) error {
	for {
		err := p.kp.CommitTransaction(ctx)
		if err == nil {
			return nil
		}
		var ke kafka.Error
		switch {
		case errors.As(err, &ke) && ke.TxnRequiresAbort():
			if aerr := p.AbortTransaction(context.WithoutCancel(ctx)); aerr != nil {
				return errors.Join(fmt.Errorf("%w: commit: %w", ErrTxnAborted, err), aerr)
			}
			return fmt.Errorf("%w: commit: %w", ErrTxnAborted, err)
		case errors.As(err, &ke) && ke.IsRetriable() && ctx.Err() == nil:
			continue
		}
		return txnError("commit transaction", err)
	}
}

// AbortTransaction aborts the current transaction: read_committed readers
// never see its records, and its offsets are not committed. It waits for
// the records in flight, within ctx.
func (p *Producer) AbortTransaction(ctx context.Context) error {
	if err := p.kp.AbortTransaction(ctx); err != nil {
		return txnError("abort transaction", err)
	}
	return nil
}

// txnError wraps err with op, and with [ErrTxnFatal] when librdkafka says
// the producer cannot continue.
func txnError(op string, err error) error {
	var ke kafka.Error
	if errors.As(err, &ke) && ke.IsFatal() {
		return fmt.Errorf("%w: %s: %w", ErrTxnFatal, op, err)
	}
	return fmt.Errorf("producer: %s: %w", op, err)
}
