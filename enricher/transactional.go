package enricher

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/slatehq/slate/consumer/sink"
)

// TxProducer is the transactional side of the producer an [Enricher]
// publishes through: *producer.Producer built with
// producer.WithTransactionalID implements it.
type TxProducer interface {
	InitTransactions(ctx context.Context) error
	BeginTransaction() error
	SendOffsetsToTransaction(ctx context.Context, offsets []kafka.TopicPartition, meta *kafka.ConsumerGroupMetadata) error
	CommitTransaction(ctx context.Context) error
	AbortTransaction(ctx context.Context) error
}

// abortTimeout bounds an abort, which runs even after the batch's context
// ended.
const abortTimeout = 10 * time.Second

// TxHandler runs an [Enricher]'s batches in Kafka transactions, for
// exactly-once materialization (the pipeline's `transactional: true`): a
// batch's materialized records and its input offsets commit together, so
// a read_committed reader sees each batch's outputs once, even when the
// enricher is killed mid-batch and restarted. It implements
// consumer.TransactionalHandler; run it under a consumer built with
// consumer.WithTransactional.
//
// The enricher must publish through the same producer as tx (and so must
// its dead-letter publisher, if dead letters are to be part of the
// transaction). Calls are serialized: one transaction is open at a time.
type TxHandler struct {
	e  *Enricher
	tx TxProducer

	mu    sync.Mutex
	ready bool // InitTransactions succeeded
}

// NewTransactional returns a handler that runs e's batches in
// transactions of tx. The transactions are initialized on the first batch.
func NewTransactional(e *Enricher, tx TxProducer) (*TxHandler, error) {
	if e == nil || tx == nil {
		return nil, fmt.Errorf("%w: transactional handler needs an enricher and a transactional producer", ErrConfig)
	}
	return &TxHandler{e: e, tx: tx}, nil
}

// Handle materializes batch in a transaction of its own, without input
// offsets (a consumer that commits offsets itself calls it; outputs are
// then atomic per batch but may repeat after a crash).
func (h *TxHandler) Handle(ctx context.Context, batch []sink.Event) error {
	return h.HandleTx(ctx, batch, nil, nil)
}

// HandleTx begins a transaction, materializes batch into it, adds offsets
// for the consumer group of meta, and commits. On any failure it aborts
// the transaction (neither outputs nor offsets take effect) and returns
// the error, so the consumer retries the batch. An error wrapping
// producer.ErrTxnFatal means another instance with the same
// transactional.id fenced this one: the producer is unusable and the
// process should stop.
func (h *TxHandler) HandleTx(ctx context.Context, batch []sink.Event, offsets []kafka.TopicPartition, meta *kafka.ConsumerGroupMetadata) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.ready {
		if err := h.tx.InitTransactions(ctx); err != nil {
			return fmt.Errorf("enricher: %w", err)
		}
		h.ready = true
	}
	if err := h.tx.BeginTransaction(); err != nil {
		return fmt.Errorf("enricher: %w", err)
	}
	err := h.e.Handle(ctx, batch)
	if err == nil && len(offsets) > 0 {
		err = h.tx.SendOffsetsToTransaction(ctx, offsets, meta)
	}
	if err != nil {
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		if aerr := h.tx.AbortTransaction(actx); aerr != nil {
			return errors.Join(err, fmt.Errorf("enricher: %w", aerr))
		}
		return err
	}
	if err := h.tx.CommitTransaction(ctx); err != nil {
		// The commit may have left the transaction open (a timeout); abort
		// it so the retry can begin a new one. After an abortable failure
		// the producer aborted already, and this abort only fails.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), abortTimeout)
		defer cancel()
		if aerr := h.tx.AbortTransaction(actx); aerr != nil {
			h.e.cfg.log.Debug("abort after failed commit", "entity", h.e.entity, "err", aerr)
		}
		return fmt.Errorf("enricher: %w", err)
	}
	return nil
}
