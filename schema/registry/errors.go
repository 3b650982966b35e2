package registry

import (
	"errors"
	"fmt"
	"net/http"
)

// ErrInvalidLevel is returned by [ParseLevel] and by [New] for a
// compatibility level that is not one of the [Level] constants.
var ErrInvalidLevel = errors.New("registry: invalid compatibility level")

// ErrInvalidRecord is wrapped by [New] when a record loaded from the [Store]
// cannot be applied (an unknown shape, a SCHEMA value without a schema or
// id, an Avro schema that does not parse).
var ErrInvalidRecord = errors.New("registry: invalid record")

// Error codes of the Confluent Schema Registry REST API, as the server sends
// them in the error_code field. Route-level errors carry the HTTP status as
// their code (404, 405, 415), and malformed JSON bodies 400.
const (
	CodeSubjectNotFound               = 40401
	CodeVersionNotFound               = 40402
	CodeSchemaNotFound                = 40403
	CodeSubjectSoftDeleted            = 40404
	CodeSubjectNotSoftDeleted         = 40405
	CodeVersionSoftDeleted            = 40406
	CodeVersionNotSoftDeleted         = 40407
	CodeSubjectCompatibilityNotConfig = 40408
	CodeIncompatibleSchema            = 409
	CodeInvalidSchema                 = 42201
	CodeInvalidVersion                = 42202
	CodeInvalidCompatibilityLevel     = 42203
	CodeStoreError                    = 50001
)

// apiError is an error the server answers with: an HTTP status plus the
// Confluent error body.
type apiError struct {
	status  int
	code    int
	message string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d: %s", e.code, e.message) }

func errSubjectNotFound(subject string) *apiError {
	return &apiError{http.StatusNotFound, CodeSubjectNotFound, fmt.Sprintf("Subject '%s' not found.", subject)}
}

func errVersionNotFound(version int) *apiError {
	return &apiError{http.StatusNotFound, CodeVersionNotFound, fmt.Sprintf("Version %d not found.", version)}
}

func errSchemaNotFound() *apiError {
	return &apiError{http.StatusNotFound, CodeSchemaNotFound, "Schema not found"}
}

func errSchemaIDNotFound(id int) *apiError {
	return &apiError{http.StatusNotFound, CodeSchemaNotFound, fmt.Sprintf("Schema %d not found", id)}
}

func errSubjectSoftDeleted(subject string) *apiError {
	return &apiError{http.StatusNotFound, CodeSubjectSoftDeleted,
		fmt.Sprintf("Subject '%s' was soft deleted.Set permanent=true to delete permanently", subject)}
}

func errSubjectNotSoftDeleted(subject string) *apiError {
	return &apiError{http.StatusNotFound, CodeSubjectNotSoftDeleted,
		fmt.Sprintf("Subject '%s' was not deleted first before being permanently deleted", subject)}
}

func errVersionSoftDeleted(subject string, version int) *apiError {
	return &apiError{http.StatusNotFound, CodeVersionSoftDeleted,
		fmt.Sprintf("Subject '%s' Version %d was soft deleted.Set permanent=true to delete permanently", subject, version)}
}

func errVersionNotSoftDeleted(subject string, version int) *apiError {
	return &apiError{http.StatusNotFound, CodeVersionNotSoftDeleted,
		fmt.Sprintf("Subject '%s' Version %d was not deleted first before being permanently deleted", subject, version)}
}

func errSubjectCompatibilityNotConfigured(subject string) *apiError {
	return &apiError{http.StatusNotFound, CodeSubjectCompatibilityNotConfig,
		fmt.Sprintf("Subject '%s' does not have subject-level compatibility configured", subject)}
}

func errIncompatible(subject, details string) *apiError {
	return &apiError{http.StatusConflict, CodeIncompatibleSchema,
		fmt.Sprintf("Schema being registered is incompatible with an earlier schema for subject %q, details: [%s]", subject, details)}
}

func errInvalidSchema(detail string) *apiError {
	return &apiError{http.StatusUnprocessableEntity, CodeInvalidSchema, "Invalid schema: " + detail}
}

func errInvalidVersion(raw string) *apiError {
	return &apiError{http.StatusUnprocessableEntity, CodeInvalidVersion,
		fmt.Sprintf(`The specified version '%s' is not a valid version id. Allowed values are between [1, 2^31-1] and the string "latest"`, raw)}
}

func errInvalidLevel() *apiError {
	return &apiError{http.StatusUnprocessableEntity, CodeInvalidCompatibilityLevel,
		"Invalid compatibility level. Valid values are none, backward, forward, full, backward_transitive, forward_transitive, and full_transitive"}
}

func errStore() *apiError {
	return &apiError{http.StatusInternalServerError, CodeStoreError, "Error in the backend data store"}
}

func errBadRequest(detail string) *apiError {
	return &apiError{http.StatusBadRequest, http.StatusBadRequest, detail}
}

// errHTTP is the error of a request no route accepts, worded like the
// Jersey errors Confluent's server returns ("HTTP 404 Not Found").
func errHTTP(status int) *apiError {
	return &apiError{status, status, fmt.Sprintf("HTTP %d %s", status, http.StatusText(status))}
}
