package schema_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/slatehq/slate/schema"
)

func TestTopicsUnderPrefix(t *testing.T) {
	tests := []struct {
		prefix, changes, materialized string
	}{
		{"acme.", "acme.title.changes", "acme.title.materialized"},
		{"staging-", "staging-title.changes", "staging-title.materialized"},
		{"", "studio.title.changes", "studio.title.materialized"},
		{schema.DefaultTopicPrefix, schema.ChangesTopic("title"), schema.MaterializedTopic("title")},
	}
	for _, tt := range tests {
		if got := schema.ChangesTopicIn(tt.prefix, "title"); got != tt.changes {
			t.Errorf("ChangesTopicIn(%q) = %q, want %q", tt.prefix, got, tt.changes)
		}
		if got := schema.MaterializedTopicIn(tt.prefix, "title"); got != tt.materialized {
			t.Errorf("MaterializedTopicIn(%q) = %q, want %q", tt.prefix, got, tt.materialized)
		}
		if got, want := schema.DLQTopic(tt.changes), tt.changes+".dlq"; got != want {
			t.Errorf("DLQTopic(%q) = %q, want %q", tt.changes, got, want)
		}
	}
}

func TestValidateTopicPrefix(t *testing.T) {
	tests := []struct {
		prefix string
		want   string // "" when valid
	}{
		{"studio.", ""},
		{"acme_prod-2.", ""},
		{"", ""},
		{strings.Repeat("a", schema.MaxTopicLength-1), ""},
		{"acme/", `'/' at byte 4`},
		{"ac me.", `' ' at byte 2`},
		{"acmé.", "at byte 3"},
		{strings.Repeat("a", schema.MaxTopicLength), "249 bytes"},
	}
	for _, tt := range tests {
		err := schema.ValidateTopicPrefix(tt.prefix)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("ValidateTopicPrefix(%q) = %v, want nil", tt.prefix, err)
		case tt.want != "" && (!errors.Is(err, schema.ErrTopicPrefix) || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("ValidateTopicPrefix(%q) = %v, want ErrTopicPrefix saying %q", tt.prefix, err, tt.want)
		}
	}
}
