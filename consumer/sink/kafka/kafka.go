package kafka

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/publish"
	"github.com/slatehq/slate/schema"
)

// ErrConfig is wrapped by every configuration error of [New].
var ErrConfig = errors.New("kafka sink: invalid config")

// ErrUnavailable is wrapped when publishing failed in a way a retry may
// fix (see producer.IsRetryable). It matches [sink.ErrUnavailable].
var ErrUnavailable = sink.NewUnavailable("kafka sink: broker unavailable")

// Publisher publishes envelopes to a topic and returns only after the
// broker acknowledged all of them. *producer.Producer implements it. It is
// [publish.Publisher], the contract every slate component publishes
// through.
type Publisher = publish.Publisher

// Route returns the topic an event goes to; "" drops the event.
type Route func(ev *sink.Event) string

// ToTopic routes every event to one topic.
func ToTopic(topic string) Route { return func(*sink.Event) string { return topic } }

// ByEntityType routes each event to the materialized topic of its entity
// type under the default prefix (studio.<entitytype>.materialized).
func ByEntityType() Route {
	return func(ev *sink.Event) string { return schema.MaterializedTopic(ev.EntityType) }
}

// ByEntityTypeIn routes each event to the materialized topic of its entity
// type under prefix (<prefix><entitytype>.materialized; "" is
// [schema.DefaultTopicPrefix]). It fails, wrapping [ErrConfig], on a
// prefix that cannot start a topic name ([schema.ValidateTopicPrefix]).
func ByEntityTypeIn(prefix string) (Route, error) {
	if err := schema.ValidateTopicPrefix(prefix); err != nil {
		return nil, fmt.Errorf("%w: ByEntityTypeIn: %w", ErrConfig, err)
	}
	return func(ev *sink.Event) string { return schema.MaterializedTopicIn(prefix, ev.EntityType) }, nil
}

// Option configures [New].
type Option func(*Sink)

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(s *Sink) { s.log = l } }

// Sink republishes events through a [Publisher]. The publisher is the
// caller's: Close does not close it.
type Sink struct {
	pub   Publisher
	route Route
	log   *slog.Logger

	mu     sync.Mutex
	closed bool
}

var _ sink.Sink = (*Sink)(nil)

// Name returns "kafka", the sink's name in consumer.ToSinks: the label of
// its slate_sink_* metrics and the key of its per-sink dedupe marks.
func (s *Sink) Name() string { return "kafka" }

// New returns a sink that publishes each event to route(event) through pub.
func New(pub Publisher, route Route, opts ...Option) (*Sink, error) {
	if pub == nil {
		return nil, fmt.Errorf("%w: publisher is nil", ErrConfig)
	}
	if route == nil {
		return nil, fmt.Errorf("%w: route is nil", ErrConfig)
	}
	s := &Sink{pub: pub, route: route, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(s)
	}
	return s, nil
}

// Write publishes the batch, one Publish call per target topic, keeping
// the batch's order within each topic (and so per key). It returns nil only
// when the broker acknowledged every event.
func (s *Sink) Write(ctx context.Context, batch []sink.Event) error {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return sink.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("kafka sink: write: %w", err)
	}
	var order []string
	byTopic := map[string][]schema.Envelope{}
	for i := range batch {
		t := s.route(&batch[i])
		if t == "" {
			continue
		}
		if _, ok := byTopic[t]; !ok {
			order = append(order, t)
		}
		byTopic[t] = append(byTopic[t], batch[i].Envelope)
	}
	for _, t := range order {
		if err := s.pub.Publish(ctx, t, byTopic[t]...); err != nil {
			err = fmt.Errorf("kafka sink: publish %d events to %s: %w", len(byTopic[t]), t, err)
			if producer.IsRetryable(err) {
				err = fmt.Errorf("%w: %w", ErrUnavailable, err)
			}
			return err
		}
		s.log.Debug("events republished", "topic", t, "events", len(byTopic[t]))
	}
	return nil
}

// Close marks the sink closed. Write is synchronous, so nothing is pending.
func (s *Sink) Close(context.Context) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return sink.ErrClosed
	}
	s.closed = true
	return nil
}
