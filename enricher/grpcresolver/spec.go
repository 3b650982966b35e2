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
// messages the ids, records, versions and tombstones are: the resolver
// entry of an enrich pipeline ([enricher.ResolverSpec]), so that a
// pipeline's YAML carries it as it is.
type Spec = enricher.ResolverSpec

// withDefaults returns s with the unset fields filled in.
func withDefaults(s Spec) Spec {
	if s.Method == "" {
		s.Method = enricher.MethodBatchGet
	}
	if s.IDsField == "" {
		s.IDsField = "ids"
		if s.Method == enricher.MethodGet {
			s.IDsField = "id"
		}
	}
	if s.Method == enricher.MethodDependents {
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
func check(s Spec) (service, method string, err error) {
	kinds := []string{enricher.MethodBatchGet, enricher.MethodGet, enricher.MethodDependents}
	switch {
	case s.Target == "":
		return "", "", specError("target", "is required")
	case !slices.Contains(kinds, s.Method):
		return "", "", specError("method", "%q, want batch_get, get or dependents", s.Method)
	case s.Timeout < 0:
		return "", "", specError("timeout", "%v is negative", s.Timeout)
	}
	service, method, err = splitMethod(s.RPC)
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
				return specError(name, "%q is set, but only method %s uses it (method is %s)", settings[name], kind, s.Method)
			}
		}
		return nil
	}
	switch s.Method {
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
		if s.Method == enricher.MethodBatchGet && s.RecordsField == "" {
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
