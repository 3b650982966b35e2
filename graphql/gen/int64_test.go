package gen_test

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/slatehq/slate/graphql/gen"
)

// Versions past 2^53 go through the scalar exactly, as strings; input
// also takes JSON integers.
func TestInt64(t *testing.T) {
	for _, tc := range []struct {
		in   any
		want int64
		bad  bool
	}{
		{"9007199254740993", 9007199254740993, false}, // 2^53 + 1
		{"-42", -42, false},
		{json.Number("4294967297"), 4294967297, false},
		{int64(7), 7, false},
		{float64(12), 12, false},
		{"1.5", 0, true},
		{"nine", 0, true},
		{"9223372036854775808", 0, true}, // 2^63
		{1.5, 0, true},
		{true, 0, true},
	} {
		var n gen.Int64
		err := n.UnmarshalGQL(tc.in)
		if tc.bad {
			if err == nil {
				t.Errorf("UnmarshalGQL(%#v) = %d, want an error", tc.in, n)
			}
			continue
		}
		if err != nil || int64(n) != tc.want {
			t.Errorf("UnmarshalGQL(%#v) = %d, %v; want %d", tc.in, n, err, tc.want)
		}
		var b bytes.Buffer
		n.MarshalGQL(&b)
		var s string
		if err := json.Unmarshal(b.Bytes(), &s); err != nil {
			t.Errorf("MarshalGQL(%d) = %s: not a JSON string", n, b.String())
		}
	}
}
