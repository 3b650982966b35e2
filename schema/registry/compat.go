package registry

import (
	"fmt"
	"strings"

	"github.com/hamba/avro/v2"
)

// Level is a compatibility level: which earlier versions of a subject a new
// version is checked against, and in which direction.
type Level string

// The compatibility levels of Confluent's registry. BACKWARD means the new
// schema can read data written with the previous one (upgrade consumers
// first); FORWARD means the previous schema can read data written with the
// new one (upgrade producers first); FULL means both. The plain levels check
// against the latest live version, the _TRANSITIVE ones against every live
// version. NONE accepts any valid schema.
const (
	Backward           Level = "BACKWARD"
	BackwardTransitive Level = "BACKWARD_TRANSITIVE"
	Forward            Level = "FORWARD"
	ForwardTransitive  Level = "FORWARD_TRANSITIVE"
	Full               Level = "FULL"
	FullTransitive     Level = "FULL_TRANSITIVE"
	None               Level = "NONE"
)

// DefaultLevel is the global level of a new registry, as in Confluent's.
const DefaultLevel = Backward

// ParseLevel returns the level named by s, ignoring case. Other names wrap
// [ErrInvalidLevel].
func ParseLevel(s string) (Level, error) {
	l := Level(strings.ToUpper(strings.TrimSpace(s)))
	switch l {
	case Backward, BackwardTransitive, Forward, ForwardTransitive, Full, FullTransitive, None:
		return l, nil
	}
	return "", fmt.Errorf("%w: %q", ErrInvalidLevel, s)
}

func (l Level) backward() bool {
	return l == Backward || l == BackwardTransitive || l == Full || l == FullTransitive
}

func (l Level) forward() bool {
	return l == Forward || l == ForwardTransitive || l == Full || l == FullTransitive
}

func (l Level) transitive() bool {
	return l == BackwardTransitive || l == ForwardTransitive || l == FullTransitive
}

// incompatibility says why a candidate schema fails against one version.
type incompatibility struct {
	version int
	schema  string
	reason  string
}

// checkCompat checks candidate against previous (live versions, oldest
// first) under level and returns the first incompatibility found, newest
// version first, or nil. A non-transitive level looks only at the newest.
func checkCompat(level Level, candidate avro.Schema, previous []*version) *incompatibility {
	if level == None || len(previous) == 0 {
		return nil
	}
	if !level.transitive() {
		previous = previous[len(previous)-1:]
	}
	for i := len(previous) - 1; i >= 0; i-- {
		if reason := checkPair(level, candidate, previous[i].schema.parsed); reason != "" {
			return &incompatibility{version: previous[i].number, schema: previous[i].schema.text, reason: reason}
		}
	}
	return nil
}

// checkPair checks candidate against one earlier schema in the directions
// level asks for, and returns why it fails or "".
func checkPair(level Level, candidate, earlier avro.Schema) string {
	// A fresh checker for every check: the checker caches results by a
	// fingerprint that ignores defaults, so a cached verdict about a schema
	// could be reused for the same schema with a default added.
	if level.backward() {
		if err := avro.NewSchemaCompatibility().Compatible(candidate, earlier); err != nil {
			return "the new schema cannot read data written with the old one: " + err.Error()
		}
	}
	if level.forward() {
		if err := avro.NewSchemaCompatibility().Compatible(earlier, candidate); err != nil {
			return "the old schema cannot read data written with the new one: " + err.Error()
		}
	}
	return ""
}

// messages formats inc as the details of Confluent's 409 message and the
// messages of a verbose compatibility check.
func (inc *incompatibility) messages(level Level) []string {
	return []string{
		fmt.Sprintf("{description:'%s'}", inc.reason),
		fmt.Sprintf("{oldSchemaVersion: %d}", inc.version),
		fmt.Sprintf("{oldSchema: '%s'}", inc.schema),
		fmt.Sprintf("{compatibility: '%s'}", level),
	}
}
