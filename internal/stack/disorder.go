package stack

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/services/titles"
)

// Disorder is the publisher of the studio's services in `slate up` and in
// the end-to-end tests: it publishes their ID-only change events through
// the real producer the way a flaky network does, so that the pipelines
// meet the disorder the README's "why ID-only events" describes, made by
// the services' own publishing path rather than by events forged
// beside it:
//
//   - every event is sent twice, the same envelope (same id) each time,
//     the second RetryAfter after the first, as a producer whose
//     acknowledgement was lost retries it;
//   - an event held with [Disorder.HoldNext] is acknowledged to the
//     service but sent only after the next event of the same entity, as a
//     publish that lost a race to the one after it.
//
// The services see every call succeed as with the plain producer, and
// PublishChange returns only after the broker acknowledged what it sent.
// It is safe for concurrent use.
type Disorder struct {
	p *producer.Producer
	// RetryAfter is the pause between an event and its duplicate (0: none).
	RetryAfter time.Duration

	mu   sync.Mutex
	hold map[key]bool              // entities whose next event is held back
	held map[key][]schema.Envelope // events held back, in order
	sent int64                     // envelopes sent, duplicates included
}

type key struct{ entityType, id string }

var _ titles.Publisher = (*Disorder)(nil)

// NewDisorder returns a Disorder over p.
func NewDisorder(p *producer.Producer, retryAfter time.Duration) *Disorder {
	return &Disorder{p: p, RetryAfter: retryAfter, hold: map[key]bool{}, held: map[key][]schema.Envelope{}}
}

// HoldNext holds back the next event of entityType id: the write is
// acknowledged, and its event is sent (twice) right after the event of
// the write that follows it.
func (d *Disorder) HoldNext(entityType, id string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.hold[key{entityType, id}] = true
}

// Sent returns the number of envelopes sent, duplicates included.
func (d *Disorder) Sent() int64 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.sent
}

// PublishChange implements titles.Publisher (and the schedules' and
// finance's Publisher).
func (d *Disorder) PublishChange(ctx context.Context, entityType, id string, op schema.Op, seq int64) error {
	e := d.p.NewChange(ctx, entityType, id, op, seq)
	k := key{entityType, id}
	d.mu.Lock()
	if d.hold[k] {
		delete(d.hold, k)
		d.held[k] = append(d.held[k], e)
		d.mu.Unlock()
		return nil
	}
	late := d.held[k]
	delete(d.held, k)
	d.mu.Unlock()
	topic := schema.ChangesTopicIn(d.p.TopicPrefix(), entityType)
	for _, env := range append([]schema.Envelope{e}, late...) {
		if err := d.twice(ctx, topic, env); err != nil {
			return err
		}
	}
	return nil
}

// twice sends e, then, RetryAfter later, e again.
func (d *Disorder) twice(ctx context.Context, topic string, e schema.Envelope) error {
	for i := range 2 {
		if i == 1 && d.RetryAfter > 0 {
			select {
			case <-ctx.Done():
				return fmt.Errorf("stack: duplicate of %s %s: %w", e.Type, e.Subject, ctx.Err())
			case <-time.After(d.RetryAfter):
			}
		}
		if err := d.p.Publish(ctx, topic, e); err != nil {
			return err
		}
		d.mu.Lock()
		d.sent++
		d.mu.Unlock()
	}
	return nil
}
