package schema

import "strconv"

// Dead-letter headers: a record written to a dead-letter topic keeps its
// own headers and gets these, saying why and from where it came.
const (
	HeaderDLQError     = "slate_dlq_error"
	HeaderDLQStage     = "slate_dlq_stage"
	HeaderDLQTopic     = "slate_dlq_origin_topic"
	HeaderDLQPartition = "slate_dlq_origin_partition"
	HeaderDLQOffset    = "slate_dlq_origin_offset"
	HeaderDLQGroup     = "slate_dlq_group"
	HeaderDLQAttempts  = "slate_dlq_attempts"

	// HeaderDLQTruncated marks a dead letter whose value was cut (see
	// [TruncateDeadLetter]); its value is the original value's size in
	// bytes.
	HeaderDLQTruncated = "slate_dlq_truncated"
)

// DeadLetterTruncateBytes bounds the value of a truncated dead letter: far
// below any broker's record limit, enough to see what the record was.
const DeadLetterTruncateBytes = 64 << 10

// TruncateDeadLetter returns the truncated copy of a dead letter that is
// larger than its dead-letter topic accepts: value cut to
// [DeadLetterTruncateBytes], and a copy of hs with [HeaderDLQTruncated]
// (the original size) added. The dead-letter headers in hs name where the
// whole record is: the source topic, partition and offset, from which it
// can be read while the topic retains it.
func TruncateDeadLetter(value []byte, hs []Header) ([]byte, []Header) {
	out := make([]Header, len(hs), len(hs)+1)
	copy(out, hs)
	out = append(out, Header{Key: HeaderDLQTruncated, Value: strconv.AppendInt(nil, int64(len(value)), 10)})
	return value[:min(len(value), DeadLetterTruncateBytes):min(len(value), DeadLetterTruncateBytes)], out
}

// DeadLetterOrigin is what the dead-letter headers of a record say.
type DeadLetterOrigin struct {
	Err       error  // why the record was dead-lettered
	Stage     string // where it failed: decode, sink, handler, enrich
	Topic     string // the topic it was read from
	Partition int32
	Offset    int64
	Group     string // the consumer group, if any
	Attempts  int    // how often it was tried, if counted
}

// AppendDeadLetterHeaders appends the dead-letter headers of o to hs; the
// group and attempts headers only when they are set.
func AppendDeadLetterHeaders(hs []Header, o DeadLetterOrigin) []Header {
	hs = append(hs,
		Header{Key: HeaderDLQError, Value: []byte(o.Err.Error())},
		Header{Key: HeaderDLQStage, Value: []byte(o.Stage)},
		Header{Key: HeaderDLQTopic, Value: []byte(o.Topic)},
		Header{Key: HeaderDLQPartition, Value: strconv.AppendInt(nil, int64(o.Partition), 10)},
		Header{Key: HeaderDLQOffset, Value: strconv.AppendInt(nil, o.Offset, 10)},
	)
	if o.Group != "" {
		hs = append(hs, Header{Key: HeaderDLQGroup, Value: []byte(o.Group)})
	}
	if o.Attempts > 0 {
		hs = append(hs, Header{Key: HeaderDLQAttempts, Value: strconv.AppendInt(nil, int64(o.Attempts), 10)})
	}
	return hs
}
