package finance

import "github.com/slatehq/slate/services/internal/service"

// Sentinel errors. Stores return them (wrapped with %w); the server maps
// each to one gRPC status code.
var (
	// ErrNotFound: the title has no budget. NOT_FOUND.
	ErrNotFound = service.ErrNotFound
	// ErrVersionMismatch: an expected version differs from the stored
	// one. FAILED_PRECONDITION.
	ErrVersionMismatch = service.ErrVersionMismatch
	// ErrInvalid is wrapped by every [FieldError]. INVALID_ARGUMENT.
	ErrInvalid = service.ErrInvalid
	// ErrPublish: the write was applied but its change event was not
	// published. UNAVAILABLE.
	ErrPublish = service.ErrPublish
	// ErrUnavailable: PostgreSQL or the schema registry could not be
	// reached, or the transaction lost a conflict; nothing was written and
	// a retry is safe. UNAVAILABLE.
	ErrUnavailable = service.ErrUnavailable
)

// FieldError reports a request field that failed validation; Field is its
// path in the request, such as "budget.line_items[2].currency". It wraps
// [ErrInvalid].
type FieldError = service.FieldError

func toStatus(err error) error { return service.ToStatus("finance", err) }
