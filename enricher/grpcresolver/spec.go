package grpcresolver

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/slatehq/slate/enricher"
)

// DefaultTimeout bounds one call when [Spec.Timeout] is 0; it is the
// pipeline's default resolver timeout.
const DefaultTimeout = 5 * time.Second

// ErrSpec is wrapped by every error of [New] about a setting of the
// [Spec]: a missing method, a field that does not exist or has the wrong
// type. It wraps [enricher.ErrConfig].
var ErrSpec = fmt.Errorf("%w: grpc resolver", enricher.ErrConfig)

// Spec says which unary method of which service to call and where in its
// messages the ids, records, versions and tombstones are. Field names are
// the protobuf names (snake_case), of top-level fields of the message
// concerned. The YAML names match [enricher.ResolverSpec]'s: "method" is
// the kind and "rpc" the full method name, so that a pipeline's resolver
// entry can carry a Spec as it is.
type Spec struct {
	// Target is the gRPC target (host:port or a resolver URI). Required.
	Target string `yaml:"target"`
	// Kind is [enricher.MethodBatchGet] (default), [enricher.MethodGet] or
	// [enricher.MethodDependents].
	Kind string `yaml:"method"`
	// Method is the full method name, <package>.<Service>/<Method>, as in
	// studio.titles.v1.Titles/BatchGetTitles (a leading slash, or a dot in
	// place of the slash, is accepted). The method must be unary. Required.
	Method string `yaml:"rpc"`
	// IDsField is the request field carrying the ids: a repeated string
	// for batch_get and dependents (default "ids"), a string for get
	// (default "id").
	IDsField string `yaml:"ids_field"`
	// RecordsField is the response field holding the records: a repeated
	// message for batch_get (required); for get a message field, or empty
	// when the response itself is the record. Not for dependents.
	RecordsField string `yaml:"records_field"`
	// IDField is the record's id, a string (default "id"). A batch_get
	// record answers the id it carries; ids asked for and not answered
	// were deleted at the source. Not for dependents.
	IDField string `yaml:"id_field"`
	// VersionField is the record's version, an integer field (int32,
	// int64, uint32, uint64 and their sint/fixed forms; a uint64 above
	// the int64 range fails the record). Empty (the default): records
	// carry version 0, which the enricher treats as no version. Not for
	// dependents.
	VersionField string `yaml:"version_field"`
	// DeletedField is an optional bool of the record marking a tombstone
	// ([enricher.Record.Deleted]): the owner deleted the entity at the
	// record's version. Not for dependents.
	DeletedField string `yaml:"deleted_field"`
	// DependentsField is, for dependents (required), the response field
	// mapping each changed id to its dependents' ids, in one of two forms:
	//
	//	map<string, Ids> dependents = 1;   // message Ids { repeated string ids = 1; }
	//	repeated Edge dependents = 1;      // message Edge { string id = 1; repeated string ids = 2; }
	//
	// A map's key is the changed id; an entry of the repeated form names
	// it in [Spec.DependentsKeyField]. Either way the dependents' ids are
	// the repeated string [Spec.DependentsIDsField] of the value.
	DependentsField string `yaml:"dependents_field"`
	// DependentsKeyField is the changed id of an entry of the repeated
	// form of [Spec.DependentsField], a string (default "id").
	DependentsKeyField string `yaml:"dependents_key_field"`
	// DependentsIDsField is the dependents' ids in a value of
	// [Spec.DependentsField], a repeated string (default "ids").
	DependentsIDsField string `yaml:"dependents_ids_field"`
	// DescriptorSet is the path of a file descriptor set holding the
	// service, as written by protoc --descriptor_set_out=FILE
	// --include_imports. Empty (the default): the descriptors come from
	// the target's server reflection (grpc.reflection.v1, or v1alpha when
	// the server has only that).
	DescriptorSet string `yaml:"descriptor_set"`
	// Timeout bounds one call (default [DefaultTimeout]); a get resolver
	// bounds each of its unary calls by it.
	Timeout time.Duration `yaml:"timeout"`
}

// withDefaults returns s with the unset fields filled in.
func (s Spec) withDefaults() Spec {
	if s.Kind == "" {
		s.Kind = enricher.MethodBatchGet
	}
	if s.IDsField == "" {
		s.IDsField = "ids"
		if s.Kind == enricher.MethodGet {
			s.IDsField = "id"
		}
	}
	if s.Kind == enricher.MethodDependents {
		if s.DependentsKeyField == "" {
			s.DependentsKeyField = "id"
		}
		if s.DependentsIDsField == "" {
			s.DependentsIDsField = "ids"
		}
	} else if s.IDField == "" {
		s.IDField = "id"
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultTimeout
	}
	return s
}

// specError is an error about one setting, named by its YAML name.
func specError(setting, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", ErrSpec, setting, fmt.Sprintf(format, args...))
}

// check validates what needs no descriptors: required settings, the kind,
// the method's syntax and settings that do not belong to the kind. It
// returns the service and method names.
func (s Spec) check() (service, method string, err error) {
	kinds := []string{enricher.MethodBatchGet, enricher.MethodGet, enricher.MethodDependents}
	switch {
	case s.Target == "":
		return "", "", specError("target", "is required")
	case !slices.Contains(kinds, s.Kind):
		return "", "", specError("method", "%q, want batch_get, get or dependents", s.Kind)
	case s.Timeout < 0:
		return "", "", specError("timeout", "%v is negative", s.Timeout)
	}
	service, method, err = splitMethod(s.Method)
	if err != nil {
		return "", "", err
	}
	only := func(kind string, settings map[string]string) error {
		names := make([]string, 0, len(settings))
		for name := range settings {
			names = append(names, name)
		}
		slices.Sort(names)
		for _, name := range names {
			if settings[name] != "" {
				return specError(name, "%q is set, but only method %s uses it (method is %s)", settings[name], kind, s.Kind)
			}
		}
		return nil
	}
	switch s.Kind {
	case enricher.MethodDependents:
		if err := only("batch_get or get", map[string]string{
			"records_field": s.RecordsField, "id_field": s.IDField,
			"version_field": s.VersionField, "deleted_field": s.DeletedField,
		}); err != nil {
			return "", "", err
		}
		if s.DependentsField == "" {
			return "", "", specError("dependents_field", "is required for method dependents")
		}
	default:
		if err := only("dependents", map[string]string{
			"dependents_field": s.DependentsField, "dependents_key_field": s.DependentsKeyField,
			"dependents_ids_field": s.DependentsIDsField,
		}); err != nil {
			return "", "", err
		}
		if s.Kind == enricher.MethodBatchGet && s.RecordsField == "" {
			return "", "", specError("records_field", "is required for method batch_get")
		}
	}
	return service, method, nil
}

// splitMethod splits a full method name into service and method.
func splitMethod(full string) (service, method string, err error) {
	name := strings.TrimPrefix(full, "/")
	i := strings.LastIndexByte(name, '/')
	if i < 0 {
		i = strings.LastIndexByte(name, '.')
	}
	if name == "" {
		return "", "", specError("rpc", "is required")
	}
	if i <= 0 || i == len(name)-1 {
		return "", "", specError("rpc", "%q is not a full method name <package>.<Service>/<Method>", full)
	}
	service, method = name[:i], name[i+1:]
	if strings.ContainsAny(service, "/") || strings.ContainsAny(method, "./") {
		return "", "", specError("rpc", "%q is not a full method name <package>.<Service>/<Method>", full)
	}
	return service, method, nil
}

var errNoReflection = errors.New("the target serves neither grpc.reflection.v1 nor v1alpha; set descriptor_set")
