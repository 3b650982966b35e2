package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/dedupe"
)

// Handler processes one batch of events. Returning nil means the whole
// batch is done and its offsets may be committed; an error means the batch
// is retried (with backoff) as a whole, so handlers must be idempotent.
// Events of one key arrive in offset order.
type Handler interface {
	Handle(ctx context.Context, batch []sink.Event) error
}

// HandlerFunc adapts a function to a [Handler].
type HandlerFunc func(ctx context.Context, batch []sink.Event) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, batch []sink.Event) error { return f(ctx, batch) }

// Named is implemented by sinks that choose the label of their metrics;
// other sinks are labelled by their Go type ("*es.Sink").
type Named interface {
	Name() string
}

// ToSinks returns a handler that writes each batch to every sink in turn
// and fails if any of them fails. A retried batch is written again to the
// sinks that had succeeded, which their idempotency makes harmless.
//
// A sink that refuses some events for good ([sink.RejectedError]) does not
// stop the others: every sink still gets the whole batch, and the handler
// returns one [*sink.RejectedError] with the refusals of all sinks, each
// cause naming its sink, so that the consumer dead-letters those events.
//
// The handler is safe for concurrent use ([WithConcurrency]): calls to one
// sink are serialised, as the [sink.Sink] contract requires, while
// different lanes can be in different sinks at once. Each write is timed
// and counted per sink (slate_sink_write_seconds, slate_sink_errors_total,
// slate_sink_freshness_seconds).
func ToSinks(sinks ...sink.Sink) Handler {
	names := make([]string, len(sinks))
	locks := make([]sync.Mutex, len(sinks))
	for i, s := range sinks {
		names[i] = fmt.Sprintf("%T", s)
		if n, ok := s.(Named); ok {
			names[i] = n.Name()
		}
	}
	return HandlerFunc(func(ctx context.Context, batch []sink.Event) error {
		var rejected []sink.Rejection
		for i, s := range sinks {
			locks[i].Lock()
			start := time.Now()
			err := s.Write(ctx, batch)
			now := time.Now()
			locks[i].Unlock()
			sinkSeconds.WithLabelValues(names[i]).Observe(now.Sub(start).Seconds())
			applied := len(batch)
			if err != nil {
				sinkErrors.WithLabelValues(names[i]).Inc()
				rs, ok := sink.Rejections(err)
				if !ok {
					return fmt.Errorf("consumer: sink %d (%s): %w", i, names[i], err)
				}
				sinkRejected.WithLabelValues(names[i]).Add(float64(len(rs)))
				for _, r := range rs {
					r.Err = fmt.Errorf("sink %s: %w", names[i], r.Err)
					rejected = append(rejected, r)
				}
				applied -= len(rs)
			}
			sinkEvents.WithLabelValues(names[i]).Add(float64(applied))
			fresh := sinkFreshness.WithLabelValues(names[i])
			for j := range batch {
				fresh.Observe(now.Sub(batch[j].Time).Seconds())
			}
		}
		return sink.Reject(rejected...)
	})
}

// DedupeStore is what [Deduplicate] needs of a dedupe store; the stores of
// package dedupe implement it.
type DedupeStore interface {
	Claim(ctx context.Context, ids []string, lease time.Duration) (st []dedupe.Status, err error)
	Done(ctx context.Context, ids []string, ttl time.Duration) error
	Release(ctx context.Context, ids []string) error
}

// DedupeConfig sets how long a claim and a done record last.
type DedupeConfig struct {
	// Lease bounds how long a claimed id stays blocked if the process dies
	// between the claim and the write (default 1m): the next owner of the
	// partition finds the id held, retries the batch with backoff, and
	// applies the event once the lease ran out. Keep it above the longest
	// sink write of a batch, or a slow write's events may be applied twice.
	Lease time.Duration
	// TTL is how long a done id is remembered (default 7 days): a
	// duplicate delivered within it costs a lookup, not a sink write.
	TTL time.Duration
	// OnDuplicates, if set, is told how many duplicates each batch dropped.
	OnDuplicates func(n int)
	// FailOpen, when the store is unavailable (its error wraps
	// dedupe.ErrUnavailable), passes the whole batch to next without
	// dedupe and relies on the sinks' own idempotency (external versions
	// in Elasticsearch, offset-named files in Hive). A replay of the same
	// offsets stays harmless then, but a redelivery at a new offset (a
	// producer retry) is written again by sinks that are idempotent by
	// offset only, such as the Hive audit table. When false, the default,
	// the batch fails with [ErrDedupeUnavailable] and the consumer pauses
	// its partitions and retries with backoff until the store is back.
	FailOpen bool
	// Group labels the dedupe metrics (slate_consumer_duplicates_total,
	// slate_consumer_dedupe_fail_open_total); usually the consumer group.
	Group string
	// Logger receives a warning per fail-open batch; the default discards.
	Logger *slog.Logger
}

// ErrDedupeUnavailable is wrapped, beside the store's own error, when the
// dedupe store could not be reached and [DedupeConfig.FailOpen] is off.
var ErrDedupeUnavailable = errors.New("consumer: dedupe store unavailable")

// ErrDedupeDone is wrapped, beside the store's own error, when every sink
// wrote a batch but the store failed to record its ids as done. The write
// is not repeated: [Deduplicate] remembers those ids and, when the
// consumer retries the batch, records them as done again instead of
// claiming and writing them. The failure is temporary: it never counts
// toward [WithMaxAttempts] and never dead-letters an event.
var ErrDedupeDone = errors.New("consumer: dedupe done not recorded")

// ErrClaimHeld is returned for a batch with events that another claim
// holds ([dedupe.Held]): a consumer that is still writing them, or one that
// died and whose lease has not run out. The batch is retried with backoff
// until each of them is done (then dropped as a duplicate) or free again.
var ErrClaimHeld = errors.New("consumer: events held by another consumer's dedupe claim")

// Deduplicate returns a handler that drops events whose envelope id is
// already done, passes the fresh ones to next, records them as done only
// after next succeeded, and releases them if it failed so the retry runs
// them. A batch with an id that another claim holds is not applied: its
// claims are released and it fails with [ErrClaimHeld], to be retried once
// the holder finished or its lease ran out; skipping the id instead would
// lose the event if the holder had died.
func Deduplicate(store DedupeStore, cfg DedupeConfig, next Handler) Handler {
	if cfg.Lease <= 0 {
		cfg.Lease = time.Minute
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 7 * 24 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	dups := duplicatesTotal.WithLabelValues(cfg.Group)
	// undone holds the ids that every sink wrote but whose done record
	// failed: a retry records them again rather than writing them again.
	var undoneMu sync.Mutex
	undone := map[string]bool{}
	// release gives claims back with a fresh context: it must happen even
	// when ctx was cancelled, or the ids stay blocked until the lease ends.
	release := func(ctx context.Context, ids []string) error {
		if len(ids) == 0 {
			return nil
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		return store.Release(rctx, ids)
	}
	return HandlerFunc(func(ctx context.Context, batch []sink.Event) error {
		var written []string
		undoneMu.Lock()
		if len(undone) > 0 {
			rest := make([]sink.Event, 0, len(batch))
			for _, ev := range batch {
				if undone[ev.ID] {
					written = append(written, ev.ID)
				} else {
					rest = append(rest, ev)
				}
			}
			batch = rest
		}
		undoneMu.Unlock()
		if len(written) > 0 {
			if err := store.Done(ctx, written, cfg.TTL); err != nil {
				return fmt.Errorf("%w: %d written events: %w", ErrDedupeDone, len(written), err)
			}
			undoneMu.Lock()
			for _, id := range written {
				delete(undone, id)
			}
			undoneMu.Unlock()
		}
		if len(batch) == 0 {
			return nil
		}
		ids := make([]string, len(batch))
		for i := range batch {
			ids[i] = batch[i].ID
		}
		states, err := store.Claim(ctx, ids, cfg.Lease)
		if err != nil {
			if !dedupe.IsRetryable(err) {
				return fmt.Errorf("consumer: dedupe claim: %w", err)
			}
			if !cfg.FailOpen {
				return fmt.Errorf("%w: claim: %w", ErrDedupeUnavailable, err)
			}
			failOpen.WithLabelValues(cfg.Group).Inc()
			cfg.Logger.Warn("dedupe store unavailable, writing without dedupe", "group", cfg.Group, "events", len(batch), "err", err)
			return next.Handle(ctx, batch)
		}
		keep := make([]sink.Event, 0, len(batch))
		claimed := make([]string, 0, len(batch))
		heldID, nHeld := "", 0
		for i, st := range states {
			switch st {
			case dedupe.Fresh:
				keep = append(keep, batch[i])
				claimed = append(claimed, ids[i])
			case dedupe.Held:
				if nHeld == 0 {
					heldID = ids[i]
				}
				nHeld++
			}
		}
		if nHeld > 0 {
			held.WithLabelValues(cfg.Group).Add(float64(nHeld))
			return errors.Join(fmt.Errorf("%w: %d of %d events, first %s", ErrClaimHeld, nHeld, len(batch), heldID),
				release(ctx, claimed))
		}
		if d := len(batch) - len(keep); d > 0 {
			dups.Add(float64(d))
			if cfg.OnDuplicates != nil {
				cfg.OnDuplicates(d)
			}
		}
		if len(keep) == 0 {
			return nil
		}
		err = next.Handle(ctx, keep)
		if rs, ok := sink.Rejections(err); ok {
			// The other events were written: they are done. The refused
			// ones are released, so that a retry (the dead-letter write
			// failed) or a replay meets them again instead of dropping
			// them as duplicates.
			refused := make(map[string]bool, len(rs))
			for _, r := range rs {
				refused[r.Event.ID] = true
			}
			written := claimed[:0:0]
			for _, id := range claimed {
				if !refused[id] {
					written = append(written, id)
				}
			}
			claimed = written
			if rerr := release(ctx, slices.Collect(maps.Keys(refused))); rerr != nil {
				return errors.Join(err, rerr)
			}
		} else if err != nil {
			return errors.Join(err, release(ctx, claimed))
		}
		rejected := err // nil, or the refusals the consumer dead-letters
		if len(claimed) == 0 {
			return rejected
		}
		if err := store.Done(ctx, claimed, cfg.TTL); err != nil {
			if cfg.FailOpen && dedupe.IsRetryable(err) {
				// The writes happened; the leases expire and a redelivery
				// is absorbed by the sinks' own idempotency.
				cfg.Logger.Warn("dedupe store unavailable, done markers not recorded", "group", cfg.Group, "events", len(claimed), "err", err)
				return rejected
			}
			// Every sink wrote these events; only the bookkeeping failed.
			// The retry records them as done without writing them again.
			undoneMu.Lock()
			for _, id := range claimed {
				undone[id] = true
			}
			undoneMu.Unlock()
			return errors.Join(rejected, fmt.Errorf("%w: %d events: %w", ErrDedupeDone, len(claimed), err))
		}
		return rejected
	})
}
