package titles

import "github.com/slatehq/slate/services/internal/service"

// Sentinel errors. Stores return them (wrapped with %w); the server maps
// each to one gRPC status code. They are the studio services' own: a
// schedules or finance error wrapping one matches it too.
var (
	// ErrNotFound: no title has the id (never created, or deleted).
	// NOT_FOUND.
	ErrNotFound = service.ErrNotFound
	// ErrExists: a create named an id that is already in use.
	// ALREADY_EXISTS.
	ErrExists = service.ErrExists
	// ErrVersionMismatch: an expected version differs from the stored one.
	// FAILED_PRECONDITION.
	ErrVersionMismatch = service.ErrVersionMismatch
	// ErrInvalid is wrapped by every [FieldError]. INVALID_ARGUMENT.
	ErrInvalid = service.ErrInvalid
	// ErrPublish: the write was applied but its change event was not
	// published. UNAVAILABLE.
	ErrPublish = service.ErrPublish
)

// FieldError reports a request field that failed validation; Field is its
// path in the request, such as "title.kind" or "ids[3]". It wraps
// [ErrInvalid].
type FieldError = service.FieldError

// toStatus maps an error from validation, the store or the publisher to a
// gRPC status error whose message starts with "titles: ".
// INVALID_ARGUMENT carries a google.rpc.BadRequest detail naming the field.
func toStatus(err error) error { return service.ToStatus("titles", err) }
