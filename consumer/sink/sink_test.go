package sink_test

import (
	"slices"
	"testing"

	"github.com/slatehq/slate/consumer/sink"
)

func TestParseUnchanged(t *testing.T) {
	tests := []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"synopsis", []string{"synopsis"}},
		{"synopsis,notes", []string{"synopsis", "notes"}},
		{" synopsis , ,notes,", []string{"synopsis", "notes"}},
	}
	for _, tt := range tests {
		if got := sink.ParseUnchanged(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("ParseUnchanged(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestMergeUnchanged(t *testing.T) {
	ev := &sink.Event{Unchanged: []string{"synopsis", "gone", "name"}}
	doc := map[string]any{"name": "B"}
	sink.MergeUnchanged(doc, map[string]any{"name": "A", "synopsis": "long", "notes": "n"}, ev)
	if len(doc) != 2 || doc["name"] != "B" || doc["synopsis"] != "long" {
		t.Fatalf("merged = %v, want name B (sent) and synopsis long (kept), nothing else", doc)
	}
}
