package enricher

import (
	"context"
	"errors"
	"fmt"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

var (
	// ErrConfig is wrapped by every configuration error of [New] and of
	// [Pipeline.Validate].
	ErrConfig = errors.New("enricher: invalid config")
	// ErrBreakerOpen is returned, wrapped in a [*LookupError], when a
	// resolver's circuit breaker refuses a call. It is retryable: the
	// dependency is down, the batch is not poison, so a batch failing with
	// it is never dead-lettered.
	ErrBreakerOpen = errors.New("enricher: circuit breaker open")
	// ErrRetriesExhausted is wrapped, next to the last cause, when a
	// retryable lookup failed on every attempt.
	ErrRetriesExhausted = errors.New("enricher: retries exhausted")
	// ErrSideInputUnavailable is returned by [SideInput.Start] when the
	// first load failed, so there is no value to serve.
	ErrSideInputUnavailable = errors.New("enricher: side input unavailable")
)

// LookupError is a failed call to a resolver (a primary lookup, a join or a
// fan-out's dependents) after the enricher's own retries.
type LookupError struct {
	// Resolver names the resolver: the entity type for the primary lookup,
	// "join:<field>" for a join, "fanout:<entity type>" for dependents.
	Resolver string
	// IDs is how many ids the call asked for.
	IDs int
	// Attempts is how many calls were made.
	Attempts int
	// Err is the last cause.
	Err error
}

// Error implements error.
func (e *LookupError) Error() string {
	return fmt.Sprintf("enricher: %s lookup of %d ids failed after %d attempts: %v", e.Resolver, e.IDs, e.Attempts, e.Err)
}

// Unwrap returns the cause.
func (e *LookupError) Unwrap() error { return e.Err }

// Temporary marks err as transient, for a resolver over any transport:
// [IsRetryable] reports true for it (and for any error wrapping it), so
// the enricher retries the call and counts it against the circuit
// breaker. errors.Is and errors.As see through the mark to err. A nil err
// stays nil.
func Temporary(err error) error {
	if err == nil {
		return nil
	}
	return &temporaryError{err: err}
}

type temporaryError struct{ err error }

func (e *temporaryError) Error() string   { return e.err.Error() }
func (e *temporaryError) Unwrap() error   { return e.err }
func (e *temporaryError) Temporary() bool { return true }

// IsRetryable reports whether err is transient:
//   - an error marked by [Temporary], or any error in err's chain with a
//     method Temporary() bool that returns true (a resolver's own error
//     type, a net.Error of a temporary failure);
//   - the gRPC codes UNAVAILABLE, DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED
//     and ABORTED (also when wrapped);
//   - a deadline that expired, or an open circuit breaker.
//
// Other errors (INVALID_ARGUMENT, INTERNAL, a cancelled context, ...) are
// not: repeating the call would fail the same way. A cancelled context is
// never retryable, even when marked.
func IsRetryable(err error) bool {
	switch {
	case err == nil, errors.Is(err, context.Canceled):
		return false
	case errors.Is(err, ErrBreakerOpen), errors.Is(err, context.DeadlineExceeded):
		return true
	case isTemporary(err):
		return true
	}
	st, ok := status.FromError(err)
	if !ok {
		return false
	}
	switch st.Code() {
	case codes.Unavailable, codes.DeadlineExceeded, codes.ResourceExhausted, codes.Aborted:
		return true
	}
	return false
}

// isTemporary reports whether an error in err's chain (joined errors
// included) says Temporary() true. It walks the whole chain rather than
// stopping at the first error with the method: a wrapper answering false
// does not hide a temporary cause.
func isTemporary(err error) bool {
	switch e := err.(type) {
	case nil:
		return false
	case interface{ Temporary() bool }:
		if e.Temporary() {
			return true
		}
	}
	switch e := err.(type) {
	case interface{ Unwrap() error }:
		return isTemporary(e.Unwrap())
	case interface{ Unwrap() []error }:
		for _, c := range e.Unwrap() {
			if isTemporary(c) {
				return true
			}
		}
	}
	return false
}
