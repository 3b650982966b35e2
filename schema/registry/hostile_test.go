package registry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/slatehq/slate/schema/registry"
)

// apiErr decodes a Confluent error body.
func apiErr(t *testing.T, body []byte) (code int, message string) {
	t.Helper()
	var e struct {
		Code    int    `json:"error_code"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(body, &e); err != nil {
		t.Fatalf("body %q is not a JSON error: %v", body, err)
	}
	return e.Code, e.Message
}

// wantAPIError fails unless the response is the given status and code.
func wantAPIError(t *testing.T, status int, body []byte, wantStatus, wantCode int) string {
	t.Helper()
	code, msg := apiErr(t, body)
	if status != wantStatus || code != wantCode {
		t.Fatalf("got %d/%d %q, want %d/%d", status, code, truncateForLog(msg), wantStatus, wantCode)
	}
	return msg
}

func truncateForLog(s string) string {
	if len(s) > 300 {
		return s[:300] + "..."
	}
	return s
}

// TestSchemaThatPanicsTheParser sends a schema that panics hamba/avro's
// parser to every endpoint that parses one: each answers 422 (42201), the
// connection is not dropped, and the registry keeps serving.
func TestSchemaThatPanicsTheParser(t *testing.T) {
	tr := newTestRegistry(t)
	if _, _, err := tr.client.CreateSchema(context.Background(), "s", schemaA); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{
		"/subjects/s/versions", "/subjects/new/versions", "/subjects/s",
		"/compatibility/subjects/s/versions/latest", "/compatibility/subjects/s/versions",
	} {
		t.Run(path, func(t *testing.T) {
			status, body := tr.do(t, http.MethodPost, path, map[string]string{"schema": emptyUnionWithDefault})
			msg := wantAPIError(t, status, body, http.StatusUnprocessableEntity, registry.CodeInvalidSchema)
			if !strings.Contains(msg, "Invalid schema") {
				t.Fatalf("message %q", msg)
			}
		})
	}
	if vs := mustVersions(t, tr, "s"); len(vs) != 1 {
		t.Fatalf("versions of s = %v after the hostile schema", vs)
	}
}

// TestSchemaLimits checks the size and field-count caps: a schema over
// either is refused with Confluent's 42209 before it is parsed, and the
// message says which limit it broke.
func TestSchemaLimits(t *testing.T) {
	fields := func(n int) string {
		fs := make([]string, n)
		for i := range fs {
			fs[i] = fmt.Sprintf(`{"name":"f%d","type":"int","default":0}`, i)
		}
		return record(fs...)
	}
	t.Run("default size limit is 1 MiB", func(t *testing.T) {
		tr := newTestRegistry(t)
		big := record(`{"name":"a","type":"string","doc":"` + strings.Repeat("x", registry.DefaultMaxSchemaBytes) + `"}`)
		status, body := tr.do(t, http.MethodPost, "/subjects/s/versions", map[string]string{"schema": big})
		msg := wantAPIError(t, status, body, http.StatusUnprocessableEntity, registry.CodeSchemaTooLarge)
		if !strings.Contains(msg, fmt.Sprint(registry.DefaultMaxSchemaBytes)) || len(msg) > 300 {
			t.Fatalf("message %q", truncateForLog(msg))
		}
	})
	t.Run("configured size limit", func(t *testing.T) {
		tr := newTestRegistry(t, registry.WithMaxSchemaBytes(200))
		ok := record(`{"name":"a","type":"int"}`)
		if _, _, err := tr.client.CreateSchema(context.Background(), "s", ok); err != nil {
			t.Fatal(err)
		}
		status, body := tr.do(t, http.MethodPost, "/subjects/s", map[string]string{"schema": fields(10)})
		wantAPIError(t, status, body, http.StatusUnprocessableEntity, registry.CodeSchemaTooLarge)
	})
	t.Run("body far over the limit is not read", func(t *testing.T) {
		tr := newTestRegistry(t, registry.WithMaxSchemaBytes(1000))
		status, body := tr.do(t, http.MethodPost, "/subjects/s/versions", map[string]string{"schema": strings.Repeat(" ", 100_000)})
		wantAPIError(t, status, body, http.StatusUnprocessableEntity, registry.CodeSchemaTooLarge)
		status, body = tr.do(t, http.MethodPut, "/config", map[string]string{"compatibility": strings.Repeat("x", 100_000)})
		wantAPIError(t, status, body, http.StatusRequestEntityTooLarge, http.StatusRequestEntityTooLarge)
	})
	t.Run("default field limit is 10000", func(t *testing.T) {
		tr := newTestRegistry(t)
		over := fields(registry.DefaultMaxFields + 1)
		for _, path := range []string{"/subjects/s/versions", "/subjects/s", "/compatibility/subjects/s/versions/latest"} {
			status, body := tr.do(t, http.MethodPost, path, map[string]string{"schema": over})
			msg := wantAPIError(t, status, body, http.StatusUnprocessableEntity, registry.CodeSchemaTooLarge)
			if want := "10001 record fields, the limit is 10000"; !strings.Contains(msg, want) {
				t.Fatalf("%s: message %q, want it to say %q", path, truncateForLog(msg), want)
			}
		}
		if _, _, err := tr.client.CreateSchema(context.Background(), "s", fields(registry.DefaultMaxFields)); err != nil {
			t.Fatalf("a schema of exactly %d fields: %v", registry.DefaultMaxFields, err)
		}
	})
	t.Run("field count", func(t *testing.T) {
		tr := newTestRegistry(t, registry.WithMaxFields(100))
		if _, _, err := tr.client.CreateSchema(context.Background(), "s", fields(100)); err != nil {
			t.Fatal(err)
		}
		nested := record(`{"name":"n","type":`+strings.Replace(fields(60), `"name":"R"`, `"name":"N"`, 1)+`}`,
			`{"name":"m","type":`+strings.Replace(fields(60), `"name":"R"`, `"name":"M"`, 1)+`}`)
		for name, schema := range map[string]string{"flat": fields(101), "nested": nested} {
			status, body := tr.do(t, http.MethodPost, "/compatibility/subjects/s/versions", map[string]string{"schema": schema})
			msg := wantAPIError(t, status, body, http.StatusUnprocessableEntity, registry.CodeSchemaTooLarge)
			if !strings.Contains(msg, "record fields") {
				t.Fatalf("%s: message %q", name, msg)
			}
		}
	})
}

// TestInvalidSchemaIsNotEchoed checks that an error quotes at most a short
// prefix of a bad schema, however long the schema is.
func TestInvalidSchemaIsNotEchoed(t *testing.T) {
	tr := newTestRegistry(t)
	for name, schema := range map[string]string{
		"unknown type": `{"type":"` + strings.Repeat("y", 100_000) + `"}`,
		"bad json":     `{"type":` + strings.Repeat("z", 100_000),
		"bad name":     record(`{"name":"` + strings.Repeat("1", 100_000) + `","type":"int"}`),
	} {
		t.Run(name, func(t *testing.T) {
			status, body := tr.do(t, http.MethodPost, "/subjects/s/versions", map[string]string{"schema": schema})
			msg := wantAPIError(t, status, body, http.StatusUnprocessableEntity, registry.CodeInvalidSchema)
			if len(body) > 512 {
				t.Fatalf("error body is %d bytes: %q", len(body), truncateForLog(msg))
			}
		})
	}
}

// TestSubjectNames checks that names which could not be served back as
// written (not UTF-8, control characters, overlong, empty) are refused with
// 42208 on every write, and that ordinary and non-ASCII names work.
func TestSubjectNames(t *testing.T) {
	tr := newTestRegistry(t)
	body := map[string]string{"schema": schemaA}
	bad := map[string]string{
		"invalid UTF-8":  "bad%FFsubject",
		"NUL":            "a%00b",
		"CRLF":           "a%0D%0ASet-Cookie:x",
		"tab":            "a%09b",
		"DEL":            "a%7Fb",
		"C1 control":     "a%C2%85b",
		"256 bytes long": strings.Repeat("s", registry.MaxSubjectBytes+1),
	}
	for name, path := range bad {
		t.Run(name, func(t *testing.T) {
			status, b := tr.do(t, http.MethodPost, "/subjects/"+path+"/versions", body)
			msg := wantAPIError(t, status, b, http.StatusUnprocessableEntity, registry.CodeInvalidSubject)
			if strings.ContainsAny(msg, "\x00\r\n") {
				t.Fatalf("message %q echoes the control characters", msg)
			}
			status, b = tr.do(t, http.MethodPut, "/config/"+path, map[string]string{"compatibility": "NONE"})
			wantAPIError(t, status, b, http.StatusUnprocessableEntity, registry.CodeInvalidSubject)
		})
	}
	var subjects []string
	tr.doJSON(t, http.MethodGet, "/subjects?deleted=true", nil, &subjects)
	if len(subjects) != 0 {
		t.Fatalf("subjects %q were registered", subjects)
	}
	for _, good := range []string{strings.Repeat("s", registry.MaxSubjectBytes), "studio.title.changes-value", "préférences-value", "a b"} {
		if _, _, err := tr.client.CreateSchema(context.Background(), good, schemaA); err != nil {
			t.Fatalf("subject %q refused: %v", good, err)
		}
	}
}
