package schema

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hamba/avro/v2"
)

// ErrZeroSizeItems is wrapped when a writer schema has an array or map
// whose items take no bytes on the wire (null, a record without fields,
// fixed(0), or a type made only of those). A record of such a schema can
// declare any number of items in a few bytes, so decoding it is unbounded
// work: the schema is refused, and every record written with it is poison.
var ErrZeroSizeItems = errors.New("schema: array or map items take no bytes")

// ErrLimit is wrapped when a record declares more than [Limits] allow, or
// more items or bytes than it holds.
var ErrLimit = errors.New("schema: decode limit exceeded")

// Limits bound the work of decoding one record. The zero value of a field
// takes its default.
type Limits struct {
	// MaxItems is the most array items and map entries one record may
	// declare, summed over all its arrays and maps. Default 1<<20.
	MaxItems int
	// MaxBytes is the largest bytes or string value one record may hold.
	// Default 1 MiB, the default of the Avro decoder.
	MaxBytes int
	// MaxDepth is the deepest nesting of records, arrays, maps and unions
	// one record may have. Default 256.
	MaxDepth int
}

// Defaults of [Limits].
const (
	DefaultMaxItems = 1 << 20
	DefaultMaxBytes = 1 << 20
	DefaultMaxDepth = 256
)

func (l Limits) withDefaults() Limits {
	if l.MaxItems <= 0 {
		l.MaxItems = DefaultMaxItems
	}
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	return l
}

// api returns the Avro decoder configured with l's allocation bounds.
func (l Limits) api() avro.API {
	l = l.withDefaults()
	return avro.Config{
		MaxByteSliceSize:  l.MaxBytes,
		MaxSliceAllocSize: l.MaxItems,
	}.Freeze()
}

// CheckItems reports the first array or map of s whose items take no bytes
// on the wire, naming the field that holds it; see [ErrZeroSizeItems].
func CheckItems(s avro.Schema) error {
	return checkItems(s, "", map[string]bool{})
}

func checkItems(s avro.Schema, path string, seen map[string]bool) error {
	switch t := s.(type) {
	case *avro.RefSchema:
		return checkItems(t.Schema(), path, seen)
	case *avro.RecordSchema:
		if seen[t.FullName()] {
			return nil
		}
		seen[t.FullName()] = true
		for _, f := range t.Fields() {
			if err := checkItems(f.Type(), join(path, f.Name()), seen); err != nil {
				return err
			}
		}
	case *avro.UnionSchema:
		for _, u := range t.Types() {
			if err := checkItems(u, path, seen); err != nil {
				return err
			}
		}
	case *avro.ArraySchema:
		if zeroSize(t.Items(), map[string]bool{}) {
			return fmt.Errorf("%w: field %q is an array of %s", ErrZeroSizeItems, fieldName(path), describe(t.Items()))
		}
		return checkItems(t.Items(), path+"[]", seen)
	case *avro.MapSchema:
		if zeroSize(t.Values(), map[string]bool{}) {
			return fmt.Errorf("%w: field %q is a map of %s", ErrZeroSizeItems, fieldName(path), describe(t.Values()))
		}
		return checkItems(t.Values(), path+"{}", seen)
	}
	return nil
}

// zeroSize reports whether every value of s is encoded in zero bytes.
func zeroSize(s avro.Schema, visiting map[string]bool) bool {
	switch t := s.(type) {
	case *avro.RefSchema:
		return zeroSize(t.Schema(), visiting)
	case *avro.NullSchema:
		return true
	case *avro.FixedSchema:
		return t.Size() == 0
	case *avro.RecordSchema:
		if visiting[t.FullName()] {
			// A record that contains itself without a union or
			// collection between cannot be written at all; it takes
			// no bytes on any path that reaches this point.
			return true
		}
		visiting[t.FullName()] = true
		defer delete(visiting, t.FullName())
		for _, f := range t.Fields() {
			if !zeroSize(f.Type(), visiting) {
				return false
			}
		}
		return true
	}
	// Unions write an index, enums an ordinal, collections a block
	// count: at least one byte each.
	return false
}

func describe(s avro.Schema) string {
	if r, ok := s.(*avro.RefSchema); ok {
		s = r.Schema()
	}
	switch t := s.(type) {
	case *avro.FixedSchema:
		return fmt.Sprintf("fixed %s of size 0", t.FullName())
	case *avro.RecordSchema:
		return fmt.Sprintf("record %s that takes no bytes", t.FullName())
	}
	return string(s.Type())
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

func fieldName(path string) string {
	if path == "" {
		return "(top level)"
	}
	return path
}

// checkBounds walks payload with the writer schema w and fails, wrapping
// [ErrLimit], at the first array or map block that declares more items
// than bytes remain or than l allows, the first bytes or string longer than
// what remains or than l allows, or nesting deeper than l allows. It does
// work proportional to len(payload), whatever the payload declares, so the
// decoder that follows it is bounded as well.
func checkBounds(w avro.Schema, payload []byte, l Limits) error {
	b := bounder{buf: payload, lim: l.withDefaults()}
	b.walk(w, "", 0)
	return b.err
}

var stringSchema = avro.NewPrimitiveSchema(avro.String, nil)

type bounder struct {
	buf   []byte
	pos   int
	items int
	lim   Limits
	err   error
}

func (b *bounder) fail(path, format string, args ...any) {
	if b.err == nil {
		b.err = fmt.Errorf("%w: field %q: %s", ErrLimit, fieldName(path), fmt.Sprintf(format, args...))
	}
}

func (b *bounder) left() int { return len(b.buf) - b.pos }

func (b *bounder) long(path string) int64 {
	var v uint64
	for i, s := 0, uint(0); i < 10; i, s = i+1, s+7 {
		if b.pos >= len(b.buf) {
			b.fail(path, "record ends inside a number")
			return 0
		}
		c := b.buf[b.pos]
		b.pos++
		v |= uint64(c&0x7f) << s
		if c&0x80 == 0 {
			return int64(v>>1) ^ -int64(v&1)
		}
	}
	b.fail(path, "number longer than 10 bytes")
	return 0
}

func (b *bounder) skip(path string, n int64, what string) {
	if n < 0 || n > int64(b.left()) {
		b.fail(path, "%s of %d bytes, %d bytes left", what, n, b.left())
		return
	}
	b.pos += int(n)
}

func (b *bounder) walk(s avro.Schema, path string, depth int) {
	if b.err != nil {
		return
	}
	if depth > b.lim.MaxDepth {
		b.fail(path, "nested deeper than %d", b.lim.MaxDepth)
		return
	}
	switch t := s.(type) {
	case *avro.RefSchema:
		b.walk(t.Schema(), path, depth)
	case *avro.NullSchema:
	case *avro.PrimitiveSchema:
		switch t.Type() {
		case avro.Boolean:
			b.skip(path, 1, "boolean")
		case avro.Int, avro.Long:
			b.long(path)
		case avro.Float:
			b.skip(path, 4, "float")
		case avro.Double:
			b.skip(path, 8, "double")
		case avro.String, avro.Bytes:
			n := b.long(path)
			if b.err == nil && n > int64(b.lim.MaxBytes) {
				b.fail(path, "%s of %d bytes, limit %d", t.Type(), n, b.lim.MaxBytes)
				return
			}
			b.skip(path, n, string(t.Type()))
		}
	case *avro.FixedSchema:
		b.skip(path, int64(t.Size()), "fixed")
	case *avro.EnumSchema:
		if n := b.long(path); b.err == nil && (n < 0 || n >= int64(len(t.Symbols()))) {
			b.fail(path, "enum index %d out of range", n)
		}
	case *avro.RecordSchema:
		for _, f := range t.Fields() {
			b.walk(f.Type(), join(path, f.Name()), depth+1)
		}
	case *avro.UnionSchema:
		n := b.long(path)
		if b.err != nil {
			return
		}
		if n < 0 || n >= int64(len(t.Types())) {
			b.fail(path, "union index %d out of range", n)
			return
		}
		b.walk(t.Types()[n], path, depth+1)
	case *avro.ArraySchema:
		b.blocks(path+"[]", depth, false, t.Items())
	case *avro.MapSchema:
		b.blocks(path+"{}", depth, true, t.Values())
	default:
		b.fail(path, "unsupported schema type %s", s.Type())
	}
}

// blocks walks the blocks of an array (or a map, whose items start with a
// string key).
func (b *bounder) blocks(path string, depth int, keyed bool, items avro.Schema) {
	for b.err == nil {
		n := b.long(path)
		if b.err != nil || n == 0 {
			return
		}
		if n < 0 {
			if n == -n { // the one negative long with no positive
				b.fail(path, "block count %d", n)
				return
			}
			n = -n
			size := b.long(path)
			if b.err == nil && (size < 0 || size > int64(b.left())) {
				b.fail(path, "block of %d bytes, %d bytes left", size, b.left())
				return
			}
		}
		// Every item takes at least one byte: CheckItems refused the
		// schemas whose items take none.
		if n > int64(b.left()) {
			b.fail(path, "block of %d items, %d bytes left", n, b.left())
			return
		}
		if int64(b.items)+n > int64(b.lim.MaxItems) {
			b.fail(path, "more than %d items", b.lim.MaxItems)
			return
		}
		b.items += int(n)
		for i := int64(0); i < n && b.err == nil; i++ {
			start := b.pos
			if keyed {
				b.walk(stringSchema, strings.TrimSuffix(path, "{}")+"{key}", depth+1)
			}
			b.walk(items, path, depth+1)
			if b.err == nil && b.pos == start {
				b.fail(path, "item takes no bytes")
			}
		}
	}
}
