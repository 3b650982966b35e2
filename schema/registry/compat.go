package registry

import (
	"fmt"
	"slices"
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

// target is an earlier version a candidate is checked against: a copy of
// what the check needs, taken under the server's lock so that the check
// itself can run without it.
type target struct {
	number int
	id     int
	schema avro.Schema
	text   string
}

// checkCompat checks candidate against previous (live versions, oldest
// first) under level and returns the first incompatibility found, newest
// version first, or nil. A non-transitive level looks only at the newest.
func checkCompat(level Level, candidate avro.Schema, previous []target) *incompatibility {
	if level == None || len(previous) == 0 {
		return nil
	}
	if !level.transitive() {
		previous = previous[len(previous)-1:]
	}
	for i := len(previous) - 1; i >= 0; i-- {
		if reason := checkPair(level, candidate, previous[i].schema); reason != "" {
			return &incompatibility{version: previous[i].number, schema: previous[i].text, reason: reason}
		}
	}
	return nil
}

// checkPair checks candidate against one earlier schema in the directions
// level asks for, and returns why it fails or "".
func checkPair(level Level, candidate, earlier avro.Schema) string {
	if level.backward() {
		if err := canRead(candidate, earlier); err != nil {
			return "the new schema cannot read data written with the old one: " + err.Error()
		}
	}
	if level.forward() {
		if err := canRead(earlier, candidate); err != nil {
			return "the old schema cannot read data written with the new one: " + err.Error()
		}
	}
	return ""
}

// canRead reports whether data written with writer can be read with reader,
// by the resolution rules of the Avro specification (as Avro's Java
// SchemaCompatibility applies them): promotions int -> long -> float ->
// double and string <-> bytes; records matched by name or reader alias,
// fields by name or reader field alias, a reader field missing from the
// writer needs a default; writer enum symbols must be reader symbols unless
// the reader has a default; fixed sizes equal; every branch of a writer
// union readable, a writer non-union readable by some reader branch.
//
// Its cost is linear in the size of the two schemas: fields and symbols are
// looked up in maps, and each pair of named types is checked once. A panic
// (a schema shape the parser let through) is reported as an
// incompatibility, never raised.
func canRead(reader, writer avro.Schema) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("the schemas could not be compared: %v", r)
		}
	}()
	c := &compatChecker{seen: make(map[schemaPair]error)}
	return c.check(reader, writer)
}

type schemaPair struct{ reader, writer avro.Schema }

// errInProgress marks a pair of named types whose check is under way: met
// again while checking it (a recursive type), it counts as compatible, the
// coinductive reading Avro's checker also takes.
var errInProgress = fmt.Errorf("in progress")

type compatChecker struct {
	seen map[schemaPair]error // verdicts on pairs of named types
}

func deref(s avro.Schema) avro.Schema {
	for {
		r, ok := s.(*avro.RefSchema)
		if !ok {
			return s
		}
		s = r.Schema()
	}
}

func (c *compatChecker) check(reader, writer avro.Schema) error {
	reader, writer = deref(reader), deref(writer)
	if w, ok := writer.(*avro.UnionSchema); ok {
		for _, branch := range w.Types() {
			if err := c.check(reader, branch); err != nil {
				return err
			}
		}
		return nil
	}
	if r, ok := reader.(*avro.UnionSchema); ok {
		for _, branch := range r.Types() {
			if c.check(branch, writer) == nil {
				return nil
			}
		}
		return fmt.Errorf("reader union lacks a branch for writer type %s", describe(writer))
	}
	if reader.Type() != writer.Type() {
		if promotes(writer.Type(), reader.Type()) {
			return nil
		}
		return fmt.Errorf("reader type %s cannot read writer type %s", describe(reader), describe(writer))
	}
	switch r := reader.(type) {
	case *avro.ArraySchema:
		return c.check(r.Items(), writer.(*avro.ArraySchema).Items())
	case *avro.MapSchema:
		return c.check(r.Values(), writer.(*avro.MapSchema).Values())
	case *avro.RecordSchema, *avro.EnumSchema, *avro.FixedSchema:
		return c.named(reader, writer)
	}
	return nil
}

// named checks a pair of records, enums or fixeds, once per pair.
func (c *compatChecker) named(reader, writer avro.Schema) error {
	p := schemaPair{reader, writer}
	if err, ok := c.seen[p]; ok {
		if err == errInProgress {
			return nil
		}
		return err
	}
	c.seen[p] = errInProgress
	err := c.namedOnce(reader, writer)
	c.seen[p] = err
	return err
}

func (c *compatChecker) namedOnce(reader, writer avro.Schema) error {
	rn, wn := reader.(avro.NamedSchema), writer.(avro.NamedSchema)
	if rn.Name() != wn.Name() && !slices.Contains(rn.Aliases(), wn.FullName()) {
		return fmt.Errorf("reader name %s does not match writer name %s", rn.FullName(), wn.FullName())
	}
	switch r := reader.(type) {
	case *avro.FixedSchema:
		if w := writer.(*avro.FixedSchema); r.Size() != w.Size() {
			return fmt.Errorf("fixed %s has size %d in the reader, %d in the writer", r.FullName(), r.Size(), w.Size())
		}
	case *avro.EnumSchema:
		if r.HasDefault() {
			return nil
		}
		symbols := make(map[string]struct{}, len(r.Symbols()))
		for _, s := range r.Symbols() {
			symbols[s] = struct{}{}
		}
		for _, s := range writer.(*avro.EnumSchema).Symbols() {
			if _, ok := symbols[s]; !ok {
				return fmt.Errorf("reader enum %s lacks symbol %s and has no default", r.FullName(), s)
			}
		}
	case *avro.RecordSchema:
		wfields := writer.(*avro.RecordSchema).Fields()
		byName := make(map[string]*avro.Field, len(wfields))
		for _, f := range wfields {
			byName[f.Name()] = f
		}
		for _, f := range r.Fields() {
			wf := byName[f.Name()]
			for _, alias := range f.Aliases() {
				if wf != nil {
					break
				}
				wf = byName[alias]
			}
			if wf == nil {
				if f.HasDefault() {
					continue
				}
				return fmt.Errorf("reader field %s.%s is missing in the writer schema and has no default", r.FullName(), f.Name())
			}
			if err := c.check(f.Type(), wf.Type()); err != nil {
				return fmt.Errorf("field %s.%s: %w", r.FullName(), f.Name(), err)
			}
		}
	}
	return nil
}

// promotes reports whether a writer's primitive type resolves to a
// different reader type.
func promotes(writer, reader avro.Type) bool {
	switch writer {
	case avro.Int:
		return reader == avro.Long || reader == avro.Float || reader == avro.Double
	case avro.Long:
		return reader == avro.Float || reader == avro.Double
	case avro.Float:
		return reader == avro.Double
	case avro.String:
		return reader == avro.Bytes
	case avro.Bytes:
		return reader == avro.String
	}
	return false
}

func describe(s avro.Schema) string {
	if n, ok := s.(avro.NamedSchema); ok {
		return fmt.Sprintf("%s %s", s.Type(), n.FullName())
	}
	return string(s.Type())
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
