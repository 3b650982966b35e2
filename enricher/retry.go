package enricher

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"google.golang.org/grpc/status"
)

// RetryPolicy bounds the enricher's retries of one resolver call. Only
// retryable errors (see [IsRetryable]) are retried; the delay before retry
// n (from 0) is drawn uniformly from [d/2, d] with d = min(Max, Base*2^n)
// ("equal jitter"), so that enrichers that failed together do not retry in
// lockstep.
type RetryPolicy struct {
	// Attempts is the most calls made, the first included (default 4).
	Attempts int
	// Base is the first delay (default 50ms).
	Base time.Duration
	// Max caps every delay (default 2s).
	Max time.Duration
}

// DefaultRetryPolicy is the policy of [New] unless [WithRetry] says
// otherwise.
var DefaultRetryPolicy = RetryPolicy{Attempts: 4, Base: 50 * time.Millisecond, Max: 2 * time.Second}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.Attempts <= 0 {
		p.Attempts = DefaultRetryPolicy.Attempts
	}
	if p.Base <= 0 {
		p.Base = DefaultRetryPolicy.Base
	}
	if p.Max <= 0 {
		p.Max = max(DefaultRetryPolicy.Max, p.Base)
	}
	return p
}

// delay returns the wait before retry n (from 0).
func (p RetryPolicy) delay(n int) time.Duration {
	d := p.Max
	if n < 30 {
		d = min(p.Max, p.Base<<n)
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// call runs fn under the breaker br with the enricher's retry policy and
// call timeout. Failures come back as a *LookupError.
func call[T any](ctx context.Context, e *Enricher, br *breaker, ids int, fn func(context.Context) (T, error)) (T, error) {
	var zero T
	for attempt := 1; ; attempt++ {
		if err := br.allow(); err != nil {
			return zero, &LookupError{Resolver: br.name, IDs: ids, Attempts: attempt - 1, Err: err}
		}
		cctx, cancel := ctx, context.CancelFunc(func() {})
		if e.cfg.callTimeout > 0 {
			cctx, cancel = context.WithTimeout(ctx, e.cfg.callTimeout)
		}
		v, err := fn(cctx)
		cancel()
		br.record(err)
		if err == nil {
			return v, nil
		}
		code := status.Code(err).String()
		if errors.Is(err, context.DeadlineExceeded) {
			code = "DeadlineExceeded"
		}
		e.m.lookupErrors.WithLabelValues(e.entity, br.name, code).Inc()
		if !IsRetryable(err) || ctx.Err() != nil {
			return zero, &LookupError{Resolver: br.name, IDs: ids, Attempts: attempt, Err: err}
		}
		if attempt >= e.cfg.retry.Attempts {
			return zero, &LookupError{Resolver: br.name, IDs: ids, Attempts: attempt, Err: errors.Join(ErrRetriesExhausted, err)}
		}
		e.m.retries.WithLabelValues(e.entity, br.name, code).Inc()
		e.cfg.log.Warn("lookup failed, retrying", "resolver", br.name, "ids", ids, "attempt", attempt, "err", err)
		t := time.NewTimer(e.cfg.retry.delay(attempt - 1))
		select {
		case <-ctx.Done():
			t.Stop()
			return zero, &LookupError{Resolver: br.name, IDs: ids, Attempts: attempt, Err: errors.Join(ctx.Err(), err)}
		case <-t.C:
		}
	}
}
