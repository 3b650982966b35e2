package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/slatehq/slate/consumer/sink"
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

// ToSinks returns a handler that writes each batch to every sink in turn
// and fails if any of them fails. A retried batch is written again to the
// sinks that had succeeded, which their idempotency makes harmless.
func ToSinks(sinks ...sink.Sink) Handler {
	return HandlerFunc(func(ctx context.Context, batch []sink.Event) error {
		for i, s := range sinks {
			if err := s.Write(ctx, batch); err != nil {
				return fmt.Errorf("consumer: sink %d (%T): %w", i, s, err)
			}
		}
		return nil
	})
}

// DedupeStore is what [Deduplicate] needs of a dedupe store; the stores of
// package dedupe implement it.
type DedupeStore interface {
	Claim(ctx context.Context, ids []string, lease time.Duration) (fresh []bool, err error)
	Done(ctx context.Context, ids []string, ttl time.Duration) error
	Release(ctx context.Context, ids []string) error
}

// DedupeConfig sets how long a claim and a done record last.
type DedupeConfig struct {
	// Lease bounds how long a claimed id stays blocked if the process dies
	// between the claim and the write (default 1m).
	Lease time.Duration
	// TTL is how long a done id is remembered (default 7 days): a
	// duplicate delivered within it costs a lookup, not a sink write.
	TTL time.Duration
	// OnDuplicates, if set, is told how many duplicates each batch dropped.
	OnDuplicates func(n int)
}

// Deduplicate returns a handler that drops events whose envelope id is
// already done or claimed, passes the fresh ones to next, records them as
// done only after next succeeded, and releases them if it failed so the
// retry runs them.
func Deduplicate(store DedupeStore, cfg DedupeConfig, next Handler) Handler {
	if cfg.Lease <= 0 {
		cfg.Lease = time.Minute
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 7 * 24 * time.Hour
	}
	return HandlerFunc(func(ctx context.Context, batch []sink.Event) error {
		ids := make([]string, len(batch))
		for i := range batch {
			ids[i] = batch[i].ID
		}
		fresh, err := store.Claim(ctx, ids, cfg.Lease)
		if err != nil {
			return fmt.Errorf("consumer: dedupe claim: %w", err)
		}
		keep := make([]sink.Event, 0, len(batch))
		claimed := make([]string, 0, len(batch))
		for i, ok := range fresh {
			if ok {
				keep = append(keep, batch[i])
				claimed = append(claimed, ids[i])
			}
		}
		if d := len(batch) - len(keep); d > 0 && cfg.OnDuplicates != nil {
			cfg.OnDuplicates(d)
		}
		if len(keep) == 0 {
			return nil
		}
		if err := next.Handle(ctx, keep); err != nil {
			// Use a fresh context: the release must happen even when ctx
			// was cancelled, or the ids stay blocked until the lease ends.
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			return errors.Join(err, store.Release(rctx, claimed))
		}
		if err := store.Done(ctx, claimed, cfg.TTL); err != nil {
			// The writes happened; the leases expire and a redelivery is
			// absorbed by the sinks' own idempotency.
			return fmt.Errorf("consumer: dedupe done: %w", err)
		}
		return nil
	})
}
