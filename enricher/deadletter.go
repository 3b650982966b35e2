package enricher

import (
	"context"
	"fmt"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/schema"
)

// DeadLetterPublisher writes one record as given and returns after the
// broker acknowledged it. *producer.Producer implements it.
type DeadLetterPublisher interface {
	PublishRaw(ctx context.Context, topic string, key, value []byte, headers []schema.Header) error
}

// Dead-letter headers, added to the ce_* headers of the dead-lettered
// envelope: those of the consumer runtime (schema.AppendDeadLetterHeaders).
const (
	HeaderDLQError     = schema.HeaderDLQError
	HeaderDLQStage     = schema.HeaderDLQStage
	HeaderDLQTopic     = schema.HeaderDLQTopic
	HeaderDLQPartition = schema.HeaderDLQPartition
	HeaderDLQOffset    = schema.HeaderDLQOffset
	HeaderDLQAttempts  = schema.HeaderDLQAttempts
)

// DeadLetterStage is the value of the stage header of the enricher's dead
// letters.
const DeadLetterStage = "enrich"

// deadLetter sends every event of batch, re-encoded, to <topic>.dlq.
func (e *Enricher) deadLetter(ctx context.Context, batch []sink.Event, cause error, attempts int) error {
	for i := range batch {
		ev := &batch[i]
		env := ev.Envelope
		topic := schema.DLQTopic(ev.Topic)
		value, err := e.codec.Encode(ctx, nil, topic, &env)
		if err != nil {
			return fmt.Errorf("enricher: dead-letter encode %s: %w", env.ID, err)
		}
		hs := schema.AppendHeaders(make([]schema.Header, 0, 17), &env)
		hs = schema.AppendDeadLetterHeaders(hs, schema.DeadLetterOrigin{Err: cause, Stage: DeadLetterStage,
			Topic: ev.Topic, Partition: ev.Partition, Offset: ev.Offset, Attempts: attempts})
		if err := e.cfg.dlq.PublishRaw(ctx, topic, []byte(env.Subject), value, hs); err != nil {
			return fmt.Errorf("enricher: dead-letter to %s: %w", topic, err)
		}
		deadLetters.WithLabelValues(e.entity, ev.Topic).Inc()
	}
	return nil
}
