package titles

import (
	"context"
	"errors"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors. Stores return them (wrapped with %w); the server maps
// each to one gRPC status code in [toStatus].
var (
	// ErrNotFound: no title has the id (never created, or deleted).
	// NOT_FOUND.
	ErrNotFound = errors.New("titles: not found")
	// ErrExists: a create named an id that is already in use.
	// ALREADY_EXISTS.
	ErrExists = errors.New("titles: already exists")
	// ErrVersionMismatch: an expected version differs from the stored one.
	// FAILED_PRECONDITION.
	ErrVersionMismatch = errors.New("titles: version mismatch")
	// ErrInvalid is wrapped by every [FieldError]. INVALID_ARGUMENT.
	ErrInvalid = errors.New("titles: invalid argument")
	// ErrPublish: the write was applied but its change event was not
	// published. UNAVAILABLE.
	ErrPublish = errors.New("titles: change event not published")
)

// FieldError reports a request field that failed validation. It wraps
// [ErrInvalid].
type FieldError struct {
	// Field is the field's path in the request, such as "title.kind" or
	// "ids[3]".
	Field string
	// Reason says what is wrong with it.
	Reason string
}

// Error implements error.
func (e *FieldError) Error() string { return "titles: " + e.Field + ": " + e.Reason }

// Unwrap returns [ErrInvalid].
func (e *FieldError) Unwrap() error { return ErrInvalid }

// toStatus maps an error from validation, the store or the publisher to a
// gRPC status error. INVALID_ARGUMENT carries a google.rpc.BadRequest detail
// naming the field.
func toStatus(err error) error {
	if err == nil {
		return nil
	}
	var fe *FieldError
	switch {
	case errors.As(err, &fe):
		st := status.New(codes.InvalidArgument, err.Error())
		if withDetail, derr := st.WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: fe.Field, Description: fe.Reason}},
		}); derr == nil {
			st = withDetail
		}
		return st.Err()
	case errors.Is(err, ErrInvalid):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, ErrNotFound):
		return status.Error(codes.NotFound, err.Error())
	case errors.Is(err, ErrExists):
		return status.Error(codes.AlreadyExists, err.Error())
	case errors.Is(err, ErrVersionMismatch):
		return status.Error(codes.FailedPrecondition, err.Error())
	case errors.Is(err, ErrPublish):
		return status.Error(codes.Unavailable, err.Error())
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	return status.Error(codes.Internal, err.Error())
}
