package cdc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slatehq/slate/publish"
	"github.com/slatehq/slate/schema"
)

// Publisher sends envelopes to a topic, keyed by subject, and returns only
// after the broker acknowledged all of them. *producer.Producer implements
// it. It is [publish.Publisher], the contract every slate component
// publishes through, named here so the Runner's docs read on their own.
type Publisher = publish.Publisher

// AsyncPublisher is a Publisher that can also enqueue one envelope and
// report its acknowledgement later, keeping the enqueue order per key.
// *producer.Producer implements it; the Runner then streams instead of
// publishing in rounds. It is [publish.AsyncPublisher].
type AsyncPublisher = publish.AsyncPublisher

// Runner connects a Source to a Publisher. It publishes batches in the
// order the source emitted them (per topic, in one ordered call, so the
// idempotent producer keeps per-key order), and Acks a batch's position
// only after Kafka acknowledged every event of it and of every batch
// before it. With an [AsyncPublisher] it enqueues events as they come and
// acks each batch once its events and those of every earlier batch are
// acknowledged, so batches overlap their broker round trips; with a plain
// Publisher several ready batches are published together in rounds, so
// throughput does not pay one round trip per source transaction.
type Runner struct {
	pub      Publisher
	log      *slog.Logger
	queue    int
	maxGroup int
	sync     bool
	metrics  *Metrics
	ran      atomic.Bool
}

// RunnerOption configures [NewRunner].
type RunnerOption func(*Runner)

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) RunnerOption { return func(r *Runner) { r.log = l } }

// WithQueue sets how many emitted batches may wait for publishing before
// emit blocks, and with an [AsyncPublisher] also how many published
// batches may wait for their acknowledgement (default 1024).
func WithQueue(n int) RunnerOption { return func(r *Runner) { r.queue = n } }

// WithMaxGroup sets how many events at most are published in one round
// (default 10000); it applies when publishing in rounds.
func WithMaxGroup(n int) RunnerOption { return func(r *Runner) { r.maxGroup = n } }

// WithSyncPublish publishes in rounds through Publish even when the
// publisher is an [AsyncPublisher].
func WithSyncPublish() RunnerOption { return func(r *Runner) { r.sync = true } }

// WithMetrics makes the runner update m.
func WithMetrics(m *Metrics) RunnerOption { return func(r *Runner) { r.metrics = m } }

// NewRunner returns a runner publishing through pub.
func NewRunner(pub Publisher, opts ...RunnerOption) (*Runner, error) {
	r := &Runner{pub: pub, log: slog.New(slog.DiscardHandler), queue: 1024, maxGroup: 10000}
	for _, o := range opts {
		o(r)
	}
	switch {
	case pub == nil:
		return nil, fmt.Errorf("%w: publisher is nil", ErrConfig)
	case r.queue < 1:
		return nil, fmt.Errorf("%w: queue %d, need at least 1", ErrConfig, r.queue)
	case r.maxGroup < 1:
		return nil, fmt.Errorf("%w: max group %d, need at least 1", ErrConfig, r.maxGroup)
	}
	if r.metrics == nil {
		r.metrics = NewMetrics(nil)
	}
	return r, nil
}

// Run runs src until ctx ends (then it returns nil) or the source or a
// publish fails (then it returns that error; nothing after the last acked
// position was confirmed, so a restart replays it). A Runner runs once.
func (r *Runner) Run(ctx context.Context, src Source) error {
	if !r.ran.CompareAndSwap(false, true) {
		return ErrClosed
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	queue := make(chan Batch, r.queue)
	failed := make(chan struct{})
	var pubErr error
	var failOnce sync.Once
	fail := func(err error) {
		failOnce.Do(func() {
			pubErr = err
			close(failed)
			cancel(err)
		})
	}
	var wg sync.WaitGroup
	if ap, ok := r.pub.(AsyncPublisher); ok && !r.sync {
		inflight := make(chan *tracked, r.queue)
		wg.Go(func() {
			defer close(inflight)
			if err := r.enqueueLoop(ctx, ap, queue, inflight); err != nil {
				fail(err)
			}
		})
		wg.Go(func() {
			if err := r.ackLoop(ctx, src, inflight); err != nil {
				fail(err)
			}
		})
	} else {
		wg.Go(func() {
			if err := r.publishLoop(ctx, src, queue); err != nil {
				fail(err)
			}
		})
	}
	emit := func(ectx context.Context, b Batch) error {
		select {
		case queue <- b:
			return nil
		case <-failed:
			return pubErr
		case <-ectx.Done():
			return ectx.Err()
		}
	}
	srcErr := src.Run(ctx, emit)
	close(queue)
	wg.Wait()
	switch {
	case pubErr != nil:
		return pubErr
	case srcErr != nil && !errors.Is(srcErr, context.Canceled):
		return srcErr
	}
	return nil
}

// nextBatch waits for the next queued batch; ok is false when the queue
// is closed or ctx ended.
func nextBatch(ctx context.Context, queue <-chan Batch) (b Batch, ok bool) {
	select {
	case b, ok = <-queue:
		return b, ok
	case <-ctx.Done():
		return b, false
	}
}

// publishLoop publishes queued batches in rounds and acks after each
// round. It returns nil when the queue is closed or ctx ends.
func (r *Runner) publishLoop(ctx context.Context, src Source, queue <-chan Batch) error {
	for {
		b, ok := nextBatch(ctx, queue)
		if !ok {
			return nil
		}
		round := []Batch{b}
		n := len(b.Events)
	fill:
		for n < r.maxGroup {
			select {
			case nb, more := <-queue:
				if !more {
					break fill
				}
				round = append(round, nb)
				n += len(nb.Events)
			default:
				break fill
			}
		}
		if err := r.publishRound(ctx, src, round); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

func (r *Runner) publishRound(ctx context.Context, src Source, round []Batch) error {
	byTopic := make(map[string][]schema.Envelope)
	var order []string
	var positions []Position
	var last time.Time
	for _, b := range round {
		for _, ev := range b.Events {
			if _, seen := byTopic[ev.Topic]; !seen {
				order = append(order, ev.Topic)
			}
			byTopic[ev.Topic] = append(byTopic[ev.Topic], ev.Envelope)
			if ev.Envelope.Time.After(last) {
				last = ev.Envelope.Time
			}
		}
		if b.Position != nil {
			positions = append(positions, b.Position)
		}
	}
	errs := make([]error, len(order))
	var wg sync.WaitGroup
	for i, topic := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := r.pub.Publish(ctx, topic, byTopic[topic]...); err != nil {
				errs[i] = fmt.Errorf("%w: %d events to %s: %w", ErrPublish, len(byTopic[topic]), topic, err)
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	for _, topic := range order {
		r.metrics.Events.WithLabelValues(topic).Add(float64(len(byTopic[topic])))
	}
	if !last.IsZero() {
		r.metrics.LagSeconds.Set(time.Since(last).Seconds())
	}
	// Every position, in order: a source may hang work on each (outbox
	// rows to delete), not only on the newest.
	for _, pos := range positions {
		if err := src.Ack(pos); err != nil {
			return fmt.Errorf("cdc: ack %s: %w", pos, err)
		}
	}
	if n := len(positions); n > 0 {
		r.log.Debug("cdc position acknowledged", "position", positions[n-1].String())
	}
	return nil
}

// tracked is a batch enqueued on an AsyncPublisher, waiting for the
// acknowledgements of its events.
type tracked struct {
	batch     Batch
	remaining atomic.Int64
	done      chan struct{}
	mu        sync.Mutex
	err       error
}

func (t *tracked) delivered(d publish.Delivery) {
	if d.Err != nil {
		t.mu.Lock()
		if t.err == nil {
			t.err = fmt.Errorf("%w: %s: %w", ErrPublish, d.Topic, d.Err)
		}
		t.mu.Unlock()
	}
	if t.remaining.Add(-1) == 0 {
		close(t.done)
	}
}

// enqueueLoop hands each event to the publisher in emit order and passes
// the batch on to ackLoop. It returns nil when the queue is closed or ctx
// ends.
func (r *Runner) enqueueLoop(ctx context.Context, ap AsyncPublisher, queue <-chan Batch, inflight chan<- *tracked) error {
	for {
		b, ok := nextBatch(ctx, queue)
		if !ok {
			return nil
		}
		t := &tracked{batch: b, done: make(chan struct{})}
		// One extra count, released after the last enqueue, so done
		// cannot close while events are still being enqueued.
		t.remaining.Store(int64(len(b.Events)) + 1)
		for _, ev := range b.Events {
			if err := ap.PublishAsync(ctx, ev.Topic, ev.Envelope, t.delivered); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("%w: enqueue to %s: %w", ErrPublish, ev.Topic, err)
			}
		}
		t.delivered(publish.Delivery{})
		select {
		case inflight <- t:
		case <-ctx.Done():
			return nil
		}
	}
}

// ackLoop acks the positions of enqueued batches in order, each once all
// its events are acknowledged. It returns nil when inflight is closed and
// drained or ctx ends.
func (r *Runner) ackLoop(ctx context.Context, src Source, inflight <-chan *tracked) error {
	counts := make(map[string]int)
	for t := range inflight {
		select {
		case <-t.done:
		case <-ctx.Done():
			return nil
		}
		t.mu.Lock()
		err := t.err
		t.mu.Unlock()
		if err != nil {
			return err
		}
		var last time.Time
		for _, ev := range t.batch.Events {
			counts[ev.Topic]++
			if ev.Envelope.Time.After(last) {
				last = ev.Envelope.Time
			}
		}
		for topic, n := range counts {
			r.metrics.Events.WithLabelValues(topic).Add(float64(n))
			delete(counts, topic)
		}
		if !last.IsZero() {
			r.metrics.LagSeconds.Set(time.Since(last).Seconds())
		}
		if pos := t.batch.Position; pos != nil {
			if err := src.Ack(pos); err != nil {
				return fmt.Errorf("cdc: ack %s: %w", pos, err)
			}
			if r.log.Enabled(ctx, slog.LevelDebug) {
				r.log.Debug("cdc position acknowledged", "position", pos.String())
			}
		}
	}
	return nil
}
