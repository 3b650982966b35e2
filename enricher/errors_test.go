package enricher_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/slatehq/slate/enricher"
)

// tempErr is a transport's own error type that knows whether it is
// temporary.
type tempErr struct{ temp bool }

func (e tempErr) Error() string   { return fmt.Sprintf("transport failed (temporary %v)", e.temp) }
func (e tempErr) Temporary() bool { return e.temp }

func TestIsRetryable(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain error", io.ErrUnexpectedEOF, false},
		{"marked temporary", enricher.Temporary(io.ErrUnexpectedEOF), true},
		{"marked and wrapped", fmt.Errorf("lookup: %w", enricher.Temporary(io.ErrUnexpectedEOF)), true},
		{"marked in a join", errors.Join(io.EOF, enricher.Temporary(io.ErrUnexpectedEOF)), true},
		{"own type temporary", fmt.Errorf("call: %w", tempErr{temp: true}), true},
		{"own type not temporary", tempErr{temp: false}, false},
		{"not-temporary wrapper of a temporary cause", fmt.Errorf("%w: %w", tempErr{temp: false}, tempErr{temp: true}), true},
		{"marked cancel stays final", enricher.Temporary(context.Canceled), false},
		{"unavailable", status.Error(codes.Unavailable, "down"), true},
		{"wrapped unavailable", fmt.Errorf("batch get: %w", status.Error(codes.Unavailable, "down")), true},
		{"deadline exceeded code", status.Error(codes.DeadlineExceeded, "slow"), true},
		{"resource exhausted", status.Error(codes.ResourceExhausted, "quota"), true},
		{"aborted", status.Error(codes.Aborted, "conflict"), true},
		{"invalid argument", status.Error(codes.InvalidArgument, "bad id"), false},
		{"internal", status.Error(codes.Internal, "bug"), false},
		{"marked internal", enricher.Temporary(status.Error(codes.Internal, "restarting")), true},
		{"context deadline", context.DeadlineExceeded, true},
		{"context canceled", context.Canceled, false},
		{"breaker open", fmt.Errorf("x: %w", enricher.ErrBreakerOpen), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := enricher.IsRetryable(tt.err); got != tt.want {
				t.Errorf("IsRetryable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestTemporaryKeepsCause(t *testing.T) {
	if enricher.Temporary(nil) != nil {
		t.Fatal("Temporary(nil) is not nil")
	}
	cause := status.Error(codes.Internal, "restarting")
	err := enricher.Temporary(cause)
	if !errors.Is(err, cause) || err.Error() != cause.Error() {
		t.Fatalf("Temporary hides its cause: %v", err)
	}
	if status.Code(err) != codes.Internal {
		t.Fatalf("status code through the mark = %v, want Internal", status.Code(err))
	}
}
