package finance

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

// A failed transaction is UNAVAILABLE (ErrUnavailable) only when a retry
// can succeed.
func TestRetryable(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	tests := []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: "40001"}, true},             // serialization_failure
		{&pgconn.PgError{Code: "40P01"}, true},             // deadlock_detected
		{&pgconn.PgError{Code: "08006"}, true},             // connection_failure
		{&pgconn.PgError{Code: "53300"}, true},             // too_many_connections
		{&pgconn.PgError{Code: "57P01"}, true},             // admin_shutdown
		{&pgconn.PgError{Code: "23514"}, false},            // check_violation
		{&pgconn.PgError{Code: "42P01"}, false},            // undefined_table
		{fmt.Errorf("registry: %w", refused), true},        // the outbox event's schema registry is down
		{fmt.Errorf("begin: %w", context.Canceled), false}, // the caller gave up
		{errors.New("encode budget: bad"), false},
	}
	for _, tt := range tests {
		if got := errors.Is(retryable(tt.err), ErrUnavailable); got != tt.want {
			t.Errorf("retryable(%v) is ErrUnavailable = %v, want %v", tt.err, got, tt.want)
		}
	}
}
