package querystr_test

import (
	"slices"
	"testing"

	"github.com/slatehq/slate/internal/querystr"
)

func TestSplit(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"", nil},
		{"  name:heat\t+kind:feature\n", []string{"name:heat", "+kind:feature"}},
		{`+name:"the heat" status:x`, []string{`+name:"the heat"`, "status:x"}},
		{`name:the\ heat \"a b`, []string{`name:the\ heat`, `\"a`, "b"}},
		{`+release_date:>="2027-01-01"`, []string{`+release_date:>="2027-01-01"`}},
	} {
		if got := querystr.Split(tc.in); !slices.Equal(got, tc.want) {
			t.Errorf("Split(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
