package grpcresolver

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// The range of google.protobuf.Timestamp: 0001-01-01T00:00:00Z to
// 9999-12-31T23:59:59.999999999Z.
const (
	minTimestampSeconds = -62135596800
	maxTimestampSeconds = 253402300799
)

// valueConv turns one protobuf value (not a list or a map) into the Go
// value hamba/avro encodes under the schema derived with it.
type valueConv func(protoreflect.Value) (any, error)

// fieldConv reads one Avro field from a message.
type fieldConv struct {
	name string
	get  func(protoreflect.Message) (any, error)
}

// msgConv turns a message into the map[string]any of its Avro record.
type msgConv struct {
	fields []fieldConv
}

// convert returns m as an Avro record value; an error names the field
// path.
func (c *msgConv) convert(m protoreflect.Message) (map[string]any, error) {
	out := make(map[string]any, len(c.fields))
	for i := range c.fields {
		f := &c.fields[i]
		v, err := f.get(m)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.name, err)
		}
		out[f.name] = v
	}
	return out, nil
}

// schemaBuilder derives Avro schemas from message descriptors. A named
// type (record, enum) is defined where it first appears and referred to
// by name afterwards, as Avro requires.
type schemaBuilder struct {
	named      map[string]avro.NamedSchema
	msgs       map[protoreflect.FullName]*msgConv
	inProgress map[protoreflect.FullName]bool
	path       []string
}

// deriveRecord returns the Avro record schema of md and the converter of
// its messages. See the package documentation for the mapping.
func deriveRecord(md protoreflect.MessageDescriptor) (*avro.RecordSchema, *msgConv, error) {
	if wk := wellKnown(md); wk != wkNone {
		return nil, nil, fmt.Errorf("%s is a well-known type, not a record message", md.FullName())
	}
	b := &schemaBuilder{
		named:      map[string]avro.NamedSchema{},
		msgs:       map[protoreflect.FullName]*msgConv{},
		inProgress: map[protoreflect.FullName]bool{},
	}
	s, c, err := b.message(md)
	if err != nil {
		return nil, nil, err
	}
	return s.(*avro.RecordSchema), c, nil
}

func (b *schemaBuilder) define(s avro.NamedSchema) error {
	if _, dup := b.named[s.FullName()]; dup {
		return fmt.Errorf("the Avro name %s would be defined twice", s.FullName())
	}
	b.named[s.FullName()] = s
	return nil
}

func (b *schemaBuilder) at() string {
	if len(b.path) == 0 {
		return "the record"
	}
	return "field " + strings.Join(b.path, ".")
}

// message returns the record of md, or a reference to it once defined.
func (b *schemaBuilder) message(md protoreflect.MessageDescriptor) (avro.Schema, *msgConv, error) {
	name := md.FullName()
	if b.inProgress[name] {
		return nil, nil, fmt.Errorf("message %s is recursive (it contains itself at %s), which an Avro record cannot express", name, b.at())
	}
	if c, ok := b.msgs[name]; ok {
		return avro.NewRefSchema(b.named[string(name)]), c, nil
	}
	b.inProgress[name] = true
	defer delete(b.inProgress, name)

	c := &msgConv{}
	var fields []*avro.Field
	oneofs := map[protoreflect.FullName]bool{}
	fds := md.Fields()
	for i := range fds.Len() {
		fd := fds.Get(i)
		var (
			f   *avro.Field
			get func(protoreflect.Message) (any, error)
			err error
		)
		if od := fd.ContainingOneof(); od != nil && !od.IsSynthetic() {
			if oneofs[od.FullName()] {
				continue
			}
			oneofs[od.FullName()] = true
			b.path = append(b.path, string(od.Name()))
			f, get, err = b.oneof(md, od)
		} else {
			b.path = append(b.path, string(fd.Name()))
			f, get, err = b.field(fd)
		}
		b.path = b.path[:len(b.path)-1]
		if err != nil {
			return nil, nil, err
		}
		fields = append(fields, f)
		c.fields = append(c.fields, fieldConv{name: f.Name(), get: get})
	}
	rec, err := avro.NewRecordSchema(string(md.Name()), string(name.Parent()), fields)
	if err != nil {
		return nil, nil, fmt.Errorf("message %s: %w", name, err)
	}
	if err := b.define(rec); err != nil {
		return nil, nil, err
	}
	b.msgs[name] = c
	return rec, c, nil
}

// field derives one field that is not part of a oneof.
func (b *schemaBuilder) field(fd protoreflect.FieldDescriptor) (*avro.Field, func(protoreflect.Message) (any, error), error) {
	name := string(fd.Name())
	switch {
	case fd.IsMap():
		vs, vc, err := b.single(fd.MapValue())
		if err != nil {
			return nil, nil, err
		}
		f, err := avro.NewField(name, avro.NewMapSchema(vs), avro.WithDefault(map[string]any{}))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", b.at(), err)
		}
		return f, func(m protoreflect.Message) (any, error) {
			mp := m.Get(fd).Map()
			out := make(map[string]any, mp.Len())
			var err error
			mp.Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
				var x any
				// MapKey.String formats bool and integer keys in decimal.
				if x, err = vc(v); err != nil {
					err = fmt.Errorf("[%s]: %w", k.String(), err)
					return false
				}
				out[k.String()] = x
				return true
			})
			return out, err
		}, nil
	case fd.IsList():
		is, ic, err := b.single(fd)
		if err != nil {
			return nil, nil, err
		}
		f, err := avro.NewField(name, avro.NewArraySchema(is), avro.WithDefault([]any{}))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", b.at(), err)
		}
		return f, func(m protoreflect.Message) (any, error) {
			l := m.Get(fd).List()
			out := make([]any, l.Len())
			for i := range out {
				x, err := ic(l.Get(i))
				if err != nil {
					return nil, fmt.Errorf("[%d]: %w", i, err)
				}
				out[i] = x
			}
			return out, nil
		}, nil
	}
	s, c, err := b.single(fd)
	if err != nil {
		return nil, nil, err
	}
	if fd.HasPresence() && fd.Cardinality() != protoreflect.Required {
		// A message field, a proto3 optional or a proto2 optional field:
		// unset is null.
		u, err := avro.NewUnionSchema([]avro.Schema{avro.NewNullSchema(), s})
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", b.at(), err)
		}
		f, err := avro.NewField(name, u, avro.WithDefault(nil))
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", b.at(), err)
		}
		key := unionName(s)
		return f, func(m protoreflect.Message) (any, error) {
			if !m.Has(fd) {
				return nil, nil
			}
			x, err := c(m.Get(fd))
			if err != nil {
				return nil, err
			}
			return map[string]any{key: x}, nil
		}, nil
	}
	var opts []avro.SchemaOption
	if def, ok := zeroDefault(fd, s); ok {
		opts = append(opts, avro.WithDefault(def))
	}
	f, err := avro.NewField(name, s, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", b.at(), err)
	}
	return f, func(m protoreflect.Message) (any, error) { return c(m.Get(fd)) }, nil
}

// oneof derives the nullable union of a oneof's members. Members whose
// Avro types would clash in a union (two strings, a long and a
// timestamp) are each wrapped in a record named after the member.
func (b *schemaBuilder) oneof(md protoreflect.MessageDescriptor, od protoreflect.OneofDescriptor) (*avro.Field, func(protoreflect.Message) (any, error), error) {
	fds := od.Fields()
	schemas := make([]avro.Schema, fds.Len())
	convs := make([]valueConv, fds.Len())
	seen := map[string]bool{}
	clash := false
	for i := range fds.Len() {
		fd := fds.Get(i)
		b.path = append(b.path, string(fd.Name()))
		s, c, err := b.single(fd)
		b.path = b.path[:len(b.path)-1]
		if err != nil {
			return nil, nil, err
		}
		schemas[i], convs[i] = s, c
		k := unionKind(s)
		clash = clash || seen[k]
		seen[k] = true
	}
	if clash {
		ns := string(md.FullName()) + "." + string(od.Name())
		for i := range fds.Len() {
			vf, err := avro.NewField("value", schemas[i])
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", b.at(), err)
			}
			rec, err := avro.NewRecordSchema(string(fds.Get(i).Name()), ns, []*avro.Field{vf})
			if err != nil {
				return nil, nil, fmt.Errorf("%s: %w", b.at(), err)
			}
			if err := b.define(rec); err != nil {
				return nil, nil, err
			}
			inner := convs[i]
			schemas[i] = rec
			convs[i] = func(v protoreflect.Value) (any, error) {
				x, err := inner(v)
				if err != nil {
					return nil, err
				}
				return map[string]any{"value": x}, nil
			}
		}
	}
	u, err := avro.NewUnionSchema(append([]avro.Schema{avro.NewNullSchema()}, schemas...))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", b.at(), err)
	}
	f, err := avro.NewField(string(od.Name()), u, avro.WithDefault(nil))
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", b.at(), err)
	}
	keys := make(map[protoreflect.FieldNumber]int, fds.Len())
	names := make([]string, fds.Len())
	for i := range fds.Len() {
		keys[fds.Get(i).Number()] = i
		names[i] = unionName(schemas[i])
	}
	return f, func(m protoreflect.Message) (any, error) {
		fd := m.WhichOneof(od)
		if fd == nil {
			return nil, nil
		}
		i := keys[fd.Number()]
		x, err := convs[i](m.Get(fd))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", fd.Name(), err)
		}
		return map[string]any{names[i]: x}, nil
	}, nil
}

// single derives the schema of one value of fd (an element of a list, the
// value of a map, or a singular field).
func (b *schemaBuilder) single(fd protoreflect.FieldDescriptor) (avro.Schema, valueConv, error) {
	switch fd.Kind() {
	case protoreflect.BoolKind:
		return avro.NewPrimitiveSchema(avro.Boolean, nil), func(v protoreflect.Value) (any, error) { return v.Bool(), nil }, nil
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		return avro.NewPrimitiveSchema(avro.Int, nil), func(v protoreflect.Value) (any, error) { return int32(v.Int()), nil }, nil
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		return avro.NewPrimitiveSchema(avro.Long, nil), func(v protoreflect.Value) (any, error) { return v.Int(), nil }, nil
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		return avro.NewPrimitiveSchema(avro.Long, nil), func(v protoreflect.Value) (any, error) { return int64(v.Uint()), nil }, nil
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return avro.NewPrimitiveSchema(avro.Long, nil), func(v protoreflect.Value) (any, error) {
			u := v.Uint()
			if u > math.MaxInt64 {
				return nil, fmt.Errorf("uint64 %d is above the Avro long range", u)
			}
			return int64(u), nil
		}, nil
	case protoreflect.FloatKind:
		return avro.NewPrimitiveSchema(avro.Float, nil), func(v protoreflect.Value) (any, error) { return float32(v.Float()), nil }, nil
	case protoreflect.DoubleKind:
		return avro.NewPrimitiveSchema(avro.Double, nil), func(v protoreflect.Value) (any, error) { return v.Float(), nil }, nil
	case protoreflect.StringKind:
		return avro.NewPrimitiveSchema(avro.String, nil), func(v protoreflect.Value) (any, error) { return v.String(), nil }, nil
	case protoreflect.BytesKind:
		return avro.NewPrimitiveSchema(avro.Bytes, nil), func(v protoreflect.Value) (any, error) { return v.Bytes(), nil }, nil
	case protoreflect.EnumKind:
		return b.enum(fd.Enum())
	case protoreflect.MessageKind, protoreflect.GroupKind:
		md := fd.Message()
		switch wellKnown(md) {
		case wkTimestamp:
			return timestampSchema(md)
		case wkWrapper:
			inner := md.Fields().ByNumber(1)
			s, c, err := b.single(inner)
			if err != nil {
				return nil, nil, err
			}
			return s, func(v protoreflect.Value) (any, error) { return c(v.Message().Get(inner)) }, nil
		}
		s, mc, err := b.message(md)
		if err != nil {
			return nil, nil, err
		}
		return s, func(v protoreflect.Value) (any, error) { return mc.convert(v.Message()) }, nil
	}
	return nil, nil, fmt.Errorf("%s: protobuf kind %s has no Avro form", b.at(), fd.Kind())
}

// enum derives an Avro enum of the value names. A number the descriptor
// does not know (a newer server) becomes the first value, which is also
// the enum's default.
func (b *schemaBuilder) enum(ed protoreflect.EnumDescriptor) (avro.Schema, valueConv, error) {
	vals := ed.Values()
	symbols := make([]string, vals.Len())
	byNumber := make(map[protoreflect.EnumNumber]string, vals.Len())
	for i := range vals.Len() {
		v := vals.Get(i)
		symbols[i] = string(v.Name())
		if _, ok := byNumber[v.Number()]; !ok {
			byNumber[v.Number()] = symbols[i]
		}
	}
	def := symbols[0]
	conv := func(v protoreflect.Value) (any, error) {
		if s, ok := byNumber[v.Enum()]; ok {
			return s, nil
		}
		return def, nil
	}
	name := string(ed.FullName())
	if s, ok := b.named[name]; ok {
		return avro.NewRefSchema(s), conv, nil
	}
	s, err := avro.NewEnumSchema(string(ed.Name()), string(ed.FullName().Parent()), symbols, avro.WithDefault(def))
	if err != nil {
		return nil, nil, fmt.Errorf("enum %s: %w", ed.FullName(), err)
	}
	if err := b.define(s); err != nil {
		return nil, nil, err
	}
	return s, conv, nil
}

// timestampSchema is google.protobuf.Timestamp as a long of
// microseconds since the epoch (timestamp-micros); nanoseconds below a
// microsecond are dropped.
func timestampSchema(md protoreflect.MessageDescriptor) (avro.Schema, valueConv, error) {
	secs, nanos := md.Fields().ByName("seconds"), md.Fields().ByName("nanos")
	s := avro.NewPrimitiveSchema(avro.Long, avro.NewPrimitiveLogicalSchema(avro.TimestampMicros))
	return s, func(v protoreflect.Value) (any, error) {
		m := v.Message()
		sec, ns := m.Get(secs).Int(), m.Get(nanos).Int()
		if sec < minTimestampSeconds || sec > maxTimestampSeconds || ns < 0 || ns >= 1e9 {
			return nil, fmt.Errorf("timestamp %ds %dns is out of range", sec, ns)
		}
		return time.UnixMicro(sec*1e6 + ns/1e3).UTC(), nil
	}, nil
}

// zeroDefault is the Avro default of a field without presence: its
// protobuf zero value.
func zeroDefault(fd protoreflect.FieldDescriptor, s avro.Schema) (any, bool) {
	if fd.Cardinality() == protoreflect.Required {
		return nil, false
	}
	switch s.Type() {
	case avro.Boolean:
		return false, true
	case avro.Int:
		return 0, true
	case avro.Long:
		return int64(0), true
	case avro.Float:
		return float32(0), true
	case avro.Double:
		return float64(0), true
	case avro.String, avro.Bytes:
		return "", true
	case avro.Enum, avro.Ref:
		if fd.Kind() == protoreflect.EnumKind {
			return string(fd.Enum().Values().Get(0).Name()), true
		}
	}
	return nil, false
}

// unionName is the name hamba/avro knows a union member by: the full name
// of a named type, else the type, with its logical type after a dot.
func unionName(s avro.Schema) string {
	if r, ok := s.(*avro.RefSchema); ok {
		s = r.Schema()
	}
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	name := string(s.Type())
	if ls, ok := s.(avro.LogicalTypeSchema); ok && ls.Logical() != nil {
		name += "." + string(ls.Logical().Type())
	}
	return name
}

// unionKind is what Avro requires to be unique among a union's members:
// the full name of a named type, else the type (a long and a
// timestamp-micros long clash).
func unionKind(s avro.Schema) string {
	if r, ok := s.(*avro.RefSchema); ok {
		s = r.Schema()
	}
	if n, ok := s.(avro.NamedSchema); ok {
		return n.FullName()
	}
	return string(s.Type())
}

type wellKnownType int

const (
	wkNone wellKnownType = iota
	wkTimestamp
	wkWrapper
)

func wellKnown(md protoreflect.MessageDescriptor) wellKnownType {
	switch md.FullName() {
	case "google.protobuf.Timestamp":
		return wkTimestamp
	case "google.protobuf.DoubleValue", "google.protobuf.FloatValue",
		"google.protobuf.Int64Value", "google.protobuf.UInt64Value",
		"google.protobuf.Int32Value", "google.protobuf.UInt32Value",
		"google.protobuf.BoolValue", "google.protobuf.StringValue",
		"google.protobuf.BytesValue":
		return wkWrapper
	}
	return wkNone
}
