package es

import (
	"errors"
	"fmt"

	"github.com/slatehq/slate/consumer/sink"
)

var (
	// ErrConfig is wrapped by every configuration error of [New].
	ErrConfig = errors.New("es: invalid config")
	// ErrUnavailable is wrapped when the cluster refused or could not take
	// the writes for now (HTTP 429 or a 5xx on an item or on the request, a
	// connection failure). The batch is worth retrying; see [IsRetryable].
	// It matches [sink.ErrUnavailable].
	ErrUnavailable = sink.NewUnavailable("es: cluster busy or unavailable")
	// ErrRejected is wrapped by an [*ItemError]: Elasticsearch refused a
	// document for a reason a retry does not fix (a mapping conflict, an
	// invalid index name).
	ErrRejected = errors.New("es: document rejected")
	// ErrData is wrapped when an event's data cannot be decoded into a
	// document.
	ErrData = errors.New("es: undecodable data")
)

// IsRetryable reports whether a failed write may succeed if retried later.
func IsRetryable(err error) bool { return errors.Is(err, ErrUnavailable) }

// ItemError is one document that Elasticsearch refused.
type ItemError struct {
	Index  string // the index written to
	DocID  string // the document id (the envelope's subject)
	Status int    // the item's HTTP status
	Type   string // the Elasticsearch error type
	Reason string // the Elasticsearch error reason
	// Permanent marks a refusal that no retry changes whatever its status
	// (a bulk request refused as a whole with a 4xx other than 429, an
	// item refused before sending).
	Permanent bool
}

// Error names the document and the reason.
func (e *ItemError) Error() string {
	return fmt.Sprintf("es: %s/%s: %d %s: %s", e.Index, e.DocID, e.Status, e.Type, e.Reason)
}

// Unwrap returns [ErrUnavailable] for 429 and 5xx statuses and
// [ErrRejected] otherwise or when Permanent is set.
func (e *ItemError) Unwrap() error {
	if !e.Permanent && retryableStatus(e.Status) {
		return ErrUnavailable
	}
	return ErrRejected
}

func retryableStatus(s int) bool { return s == 429 || s >= 500 }
