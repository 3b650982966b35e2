package service

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Sentinel errors. Stores return them (wrapped with %w); [ToStatus] maps
// each to one gRPC status code.
var (
	// ErrNotFound: no entity has the id (never written, or deleted).
	// NOT_FOUND.
	ErrNotFound = errors.New("not found")
	// ErrExists: a create named an id that is already in use.
	// ALREADY_EXISTS.
	ErrExists = errors.New("already exists")
	// ErrVersionMismatch: an expected version differs from the stored one.
	// FAILED_PRECONDITION.
	ErrVersionMismatch = errors.New("version mismatch")
	// ErrInvalid is wrapped by every [FieldError]. INVALID_ARGUMENT.
	ErrInvalid = errors.New("invalid argument")
	// ErrPublish: the write was applied but its change event was not
	// published. UNAVAILABLE.
	ErrPublish = errors.New("change event not published")
	// ErrUnavailable: the store (or what its transaction needed, such as
	// the schema registry of an outbox event) could not be reached and
	// nothing was written, so a retry is safe. UNAVAILABLE.
	ErrUnavailable = errors.New("store unavailable, nothing written")
)

// FieldError reports a request field that failed validation. It wraps
// [ErrInvalid].
type FieldError struct {
	// Field is the field's path in the request, such as
	// "budget.line_items[2].currency" or "ids[3]".
	Field string
	// Reason says what is wrong with it.
	Reason string
}

// Error implements error.
func (e *FieldError) Error() string { return e.Field + ": " + e.Reason }

// Unwrap returns [ErrInvalid].
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Prefix returns err with prefix put before the field of a [*FieldError];
// other errors are returned as they are. It turns an entity's field path
// into a request's ("line_items[0].amount" into "budget.line_items[0].amount").
func Prefix(prefix string, err error) error {
	var fe *FieldError
	if errors.As(err, &fe) {
		return &FieldError{Field: prefix + fe.Field, Reason: fe.Reason}
	}
	return err
}

// ToStatus maps an error from validation, a store or a publisher to a gRPC
// status error whose message starts with name (the service's). A
// [*FieldError] becomes INVALID_ARGUMENT with a google.rpc.BadRequest
// detail naming the field.
func ToStatus(name string, err error) error {
	if err == nil {
		return nil
	}
	msg := name + ": " + err.Error()
	var fe *FieldError
	switch {
	case errors.As(err, &fe):
		st := status.New(codes.InvalidArgument, msg)
		if withDetail, derr := st.WithDetails(&errdetails.BadRequest{
			FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: fe.Field, Description: fe.Reason}},
		}); derr == nil {
			st = withDetail
		}
		return st.Err()
	case errors.Is(err, ErrInvalid):
		return status.Error(codes.InvalidArgument, msg)
	case errors.Is(err, ErrNotFound):
		return status.Error(codes.NotFound, msg)
	case errors.Is(err, ErrExists):
		return status.Error(codes.AlreadyExists, msg)
	case errors.Is(err, ErrVersionMismatch):
		return status.Error(codes.FailedPrecondition, msg)
	case errors.Is(err, ErrPublish), errors.Is(err, ErrUnavailable):
		return status.Error(codes.Unavailable, msg)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return status.FromContextError(err).Err()
	}
	return status.Error(codes.Internal, msg)
}

// MaxIDLen is the longest id, in bytes, a request may name.
const MaxIDLen = 128

// MaxBatchGet is the most ids one batch read may name.
const MaxBatchGet = 1000

// ValidateID checks an id a request names: not empty, at most [MaxIDLen]
// bytes, UTF-8, without spaces or control characters (it becomes a Kafka
// key and a URL path segment). The error quotes at most the id's first 64
// bytes.
func ValidateID(field, id string) error {
	switch {
	case id == "":
		return &FieldError{Field: field, Reason: "must not be empty"}
	case len(id) > MaxIDLen:
		return &FieldError{Field: field, Reason: strconv.Itoa(len(id)) + " bytes, at most " + strconv.Itoa(MaxIDLen) + " allowed: " + Quote(id)}
	case !utf8.ValidString(id):
		return &FieldError{Field: field, Reason: "not valid UTF-8: " + Quote(id)}
	case strings.IndexFunc(id, func(r rune) bool { return unicode.IsSpace(r) || !unicode.IsPrint(r) }) >= 0:
		return &FieldError{Field: field, Reason: "contains a space or a control character: " + Quote(id)}
	}
	return nil
}

// BatchIDs checks the ids of a batch read (at most [MaxBatchGet], each
// valid) and returns them in order with repeats dropped.
func BatchIDs(ids []string) ([]string, error) {
	if len(ids) > MaxBatchGet {
		return nil, &FieldError{Field: "ids", Reason: strconv.Itoa(len(ids)) + " ids, at most " + strconv.Itoa(MaxBatchGet) + " allowed"}
	}
	unique := make([]string, 0, len(ids))
	seen := make(map[string]struct{}, len(ids))
	for i, id := range ids {
		if err := ValidateID("ids["+strconv.Itoa(i)+"]", id); err != nil {
			return nil, err
		}
		if _, dup := seen[id]; dup {
			continue
		}
		seen[id] = struct{}{}
		unique = append(unique, id)
	}
	return unique, nil
}

// ExpectedVersion turns an optional expected_version into the stores'
// form, where 0 means no check.
func ExpectedVersion(v *int64) (int64, error) {
	if v == nil {
		return 0, nil
	}
	if *v <= 0 {
		return 0, &FieldError{Field: "expected_version", Reason: "must be positive when set"}
	}
	return *v, nil
}

// Quote quotes s for an error message, cut to its first 64 bytes.
func Quote(s string) string {
	const max = 64
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strconv.Quote(s)
}
