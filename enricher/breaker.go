package enricher

import (
	"context"
	"errors"
	"sync"
	"time"
)

// BreakerState is the state of a resolver's circuit breaker.
type BreakerState int

// The breaker states. The values are those of the
// slate_enricher_breaker_state gauge.
const (
	// BreakerClosed lets every call through and counts consecutive
	// retryable failures.
	BreakerClosed BreakerState = iota
	// BreakerOpen refuses every call with [ErrBreakerOpen] until the
	// cooldown has passed.
	BreakerOpen
	// BreakerHalfOpen lets one probe call through: its success closes the
	// breaker, its failure opens it again.
	BreakerHalfOpen
)

// String returns closed, open or half-open.
func (s BreakerState) String() string {
	switch s {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half-open"
	}
	return "unknown"
}

// breaker is a consecutive-failure circuit breaker. Only retryable errors
// (see [IsRetryable]) count as failures: a service that answers
// INVALID_ARGUMENT is up.
type breaker struct {
	name      string
	threshold int
	cooldown  time.Duration
	now       func() time.Time
	m         *metrics

	mu       sync.Mutex
	state    BreakerState
	failures int
	openedAt time.Time
	probing  bool
}

func newBreaker(name string, threshold int, cooldown time.Duration, m *metrics) *breaker {
	b := &breaker{name: name, threshold: threshold, cooldown: cooldown, now: time.Now, m: m}
	m.breakerState.WithLabelValues(name).Set(float64(BreakerClosed))
	return b
}

// allow reports whether a call may go ahead; nil means yes.
func (b *breaker) allow() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch b.state {
	case BreakerOpen:
		if b.now().Sub(b.openedAt) < b.cooldown {
			return ErrBreakerOpen
		}
		b.set(BreakerHalfOpen)
		b.probing = true
		return nil
	case BreakerHalfOpen:
		if b.probing {
			return ErrBreakerOpen
		}
		b.probing = true
	}
	return nil
}

// record reports the outcome of a call that allow let through.
func (b *breaker) record(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if errors.Is(err, context.Canceled) {
		// The caller gave up; the call says nothing about the resolver.
		b.probing = false
		return
	}
	if err == nil || !IsRetryable(err) {
		b.failures = 0
		b.probing = false
		if b.state != BreakerClosed {
			b.set(BreakerClosed)
		}
		return
	}
	b.failures++
	if b.state == BreakerHalfOpen || b.failures >= b.threshold {
		b.probing = false
		b.openedAt = b.now()
		b.set(BreakerOpen)
	}
}

// State returns the current state.
func (b *breaker) State() BreakerState {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state
}

func (b *breaker) set(s BreakerState) {
	b.state = s
	b.m.breakerState.WithLabelValues(b.name).Set(float64(s))
	b.m.breakerTransitions.WithLabelValues(b.name, s.String()).Inc()
}
