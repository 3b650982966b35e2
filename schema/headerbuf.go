package schema

import (
	"strconv"
	"time"
)

// AppendHeadersTo is [AppendHeaders] with every header value appended to
// buf instead of allocated on its own: it returns dst with the headers and
// buf grown by their values, which the headers alias. A producer that
// reuses buf (and dst) per record builds headers without garbage; buf must
// not change while the headers are in use.
func AppendHeadersTo(dst []Header, buf []byte, e *Envelope) ([]Header, []byte) {
	var keys [12]string
	var ends [12]int
	n := 0
	from := len(buf)
	buf = append(buf, e.ID...)
	keys[n], ends[n], n = HeaderID, len(buf), n+1
	buf = append(buf, e.Source...)
	keys[n], ends[n], n = HeaderSource, len(buf), n+1
	buf = append(buf, e.SpecVersion...)
	keys[n], ends[n], n = HeaderSpecVersion, len(buf), n+1
	buf = append(buf, e.Type...)
	keys[n], ends[n], n = HeaderType, len(buf), n+1
	buf = append(buf, e.Subject...)
	keys[n], ends[n], n = HeaderSubject, len(buf), n+1
	buf = e.Time.UTC().AppendFormat(buf, time.RFC3339Nano)
	keys[n], ends[n], n = HeaderTime, len(buf), n+1
	buf = append(buf, e.EntityType...)
	keys[n], ends[n], n = HeaderEntityType, len(buf), n+1
	buf = strconv.AppendInt(buf, e.Sequence, 10)
	keys[n], ends[n], n = HeaderSequence, len(buf), n+1
	buf = append(buf, contentTypeAvroHeader...)
	keys[n], ends[n], n = HeaderContentType, len(buf), n+1
	if e.TraceParent != "" {
		buf = append(buf, e.TraceParent...)
		keys[n], ends[n], n = HeaderTraceParent, len(buf), n+1
	}
	if e.DataSchema != "" {
		buf = append(buf, e.DataSchema...)
		keys[n], ends[n], n = HeaderDataSchema, len(buf), n+1
	}
	for i, c := range e.Unchanged {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, c...)
	}
	if len(e.Unchanged) > 0 {
		keys[n], ends[n], n = HeaderUnchanged, len(buf), n+1
	}
	// Slice only now: buf may have moved while it grew.
	for i := range n {
		dst = append(dst, Header{Key: keys[i], Value: buf[from:ends[i]:ends[i]]})
		from = ends[i]
	}
	return dst, buf
}
