// Package gen is the code gqlgen generates from ../schema.graphqls
// (generated.go, models_gen.go) and the schema's Int64 scalar.
package gen

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
)

// Int64 is the schema's Int64 scalar: a 64-bit integer written as a
// decimal string, since view versions (a title's version shifted left 32
// bits plus its joined records') and money amounts exceed the 2^53 that
// JSON numbers carry exactly.
type Int64 int64

// MarshalGQL writes n as a quoted decimal string.
func (n Int64) MarshalGQL(w io.Writer) {
	_, _ = io.WriteString(w, strconv.Quote(strconv.FormatInt(int64(n), 10)))
}

// UnmarshalGQL reads a decimal string or a JSON integer.
func (n *Int64) UnmarshalGQL(v any) error {
	switch v := v.(type) {
	case string:
		i, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("Int64 %q: not a 64-bit decimal integer", v)
		}
		*n = Int64(i)
	case json.Number:
		i, err := v.Int64()
		if err != nil {
			return fmt.Errorf("Int64 %s: not a 64-bit integer", v)
		}
		*n = Int64(i)
	case int64:
		*n = Int64(v)
	case int:
		*n = Int64(v)
	case float64:
		if v != float64(int64(v)) {
			return fmt.Errorf("Int64 %v: not an integer", v)
		}
		*n = Int64(v)
	default:
		return fmt.Errorf("Int64: want a decimal string, got %T", v)
	}
	return nil
}
