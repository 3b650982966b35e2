package enricher

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestBreakerStates(t *testing.T) {
	down := status.Error(codes.Unavailable, "down")
	steps := []struct {
		name    string
		advance time.Duration
		result  error // recorded if the call is allowed
		allowed bool
		want    BreakerState
	}{
		{"first failure", 0, down, true, BreakerClosed},
		{"non-retryable error resets the count", 0, status.Error(codes.InvalidArgument, "bad"), true, BreakerClosed},
		{"failure 1", 0, down, true, BreakerClosed},
		{"failure 2", 0, down, true, BreakerClosed},
		{"failure 3 opens", 0, down, true, BreakerOpen},
		{"open refuses", time.Second, nil, false, BreakerOpen},
		{"cooldown over: probe fails, opens again", 5 * time.Second, down, true, BreakerOpen},
		{"open again refuses", time.Second, nil, false, BreakerOpen},
		{"cancelled probe changes nothing", 5 * time.Second, context.Canceled, true, BreakerHalfOpen},
		{"probe succeeds, closes", 0, nil, true, BreakerClosed},
	}
	now := time.Unix(0, 0)
	b := newBreaker("test", 3, 5*time.Second, testMetrics(t))
	b.now = func() time.Time { return now }
	for _, s := range steps {
		now = now.Add(s.advance)
		err := b.allow()
		if (err == nil) != s.allowed {
			t.Fatalf("%s: allow = %v, want allowed %v", s.name, err, s.allowed)
		}
		if err == nil {
			b.record(s.result)
		} else if !errors.Is(err, ErrBreakerOpen) {
			t.Fatalf("%s: refused with %v, want ErrBreakerOpen", s.name, err)
		}
		if got := b.State(); got != s.want {
			t.Fatalf("%s: state %v, want %v", s.name, got, s.want)
		}
	}
}

// Half-open lets exactly one probe through at a time.
func TestBreakerSingleProbe(t *testing.T) {
	now := time.Unix(0, 0)
	b := newBreaker("probe", 1, time.Second, testMetrics(t))
	b.now = func() time.Time { return now }
	if err := b.allow(); err != nil {
		t.Fatal(err)
	}
	b.record(status.Error(codes.Unavailable, "down"))
	now = now.Add(2 * time.Second)
	if err := b.allow(); err != nil {
		t.Fatalf("probe refused: %v", err)
	}
	if err := b.allow(); !errors.Is(err, ErrBreakerOpen) {
		t.Fatalf("second call during the probe: %v, want ErrBreakerOpen", err)
	}
}

func TestRetryDelay(t *testing.T) {
	p := RetryPolicy{Attempts: 10, Base: 100 * time.Millisecond, Max: time.Second}
	for n, ceiling := range []time.Duration{100, 200, 400, 800, 1000, 1000} {
		ceiling *= time.Millisecond
		for range 50 {
			if d := p.delay(n); d < ceiling/2 || d > ceiling {
				t.Fatalf("delay(%d) = %v, want in [%v, %v]", n, d, ceiling/2, ceiling)
			}
		}
	}
}

// testMetrics returns enricher metrics on a registry of their own.
func testMetrics(t *testing.T) *metrics {
	t.Helper()
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	return m
}
