// Package sink defines the contract between the consumer runtime and the
// stores it keeps in step (Elasticsearch, the Hive audit table, Kafka), and
// the event type they receive. Each sink lives in its own subpackage and
// passes the shared suite in sinktest.
//
// # Unchanged fields
//
// A CDC source may leave out of an UPDATE's data the columns it does not
// have because they did not change (PostgreSQL's unchanged TOAST values).
// It names them in the CloudEvents extension "unchanged", a comma-separated
// list of column names, carried on Kafka as the header ce_unchanged
// ([HeaderUnchanged]); the consumer puts the names in [Event.Unchanged].
// Sinks that replace whole documents (es, bleve) then keep those fields
// from the document they hold instead of losing them ([MergeUnchanged]).
// A field named there that the stored document lacks stays absent.
package sink

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/slatehq/slate/schema"
)

// Event is one decoded envelope with the Kafka coordinates it was read from.
// Sinks that write files derive names from the coordinates so that a replay
// of the same offsets overwrites instead of doubling.
type Event struct {
	schema.Envelope
	Topic     string
	Partition int32
	Offset    int64
	// Unchanged names the data fields the source left out because they did
	// not change (the "unchanged" extension; see the package doc).
	Unchanged []string
	// ReplayedFrom names the dead letter ("<dlq topic>/<partition>/<offset>")
	// this record was re-published from, empty for a record that was not
	// replayed. The consumer reads it from the slate_dlq_replayed_from
	// header that consumer.Replay adds.
	ReplayedFrom string
	// SkipSinks names the sinks that hold this event already, by the name
	// their handler knows them by (consumer.ToSinks: [Rejection.Sink]); the
	// handler does not write it to them again. The consumer's dedupe sets it
	// for an event that some sinks wrote and another refused.
	SkipSinks []string
}

// HeaderUnchanged is the Kafka header of the CloudEvents extension
// "unchanged": a comma-separated list of the data fields an UPDATE left
// out because they did not change.
const HeaderUnchanged = schema.HeaderUnchanged

// ParseUnchanged splits the value of [HeaderUnchanged] into field names,
// dropping blanks.
func ParseUnchanged(v string) []string {
	var out []string
	for f := range strings.SplitSeq(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// MergeUnchanged copies into doc, from prev (the document the store holds),
// each field of ev.Unchanged that doc lacks. It changes nothing for an
// event without unchanged fields or when prev is nil.
func MergeUnchanged(doc, prev map[string]any, ev *Event) {
	if prev == nil {
		return
	}
	for _, f := range ev.Unchanged {
		if _, ok := doc[f]; ok {
			continue
		}
		if v, ok := prev[f]; ok {
			doc[f] = v
		}
	}
}

// Sink applies batches of events to a store.
//
// Write returns nil only when every event of the batch is durably applied,
// and a [*RejectedError] (see [Reject]) when the events it names were
// refused for good and every other event was applied; any other error
// means none may be marked done, and the whole batch will be retried. Sinks are idempotent by the envelope's id and sequence, so a
// retry or a replay is safe. Write is not called concurrently.
//
// Close flushes what is buffered and releases resources within ctx's
// deadline; calls after Close return [ErrClosed].
type Sink interface {
	Write(ctx context.Context, batch []Event) error
	Close(ctx context.Context) error
}

// ErrClosed is returned by calls on a closed sink.
var ErrClosed = errors.New("sink: closed")

// ErrUnavailable is matched (errors.Is) by every sink error that is
// temporary: the store is busy, unreachable or failed in a way a later
// retry may not (Elasticsearch 429/503, a broker down, a disk error). The
// consumer retries those without counting them as attempts of a bad event.
var ErrUnavailable = errors.New("sink: store unavailable")

// NewUnavailable returns a sentinel error with text msg that also matches
// [ErrUnavailable]; sinks declare their temporary-failure sentinels with it.
func NewUnavailable(msg string) error { return &unavailableError{msg} }

type unavailableError struct{ msg string }

func (e *unavailableError) Error() string        { return e.msg }
func (e *unavailableError) Is(target error) bool { return target == ErrUnavailable }

// Func adapts a function to a [Sink] whose Close does nothing.
type Func func(ctx context.Context, batch []Event) error

// Write calls f.
func (f Func) Write(ctx context.Context, batch []Event) error { return f(ctx, batch) }

// Close does nothing.
func (Func) Close(context.Context) error { return nil }

// ErrRejected is wrapped by every [*RejectedError].
var ErrRejected = errors.New("sink: event rejected")

// Rejection is one event a sink refused for a reason a retry does not fix:
// data it cannot store, a document the store refuses (a mapping conflict,
// an invalid index name).
type Rejection struct {
	Event Event
	Err   error
	// Sink names the sink that refused the event, when a handler that
	// writes to several sinks knows it (consumer.ToSinks sets it); empty
	// otherwise.
	Sink string
}

// RejectedError is what Write returns when it refused the events it names
// for good and applied every other event of the batch. The consumer
// dead-letters the refused events (stage "sink") instead of retrying the
// batch; without a dead-letter topic it retries, so nothing is dropped.
type RejectedError struct {
	Rejections []Rejection
}

// Reject returns a [*RejectedError] for rs, or nil when rs is empty.
func Reject(rs ...Rejection) error {
	if len(rs) == 0 {
		return nil
	}
	return &RejectedError{Rejections: rs}
}

// Error names the refused events, the first three with their reasons.
func (e *RejectedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: %d event(s)", ErrRejected, len(e.Rejections))
	for i, r := range e.Rejections {
		if i == 3 {
			fmt.Fprintf(&b, "; and %d more", len(e.Rejections)-i)
			break
		}
		fmt.Fprintf(&b, "; %s (%s[%d]@%d): %v", r.Event.ID, r.Event.Topic, r.Event.Partition, r.Event.Offset, r.Err)
	}
	return b.String()
}

// Unwrap returns [ErrRejected] and each rejection's cause.
func (e *RejectedError) Unwrap() []error {
	errs := make([]error, 0, len(e.Rejections)+1)
	errs = append(errs, ErrRejected)
	for _, r := range e.Rejections {
		errs = append(errs, r.Err)
	}
	return errs
}

// Rejections returns the rejections err carries when it consists of
// rejections only: a [*RejectedError], possibly wrapped or joined with
// others. ok is false when err holds any other failure, which means the
// batch must be retried.
func Rejections(err error) (rs []Rejection, ok bool) {
	if err == nil || !collectRejections(err, &rs) {
		return nil, false
	}
	return rs, true
}

func collectRejections(err error, rs *[]Rejection) bool {
	switch e := err.(type) {
	case *RejectedError:
		*rs = append(*rs, e.Rejections...)
		return true
	case interface{ Unwrap() []error }:
		errs := e.Unwrap()
		if len(errs) == 0 {
			return false
		}
		for _, x := range errs {
			if !collectRejections(x, rs) {
				return false
			}
		}
		return true
	case interface{ Unwrap() error }:
		inner := e.Unwrap()
		return inner != nil && collectRejections(inner, rs)
	}
	return false
}
