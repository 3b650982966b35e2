package service

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/slatehq/slate/schema"
)

// Publisher publishes an ID-only change event: entity type, id, operation
// and the entity's new version as the event's sequence. It returns only when
// the event is durably accepted (for Kafka: acknowledged by the broker), or
// with an error. The services re-export it (titles.Publisher); the
// producer SDK satisfies it.
type Publisher interface {
	PublishChange(ctx context.Context, entityType, id string, op schema.Op, seq int64) error
}

// PublisherFunc adapts a function to [Publisher].
type PublisherFunc func(ctx context.Context, entityType, id string, op schema.Op, seq int64) error

// PublishChange calls f.
func (f PublisherFunc) PublishChange(ctx context.Context, entityType, id string, op schema.Op, seq int64) error {
	return f(ctx, entityType, id, op, seq)
}

// DefaultPublishTimeout bounds one PublishChange call unless a service is
// told otherwise.
const DefaultPublishTimeout = 10 * time.Second

// Publish sends the change event of an applied write through pub. It is
// detached from the caller's cancellation but bounded by timeout: once the
// write is stored, a client that gives up must not also cost the event. A
// failure is logged and returned wrapping [ErrPublish].
func Publish(ctx context.Context, pub Publisher, log *slog.Logger, timeout time.Duration, entityType, id string, op schema.Op, seq int64) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), timeout)
	defer cancel()
	if err := pub.PublishChange(ctx, entityType, id, op, seq); err != nil {
		log.ErrorContext(ctx, "change event not published; write stays applied",
			"entitytype", entityType, "id", id, "op", string(op), "seq", seq, "err", err)
		return fmt.Errorf("%w: %s %s %s at version %d is applied: %w", ErrPublish, op, entityType, id, seq, err)
	}
	log.DebugContext(ctx, "change published",
		"entitytype", entityType, "id", id, "op", string(op), "seq", seq)
	return nil
}
