package enricher

import (
	"context"
	"fmt"
	"strconv"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/schema"
)

// DeadLetterPublisher writes one record as given and returns after the
// broker acknowledged it. *producer.Producer implements it.
type DeadLetterPublisher interface {
	PublishRaw(ctx context.Context, topic string, key, value []byte, headers []schema.Header) error
}

// Dead-letter headers, added to the ce_* headers of the dead-lettered
// envelope. The names match those of the consumer runtime.
const (
	HeaderDLQError     = "slate_dlq_error"
	HeaderDLQStage     = "slate_dlq_stage"
	HeaderDLQTopic     = "slate_dlq_origin_topic"
	HeaderDLQPartition = "slate_dlq_origin_partition"
	HeaderDLQOffset    = "slate_dlq_origin_offset"
	HeaderDLQAttempts  = "slate_dlq_attempts"
)

// DeadLetterStage is the value of the stage header of the enricher's dead
// letters.
const DeadLetterStage = "enrich"

// deadLetter sends every event of batch, re-encoded, to <topic>.dlq.
func (e *Enricher) deadLetter(ctx context.Context, batch []sink.Event, cause error, attempts int) error {
	msg := []byte(cause.Error())
	for i := range batch {
		ev := &batch[i]
		env := ev.Envelope
		topic := schema.DLQTopic(ev.Topic)
		value, err := e.codec.Encode(ctx, nil, topic, &env)
		if err != nil {
			return fmt.Errorf("enricher: dead-letter encode %s: %w", env.ID, err)
		}
		hs := schema.AppendHeaders(make([]schema.Header, 0, 17), &env)
		hs = append(hs,
			schema.Header{Key: HeaderDLQError, Value: msg},
			schema.Header{Key: HeaderDLQStage, Value: []byte(DeadLetterStage)},
			schema.Header{Key: HeaderDLQTopic, Value: []byte(ev.Topic)},
			schema.Header{Key: HeaderDLQPartition, Value: strconv.AppendInt(nil, int64(ev.Partition), 10)},
			schema.Header{Key: HeaderDLQOffset, Value: strconv.AppendInt(nil, ev.Offset, 10)},
			schema.Header{Key: HeaderDLQAttempts, Value: strconv.AppendInt(nil, int64(attempts), 10)},
		)
		if err := e.cfg.dlq.PublishRaw(ctx, topic, []byte(env.Subject), value, hs); err != nil {
			return fmt.Errorf("enricher: dead-letter to %s: %w", topic, err)
		}
		deadLetters.WithLabelValues(e.entity, ev.Topic).Inc()
	}
	return nil
}
