package schema_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/slatehq/slate/schema"
)

// TestAppendHeadersTo checks that the buffered form writes exactly the
// headers AppendHeaders writes, with a buffer that must grow on the way.
func TestAppendHeadersTo(t *testing.T) {
	base := schema.NewEnvelope("//studio/titles", schema.OpUpdate, "title", "t-1")
	base.Sequence = 42
	full := base
	full.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	full.DataSchema = "studio.Title/3"
	full.Unchanged = []string{"synopsis", "notes"}
	truncate := schema.NewEnvelope("//pg/finance/public/budget", schema.OpTruncate, "budget", "")
	truncate.Time = time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.FixedZone("x", 3600))
	tests := []struct {
		name string
		e    schema.Envelope
		buf  []byte
	}{
		{"id-only", base, nil},
		{"trace, dataschema and unchanged", full, make([]byte, 0, 8)},
		{"truncate, no subject, zoned time", truncate, []byte("prefix")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := schema.AppendHeaders(nil, &tt.e)
			prefix := string(tt.buf)
			got, buf := schema.AppendHeadersTo(nil, tt.buf, &tt.e)
			if len(got) != len(want) {
				t.Fatalf("%d headers, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i].Key != want[i].Key || !bytes.Equal(got[i].Value, want[i].Value) {
					t.Errorf("header %d = %s=%q, want %s=%q", i, got[i].Key, got[i].Value, want[i].Key, want[i].Value)
				}
			}
			back, err := schema.FromHeaders(got)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(back.Unchanged, ",") != strings.Join(tt.e.Unchanged, ",") {
				t.Errorf("unchanged round trip = %q, want %q", back.Unchanged, tt.e.Unchanged)
			}
			if string(buf[:len(prefix)]) != prefix {
				t.Errorf("buf prefix %q overwritten", prefix)
			}
		})
	}
}

func BenchmarkAppendHeaders(b *testing.B) {
	e := schema.NewEnvelope("//studio/titles", schema.OpUpdate, "title", "t-1")
	b.Run("AppendHeaders", func(b *testing.B) {
		b.ReportAllocs()
		hs := make([]schema.Header, 0, 11)
		for b.Loop() {
			hs = schema.AppendHeaders(hs[:0], &e)
		}
	})
	b.Run("AppendHeadersTo", func(b *testing.B) {
		b.ReportAllocs()
		hs := make([]schema.Header, 0, 11)
		buf := make([]byte, 0, 256)
		for b.Loop() {
			hs, buf = schema.AppendHeadersTo(hs[:0], buf[:0], &e)
		}
	})
}
