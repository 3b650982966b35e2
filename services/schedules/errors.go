package schedules

import "github.com/slatehq/slate/services/internal/service"

// Sentinel errors. Stores return them (wrapped with %w); the server maps
// each to one gRPC status code.
var (
	// ErrNotFound: the title has no schedule. NOT_FOUND.
	ErrNotFound = service.ErrNotFound
	// ErrVersionMismatch: an expected version differs from the stored
	// one. FAILED_PRECONDITION.
	ErrVersionMismatch = service.ErrVersionMismatch
	// ErrInvalid is wrapped by every [FieldError]. INVALID_ARGUMENT.
	ErrInvalid = service.ErrInvalid
	// ErrPublish: the write was applied but its change event was not
	// published. UNAVAILABLE.
	ErrPublish = service.ErrPublish
)

// FieldError reports a request field that failed validation; Field is its
// path in the request, such as "schedule.releases[2].territory". It wraps
// [ErrInvalid].
type FieldError = service.FieldError

func toStatus(err error) error { return service.ToStatus("schedules", err) }
