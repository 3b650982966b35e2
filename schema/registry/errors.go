package registry

import (
	"errors"
	"fmt"
	"net/http"
	"unicode/utf8"
)

// ErrInvalidLevel is returned by [ParseLevel] and by [New] for a
// compatibility level that is not one of the [Level] constants.
var ErrInvalidLevel = errors.New("registry: invalid compatibility level")

// ErrInvalidRecord is wrapped by the error logged when a record read from
// the [Store] cannot be applied (an unknown shape, a SCHEMA value without a
// schema or id, an Avro schema that does not parse). Such a record is
// skipped, on replay in [New] and while following, as Confluent's registry
// skips a bad _schemas record; the rest of the log still applies.
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
	CodeInvalidMode                   = 42204
	CodeOperationNotPermitted         = 42205
	CodeInvalidSubject                = 42208
	CodeSchemaTooLarge                = 42209
	CodeUnauthorized                  = 40101
	CodeForbidden                     = 40301
	CodeStoreError                    = 50001
)

// maxEchoBytes bounds how much of a client's input (a schema, a parser
// message quoting it, a subject name) an error message repeats.
const maxEchoBytes = 200

// truncate returns s cut to at most n bytes on a UTF-8 boundary, marked
// with "..." when cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

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

// errInvalidSchema answers a schema that does not parse. The detail (often
// the parser's message, which can quote the schema) is cut short: an error
// never echoes a whole schema back.
func errInvalidSchema(detail string) *apiError {
	return &apiError{http.StatusUnprocessableEntity, CodeInvalidSchema, "Invalid schema: " + truncate(detail, maxEchoBytes)}
}

// errSchemaTooLarge answers a schema over the size or field-count limit,
// with Confluent's code for it (42209, which its server sends when a schema
// does not fit in a _schemas record).
func errSchemaTooLarge(detail string) *apiError {
	return &apiError{http.StatusUnprocessableEntity, CodeSchemaTooLarge, "Schema is too large: " + detail}
}

func errInvalidSubject(subject, why string) *apiError {
	return &apiError{http.StatusUnprocessableEntity, CodeInvalidSubject,
		fmt.Sprintf("The specified subject %q is not a valid subject: %s", truncate(subject, maxEchoBytes), why)}
}

func errBodyTooLarge(limit int64) *apiError {
	return &apiError{http.StatusRequestEntityTooLarge, http.StatusRequestEntityTooLarge,
		fmt.Sprintf("HTTP 413 Request Entity Too Large: the body is larger than %d bytes", limit)}
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
