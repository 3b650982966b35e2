package dedupe

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"time"
)

// Store is the dedupe contract between the consumer and its cache. All
// methods take a batch of envelope ids, are safe for concurrent use and
// honour ctx.
type Store interface {
	// Claim tries to take a lease of the given duration on each id and
	// reports what it found per id: [Fresh] (the caller now holds the lease
	// and must apply the id), [Duplicate] (done already, or a repeat of an
	// earlier id of the same call) or [Held] (another claim's lease is
	// live). len(st) == len(ids) whenever err is nil.
	Claim(ctx context.Context, ids []string, lease time.Duration) (st []Status, err error)
	// Done records the ids as applied for ttl, replacing any lease. Call it
	// only after every sink write of the ids succeeded.
	Done(ctx context.Context, ids []string, ttl time.Duration) error
	// Release gives up leases taken by Claim so that a retry can claim the
	// ids again. It never removes a done marker.
	Release(ctx context.Context, ids []string) error
}

// Status is what [Store.Claim] found for one id.
type Status uint8

const (
	// Fresh means the caller now holds a lease on the id: it must apply
	// the event, then call Done, or Release if it failed.
	Fresh Status = iota + 1
	// Duplicate means the id is done already, or repeats an earlier id of
	// the same call: skip it.
	Duplicate
	// Held means another claim holds a live lease on the id and its outcome
	// is not known yet: the holder may still record it done, or fail and
	// release it, or have died, and then the lease runs out. Skipping it
	// would lose the event if the holder never finishes; claim it again
	// later.
	Held
)

// String returns "fresh", "duplicate" or "held".
func (s Status) String() string {
	switch s {
	case Fresh:
		return "fresh"
	case Duplicate:
		return "duplicate"
	case Held:
		return "held"
	}
	return "Status(" + strconv.Itoa(int(s)) + ")"
}

var (
	// ErrClosed is returned by calls on a closed store.
	ErrClosed = errors.New("dedupe: closed")
	// ErrUnavailable is wrapped by every error that means the backend could
	// not be reached or is temporarily refusing work (connection refused,
	// timeouts, a Redis that is loading or read-only). The consumer pauses
	// and retries on it; see [IsRetryable].
	ErrUnavailable = errors.New("dedupe: store unavailable")
	// ErrInvalidDuration is returned when a lease or ttl is not positive.
	ErrInvalidDuration = errors.New("dedupe: lease and ttl must be positive")
)

// IsRetryable reports whether err is temporary: the same call may succeed
// later, so the caller should back off and retry rather than fail the
// events. It is true for errors that wrap [ErrUnavailable].
func IsRetryable(err error) bool {
	return errors.Is(err, ErrUnavailable)
}

// Option configures a store. Each option documents which stores read it;
// the others ignore it.
type Option func(*config)

type config struct {
	logger        *slog.Logger
	maxEntries    int
	sweepInterval time.Duration
	now           func() time.Time
	prefix        string
}

func newConfig(opts []Option) config {
	c := config{
		logger:        slog.New(slog.DiscardHandler),
		sweepInterval: time.Minute,
		now:           time.Now,
		prefix:        DefaultKeyPrefix,
	}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// WithLogger sets the logger of any store. The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(c *config) {
		if l != nil {
			c.logger = l
		}
	}
}

// WithMaxEntries bounds a [Memory] store to n ids (leases and done markers
// together). When full, the done marker recorded first is evicted to make
// room; live leases are never evicted, and a Claim that does not fit is
// refused with [ErrFull]. n <= 0 means unbounded, the default.
func WithMaxEntries(n int) Option {
	return func(c *config) { c.maxEntries = n }
}

// WithSweepInterval sets how often a [Memory] store drops expired entries in
// the background (default one minute). Expired entries are also dropped on
// every call. d <= 0 disables the background sweep.
func WithSweepInterval(d time.Duration) Option {
	return func(c *config) { c.sweepInterval = d }
}

// WithClock sets the clock a [Memory] store measures leases and ttls by.
// The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(c *config) {
		if now != nil {
			c.now = now
		}
	}
}

// DefaultKeyPrefix is the prefix of every key a [Redis] store writes.
const DefaultKeyPrefix = "slate:dedupe:"

// WithKeyPrefix sets the prefix of the keys of a [Redis] store (default
// [DefaultKeyPrefix]). It must not contain '{' or '}', which would break the
// per-key hash tags.
func WithKeyPrefix(p string) Option {
	return func(c *config) { c.prefix = p }
}

func checkDuration(d time.Duration) error {
	if d <= 0 {
		return ErrInvalidDuration
	}
	return nil
}
