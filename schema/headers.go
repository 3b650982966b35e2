package schema

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Header is a Kafka record header. It has the same shape as the headers of
// confluent-kafka-go and franz-go, so a slice converts element by element.
type Header struct {
	Key   string
	Value []byte
}

// Header names of the CloudEvents Kafka protocol binding (binary mode), plus
// slate's extensions. Routing and dedupe read these without decoding values.
const (
	HeaderID              = "ce_id"
	HeaderSource          = "ce_source"
	HeaderSpecVersion     = "ce_specversion"
	HeaderType            = "ce_type"
	HeaderSubject         = "ce_subject"
	HeaderTime            = "ce_time"
	HeaderEntityType      = "ce_entitytype"
	HeaderSequence        = "ce_sequence"
	HeaderTraceParent     = "ce_traceparent"
	HeaderDataSchema      = "ce_dataschema"
	HeaderUnchanged       = "ce_unchanged"
	HeaderContentType     = "content-type"
	contentTypeAvroHeader = "application/avro"
)

// AppendHeaders appends the ce_* headers of e to dst.
func AppendHeaders(dst []Header, e *Envelope) []Header {
	dst = append(dst,
		Header{HeaderID, []byte(e.ID)},
		Header{HeaderSource, []byte(e.Source)},
		Header{HeaderSpecVersion, []byte(e.SpecVersion)},
		Header{HeaderType, []byte(e.Type)},
		Header{HeaderSubject, []byte(e.Subject)},
		Header{HeaderTime, []byte(e.Time.UTC().Format(time.RFC3339Nano))},
		Header{HeaderEntityType, []byte(e.EntityType)},
		Header{HeaderSequence, strconv.AppendInt(nil, e.Sequence, 10)},
		Header{HeaderContentType, []byte(contentTypeAvroHeader)},
	)
	if e.TraceParent != "" {
		dst = append(dst, Header{HeaderTraceParent, []byte(e.TraceParent)})
	}
	if e.DataSchema != "" {
		dst = append(dst, Header{HeaderDataSchema, []byte(e.DataSchema)})
	}
	if len(e.Unchanged) > 0 {
		dst = append(dst, Header{HeaderUnchanged, []byte(strings.Join(e.Unchanged, ","))})
	}
	return dst
}

// HeaderValue returns the value of the first header named key, and whether
// there was one.
func HeaderValue(hs []Header, key string) (string, bool) {
	for _, h := range hs {
		if h.Key == key {
			return string(h.Value), true
		}
	}
	return "", false
}

// FromHeaders rebuilds the attributes of an envelope (everything but data)
// from its ce_* headers. It fails naming the first missing or malformed one.
func FromHeaders(hs []Header) (Envelope, error) {
	var e Envelope
	for _, h := range hs {
		v := string(h.Value)
		switch h.Key {
		case HeaderID:
			e.ID = v
		case HeaderSource:
			e.Source = v
		case HeaderSpecVersion:
			e.SpecVersion = v
		case HeaderType:
			e.Type = Op(v)
		case HeaderSubject:
			e.Subject = v
		case HeaderEntityType:
			e.EntityType = v
		case HeaderTraceParent:
			e.TraceParent = v
		case HeaderDataSchema:
			e.DataSchema = v
		case HeaderUnchanged:
			if v != "" {
				e.Unchanged = strings.Split(v, ",")
			}
		case HeaderTime:
			t, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return Envelope{}, fmt.Errorf("%w: header %s: %v", ErrInvalidEnvelope, HeaderTime, err)
			}
			e.Time = t
		case HeaderSequence:
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				return Envelope{}, fmt.Errorf("%w: header %s: %v", ErrInvalidEnvelope, HeaderSequence, err)
			}
			e.Sequence = n
		}
	}
	return e, e.Validate()
}
