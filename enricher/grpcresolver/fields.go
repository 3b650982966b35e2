package grpcresolver

import (
	"fmt"

	"google.golang.org/protobuf/reflect/protoreflect"
)

// shape is what a setting needs its field to be.
type shape int

const (
	shapeAny shape = iota
	shapeString
	shapeRepeatedString
	shapeMessage
	shapeRepeatedMessage
	shapeInteger
	shapeBool
)

func (s shape) String() string {
	switch s {
	case shapeString:
		return "a string"
	case shapeRepeatedString:
		return "a repeated string"
	case shapeMessage:
		return "a message"
	case shapeRepeatedMessage:
		return "a repeated message"
	case shapeInteger:
		return "an integer"
	case shapeBool:
		return "a bool"
	}
	return "a field"
}

func (s shape) fits(fd protoreflect.FieldDescriptor) bool {
	single := !fd.IsList() && !fd.IsMap()
	isMessage := fd.Kind() == protoreflect.MessageKind || fd.Kind() == protoreflect.GroupKind
	switch s {
	case shapeString:
		return single && fd.Kind() == protoreflect.StringKind
	case shapeRepeatedString:
		return fd.IsList() && fd.Kind() == protoreflect.StringKind
	case shapeMessage:
		return single && isMessage
	case shapeRepeatedMessage:
		return fd.IsList() && isMessage
	case shapeInteger:
		if !single {
			return false
		}
		switch fd.Kind() {
		case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
			protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
			protoreflect.Uint32Kind, protoreflect.Fixed32Kind,
			protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
			return true
		}
		return false
	case shapeBool:
		return single && fd.Kind() == protoreflect.BoolKind
	}
	return true
}

// lookupField finds the field name of md and checks its shape; an error
// names the setting.
func lookupField(setting string, md protoreflect.MessageDescriptor, name string, want shape) (protoreflect.FieldDescriptor, error) {
	if name == "" {
		return nil, specError(setting, "is required")
	}
	fd := md.Fields().ByName(protoreflect.Name(name))
	if fd == nil {
		return nil, specError(setting, "message %s has no field %q", md.FullName(), name)
	}
	if !want.fits(fd) {
		return nil, specError(setting, "%s is %s, need %s", describeField(fd), describeShape(fd), want)
	}
	return fd, nil
}

func describeField(fd protoreflect.FieldDescriptor) string {
	return fmt.Sprintf("field %s of %s", fd.Name(), fd.ContainingMessage().FullName())
}

// describeShape says what fd is, as a .proto file would declare it.
func describeShape(fd protoreflect.FieldDescriptor) string {
	typ := func(fd protoreflect.FieldDescriptor) string {
		switch fd.Kind() {
		case protoreflect.MessageKind, protoreflect.GroupKind:
			return string(fd.Message().FullName())
		case protoreflect.EnumKind:
			return string(fd.Enum().FullName())
		}
		return fd.Kind().String()
	}
	switch {
	case fd.IsMap():
		return fmt.Sprintf("map<%s, %s>", typ(fd.MapKey()), typ(fd.MapValue()))
	case fd.IsList():
		return "repeated " + typ(fd)
	}
	return typ(fd)
}
