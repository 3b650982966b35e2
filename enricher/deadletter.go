package enricher

import (
	"context"
	"errors"
	"fmt"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/publish"
	"github.com/slatehq/slate/schema"
)

// DeadLetterPublisher writes one record as given and returns after the
// broker acknowledged it. *producer.Producer implements it. It is
// [publish.DeadLetterPublisher], the one the consumer's dead letters go
// through too.
type DeadLetterPublisher = publish.DeadLetterPublisher

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

// deadLetter sends every event of batch, re-encoded, to <topic>.dlq; an
// event too large for it goes as a truncated copy (see [WithDeadLetter]).
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
		err = e.cfg.dlq.PublishRaw(ctx, topic, []byte(env.Subject), value, hs)
		if err != nil && tooLarge(err) {
			// No retry cures it: a truncated copy names the origin, where
			// the whole record stays while its topic retains it.
			e.cfg.log.Warn("event too large for its dead-letter topic, dead-lettering a truncated copy", "entity", e.entity,
				"topic", ev.Topic, "partition", ev.Partition, "offset", ev.Offset, "bytes", len(value), "err", err)
			tv, ths := schema.TruncateDeadLetter(value, hs)
			if terr := e.cfg.dlq.PublishRaw(ctx, topic, []byte(env.Subject), tv, ths); terr != nil {
				err = fmt.Errorf("%w; the truncated copy failed too: %w", err, terr)
			} else {
				err = nil
				e.m.deadLettersTruncated.WithLabelValues(e.entity, ev.Topic).Inc()
			}
		}
		if err != nil {
			return fmt.Errorf("enricher: dead-letter %s (%d bytes) to %s: %w", env.ID, len(value), topic, err)
		}
		e.m.deadLetters.WithLabelValues(e.entity, ev.Topic).Inc()
	}
	return nil
}

// tooLarge reports whether a publish failed because the record is larger
// than the broker, the topic or the client accepts (librdkafka
// ErrMsgSizeTooLarge, broker MESSAGE_TOO_LARGE or RECORD_LIST_TOO_LARGE).
func tooLarge(err error) bool {
	var ke kafka.Error
	return errors.As(err, &ke) && (ke.Code() == kafka.ErrMsgSizeTooLarge || ke.Code() == kafka.ErrRecordListTooLarge)
}
