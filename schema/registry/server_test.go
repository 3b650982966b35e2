package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	avroregistry "github.com/hamba/avro/v2/registry"

	"github.com/slatehq/slate/schema/registry"
)

var (
	schemaA  = record(`{"name":"a","type":"int"}`)
	schemaAB = record(`{"name":"a","type":"int"}`, `{"name":"b","type":"string","default":""}`)
)

func TestRegisterIDsAndVersions(t *testing.T) {
	ctx := context.Background()
	tr := newTestRegistry(t)
	c := tr.client

	id1, _, err := c.CreateSchema(ctx, "orders-value", schemaA)
	if err != nil {
		t.Fatal(err)
	}
	if id1 != 1 {
		t.Errorf("first id = %d, want 1", id1)
	}

	t.Run("idempotent", func(t *testing.T) {
		id, _, err := c.CreateSchema(ctx, "orders-value", schemaA)
		if err != nil || id != id1 {
			t.Fatalf("re-register = %d, %v; want %d", id, err, id1)
		}
		// Whitespace and key order do not make another schema.
		reordered := `{ "namespace": "test", "name": "R", "type": "record",
			"fields": [ {"type": {"type": "int"}, "name": "a"} ] }`
		id, _, err = c.CreateSchema(ctx, "orders-value", reordered)
		if err != nil || id != id1 {
			t.Fatalf("re-register reformatted = %d, %v; want %d", id, err, id1)
		}
		vs, err := c.GetVersions(ctx, "orders-value")
		if err != nil || !slices.Equal(vs, []int{1}) {
			t.Fatalf("versions = %v, %v; want [1]", vs, err)
		}
	})

	t.Run("same schema under another subject shares the id", func(t *testing.T) {
		id, _, err := c.CreateSchema(ctx, "payments-value", schemaA)
		if err != nil || id != id1 {
			t.Fatalf("other subject id = %d, %v; want %d", id, err, id1)
		}
		var got []map[string]any
		tr.doJSON(t, http.MethodGet, fmt.Sprintf("/schemas/ids/%d/versions", id1), nil, &got)
		if len(got) != 2 || got[0]["subject"] != "orders-value" || got[1]["subject"] != "payments-value" {
			t.Fatalf("id versions = %v", got)
		}
		var subs []string
		tr.doJSON(t, http.MethodGet, fmt.Sprintf("/schemas/ids/%d/subjects", id1), nil, &subs)
		if !slices.Equal(subs, []string{"orders-value", "payments-value"}) {
			t.Fatalf("id subjects = %v", subs)
		}
	})

	var id2 int
	t.Run("new version gets a new id", func(t *testing.T) {
		id2, _, err = c.CreateSchema(ctx, "orders-value", schemaAB)
		if err != nil {
			t.Fatal(err)
		}
		if id2 != id1+1 {
			t.Fatalf("second id = %d, want %d", id2, id1+1)
		}
		vs, err := c.GetVersions(ctx, "orders-value")
		if err != nil || !slices.Equal(vs, []int{1, 2}) {
			t.Fatalf("versions = %v, %v; want [1 2]", vs, err)
		}
	})

	t.Run("a schema that differs only in a default is another schema", func(t *testing.T) {
		noDefault := record(`{"name":"a","type":"int"}`, `{"name":"b","type":"string","default":"x"}`)
		id, _, err := c.CreateSchema(ctx, "defaults-value", noDefault)
		if err != nil {
			t.Fatal(err)
		}
		if id == id2 {
			t.Fatalf("schema with another default reused id %d", id)
		}
	})

	t.Run("latest and by version", func(t *testing.T) {
		info, err := c.GetLatestSchemaInfo(ctx, "orders-value")
		if err != nil {
			t.Fatal(err)
		}
		if info.ID != id2 || info.Version != 2 {
			t.Fatalf("latest = id %d version %d, want id %d version 2", info.ID, info.Version, id2)
		}
		info, err = c.GetSchemaInfo(ctx, "orders-value", 1)
		if err != nil || info.ID != id1 || info.Version != 1 {
			t.Fatalf("version 1 = %+v, %v", info, err)
		}
		s, err := c.GetSchemaByVersion(ctx, "orders-value", 2)
		if err != nil {
			t.Fatal(err)
		}
		want, err := c.GetSchema(ctx, id2)
		if err != nil {
			t.Fatal(err)
		}
		if s.Fingerprint() != want.Fingerprint() {
			t.Fatalf("version 2 schema %s differs from id %d schema %s", s, id2, want)
		}
		status, raw := tr.do(t, http.MethodGet, "/subjects/orders-value/versions/latest/schema", nil)
		if status != http.StatusOK || !json.Valid(raw) || !strings.Contains(string(raw), `"name":"b"`) {
			t.Fatalf("raw schema = %d %s", status, raw)
		}
	})

	t.Run("lookup", func(t *testing.T) {
		id, _, err := c.IsRegistered(ctx, "orders-value", schemaA)
		if err != nil || id != id1 {
			t.Fatalf("IsRegistered = %d, %v; want %d", id, err, id1)
		}
		var got map[string]any
		tr.doJSON(t, http.MethodPost, "/subjects/orders-value", map[string]string{"schema": schemaAB}, &got)
		if got["subject"] != "orders-value" || got["version"] != 2.0 || got["id"] != float64(id2) || got["schema"] == "" {
			t.Fatalf("lookup = %v", got)
		}
	})

	t.Run("subjects and types", func(t *testing.T) {
		subs, err := c.GetSubjects(ctx)
		if err != nil || !slices.Equal(subs, []string{"defaults-value", "orders-value", "payments-value"}) {
			t.Fatalf("subjects = %v, %v", subs, err)
		}
		var types []string
		tr.doJSON(t, http.MethodGet, "/schemas/types", nil, &types)
		if !slices.Equal(types, []string{"AVRO"}) {
			t.Fatalf("types = %v", types)
		}
	})
}

func TestDelete(t *testing.T) {
	ctx := context.Background()
	tr := newTestRegistry(t)
	c := tr.client
	id1, _, err := c.CreateSchema(ctx, "s", schemaA)
	if err != nil {
		t.Fatal(err)
	}
	id2, _, err := c.CreateSchema(ctx, "s", schemaAB)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("version", func(t *testing.T) {
		status, body := tr.do(t, http.MethodDelete, "/subjects/s/versions/1?permanent=true", nil)
		if status != http.StatusNotFound || !strings.Contains(string(body), "40407") {
			t.Fatalf("permanent before soft = %d %s", status, body)
		}
		var n int
		tr.doJSON(t, http.MethodDelete, "/subjects/s/versions/1", nil, &n)
		if n != 1 {
			t.Fatalf("deleted version %d, want 1", n)
		}
		status, body = tr.do(t, http.MethodDelete, "/subjects/s/versions/1", nil)
		if status != http.StatusNotFound || !strings.Contains(string(body), "40406") {
			t.Fatalf("second soft delete = %d %s", status, body)
		}
		vs, err := c.GetVersions(ctx, "s")
		if err != nil || !slices.Equal(vs, []int{2}) {
			t.Fatalf("live versions = %v, %v", vs, err)
		}
		var all []int
		tr.doJSON(t, http.MethodGet, "/subjects/s/versions?deleted=true", nil, &all)
		if !slices.Equal(all, []int{1, 2}) {
			t.Fatalf("versions with deleted = %v", all)
		}
		_, err = c.GetSchemaInfo(ctx, "s", 1)
		wantCode(t, err, registry.CodeVersionNotFound)
		tr.doJSON(t, http.MethodGet, "/subjects/s/versions/1?deleted=true", nil, nil)
		// A soft-deleted schema still decodes old data.
		if _, err := c.GetSchema(ctx, id1); err != nil {
			t.Fatalf("id of soft-deleted version: %v", err)
		}
		tr.doJSON(t, http.MethodDelete, "/subjects/s/versions/1?permanent=true", nil, &n)
		// Raw HTTP: the client caches schemas by id.
		if status, body := tr.do(t, http.MethodGet, fmt.Sprintf("/schemas/ids/%d", id1), nil); status != http.StatusNotFound {
			t.Fatalf("id of hard-deleted version: %d %s", status, body)
		}
	})

	t.Run("subject", func(t *testing.T) {
		status, body := tr.do(t, http.MethodDelete, "/subjects/s?permanent=true", nil)
		if status != http.StatusNotFound || !strings.Contains(string(body), "40405") {
			t.Fatalf("permanent before soft = %d %s", status, body)
		}
		deleted, err := c.DeleteSubject(ctx, "s")
		if err != nil || !slices.Equal(deleted, []int{2}) {
			t.Fatalf("DeleteSubject = %v, %v; want [2]", deleted, err)
		}
		_, err = c.GetVersions(ctx, "s")
		wantCode(t, err, registry.CodeSubjectNotFound)
		_, err = c.DeleteSubject(ctx, "s")
		wantCode(t, err, registry.CodeSubjectSoftDeleted)
		subs, err := c.GetSubjects(ctx)
		if err != nil || len(subs) != 0 {
			t.Fatalf("subjects after soft delete = %v, %v", subs, err)
		}
		var withDeleted []string
		tr.doJSON(t, http.MethodGet, "/subjects?deleted=true", nil, &withDeleted)
		if !slices.Equal(withDeleted, []string{"s"}) {
			t.Fatalf("subjects with deleted = %v", withDeleted)
		}
		var hard []int
		tr.doJSON(t, http.MethodDelete, "/subjects/s?permanent=true", nil, &hard)
		if !slices.Equal(hard, []int{2}) {
			t.Fatalf("permanent delete = %v", hard)
		}
		status, _ = tr.do(t, http.MethodGet, "/subjects/s/versions?deleted=true", nil)
		if status != http.StatusNotFound {
			t.Fatalf("hard-deleted subject still listed: %d", status)
		}
		if status, body := tr.do(t, http.MethodGet, fmt.Sprintf("/schemas/ids/%d", id2), nil); status != http.StatusNotFound || !strings.Contains(string(body), "40403") {
			t.Fatalf("id of hard-deleted subject: %d %s", status, body)
		}
	})

	t.Run("ids stay stable after a hard delete", func(t *testing.T) {
		id, _, err := c.CreateSchema(ctx, "s", schemaAB)
		if err != nil || id != id2 {
			t.Fatalf("re-register = %d, %v; want the old id %d", id, err, id2)
		}
		vs, err := c.GetVersions(ctx, "s")
		if err != nil || !slices.Equal(vs, []int{1}) {
			t.Fatalf("versions after re-register = %v, %v", vs, err)
		}
		id, _, err = c.CreateSchema(ctx, "t", record(`{"name":"z","type":"long"}`))
		if err != nil || id != id2+1 {
			t.Fatalf("new schema id = %d, %v; want %d (never reuse a number)", id, err, id2+1)
		}
	})

	t.Run("re-register a soft-deleted schema", func(t *testing.T) {
		if _, err := c.DeleteSubject(ctx, "t"); err != nil {
			t.Fatal(err)
		}
		id, _, err := c.CreateSchema(ctx, "t", record(`{"name":"z","type":"long"}`))
		if err != nil || id != id2+1 {
			t.Fatalf("re-register = %d, %v", id, err)
		}
		vs, err := c.GetVersions(ctx, "t")
		if err != nil || !slices.Equal(vs, []int{2}) {
			t.Fatalf("versions = %v, %v; want [2]", vs, err)
		}
	})
}

func TestConfig(t *testing.T) {
	ctx := context.Background()
	tr := newTestRegistry(t)
	c := tr.client

	lvl, err := c.GetGlobalCompatibilityLevel(ctx)
	if err != nil || lvl != avroregistry.BackwardCL {
		t.Fatalf("default global = %q, %v", lvl, err)
	}
	var raw map[string]string
	tr.doJSON(t, http.MethodGet, "/config", nil, &raw)
	if raw["compatibilityLevel"] != "BACKWARD" {
		t.Fatalf("GET /config = %v", raw)
	}

	if err := c.SetGlobalCompatibilityLevel(ctx, avroregistry.FullCL); err != nil {
		t.Fatal(err)
	}
	if lvl, _ := c.GetGlobalCompatibilityLevel(ctx); lvl != avroregistry.FullCL {
		t.Fatalf("global after set = %q", lvl)
	}

	_, err = c.GetCompatibilityLevel(ctx, "s")
	wantCode(t, err, registry.CodeSubjectCompatibilityNotConfig)
	tr.doJSON(t, http.MethodGet, "/config/s?defaultToGlobal=true", nil, &raw)
	if raw["compatibilityLevel"] != "FULL" {
		t.Fatalf("defaultToGlobal = %v", raw)
	}

	if err := c.SetCompatibilityLevel(ctx, "s", avroregistry.NoneCL); err != nil {
		t.Fatal(err)
	}
	if lvl, err := c.GetCompatibilityLevel(ctx, "s"); err != nil || lvl != avroregistry.NoneCL {
		t.Fatalf("subject level = %q, %v", lvl, err)
	}
	// The subject's level applies: NONE lets an int become a string.
	if _, _, err := c.CreateSchema(ctx, "s", schemaA); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.CreateSchema(ctx, "s", record(`{"name":"a","type":"string"}`)); err != nil {
		t.Fatalf("NONE rejected a change: %v", err)
	}

	// Lower case and the compatibilityLevel name are accepted too.
	tr.doJSON(t, http.MethodPut, "/config/s", map[string]string{"compatibilityLevel": "forward_transitive"}, &raw)
	if raw["compatibility"] != "FORWARD_TRANSITIVE" {
		t.Fatalf("PUT answer = %v", raw)
	}

	tr.doJSON(t, http.MethodDelete, "/config/s", nil, &raw)
	if raw["compatibilityLevel"] != "FORWARD_TRANSITIVE" {
		t.Fatalf("DELETE answer = %v", raw)
	}
	_, err = c.GetCompatibilityLevel(ctx, "s")
	wantCode(t, err, registry.CodeSubjectCompatibilityNotConfig)
	status, body := tr.do(t, http.MethodDelete, "/config/s", nil)
	if status != http.StatusNotFound || !strings.Contains(string(body), "40401") {
		t.Fatalf("DELETE unset subject config = %d %s", status, body)
	}

	tr.doJSON(t, http.MethodDelete, "/config", nil, nil)
	if lvl, _ := c.GetGlobalCompatibilityLevel(ctx); lvl != avroregistry.BackwardCL {
		t.Fatalf("global after DELETE = %q, want BACKWARD", lvl)
	}

	t.Run("soft-deleting a subject drops its level", func(t *testing.T) {
		if err := c.SetCompatibilityLevel(ctx, "s", avroregistry.NoneCL); err != nil {
			t.Fatal(err)
		}
		if _, err := c.DeleteSubject(ctx, "s"); err != nil {
			t.Fatal(err)
		}
		_, err := c.GetCompatibilityLevel(ctx, "s")
		wantCode(t, err, registry.CodeSubjectCompatibilityNotConfig)
	})

	t.Run("WithCompatibility", func(t *testing.T) {
		tr := newTestRegistry(t, registry.WithCompatibility(registry.None))
		if lvl, _ := tr.client.GetGlobalCompatibilityLevel(ctx); lvl != avroregistry.NoneCL {
			t.Fatalf("global = %q, want NONE", lvl)
		}
		if _, err := registry.New(ctx, registry.WithCompatibility("SIDEWAYS")); err == nil {
			t.Fatal("New accepted an invalid level")
		}
	})
}

func TestErrorCodes(t *testing.T) {
	tr := newTestRegistry(t)
	ctx := context.Background()
	if _, _, err := tr.client.CreateSchema(ctx, "s", schemaA); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name         string
		method, path string
		body         any
		status, code int
		message      string
	}{
		{"subject not found", "GET", "/subjects/nope/versions", nil, 404, 40401, "Subject 'nope' not found."},
		{"lookup subject not found", "POST", "/subjects/nope", map[string]string{"schema": schemaA}, 404, 40401, ""},
		{"version not found", "GET", "/subjects/s/versions/7", nil, 404, 40402, "Version 7 not found."},
		{"schema id not found", "GET", "/schemas/ids/99", nil, 404, 40403, "Schema 99 not found"},
		{"lookup schema not found", "POST", "/subjects/s", map[string]string{"schema": schemaAB}, 404, 40403, "Schema not found"},
		{"incompatible", "POST", "/subjects/s/versions", map[string]string{"schema": record(`{"name":"a","type":"string"}`)}, 409, 409,
			`Schema being registered is incompatible with an earlier schema for subject "s"`},
		{"invalid schema", "POST", "/subjects/s/versions", map[string]string{"schema": `{"type":"record","name":"R"}`}, 422, 42201, "Invalid schema"},
		{"invalid json schema", "POST", "/subjects/s/versions", map[string]string{"schema": `int`}, 422, 42201, ""},
		{"empty schema", "POST", "/subjects/s/versions", map[string]string{}, 422, 42201, ""},
		{"unknown named type", "POST", "/subjects/s/versions", map[string]string{"schema": record(`{"name":"x","type":"test.Other"}`)}, 422, 42201, ""},
		{"protobuf", "POST", "/subjects/s/versions", map[string]string{"schema": "syntax = \"proto3\";", "schemaType": "PROTOBUF"}, 422, 42201, ""},
		{"references", "POST", "/subjects/s/versions", map[string]any{"schema": schemaA, "references": []map[string]any{{"name": "x", "subject": "y", "version": 1}}}, 422, 42201, ""},
		{"invalid version", "GET", "/subjects/s/versions/zero", nil, 422, 42202, "The specified version 'zero' is not a valid version id"},
		{"version 0", "GET", "/subjects/s/versions/0", nil, 422, 42202, ""},
		{"invalid level", "PUT", "/config", map[string]string{"compatibility": "SIDEWAYS"}, 422, 42203, "Invalid compatibility level"},
		{"missing level", "PUT", "/config/s", map[string]string{}, 422, 42203, ""},
		{"compat subject not found", "POST", "/compatibility/subjects/nope/versions/1", map[string]string{"schema": schemaA}, 404, 40401, ""},
		{"compat version not found", "POST", "/compatibility/subjects/s/versions/3", map[string]string{"schema": schemaA}, 404, 40402, ""},
		{"no route", "GET", "/nothing/here", nil, 404, 404, "HTTP 404 Not Found"},
		{"wrong method", "PATCH", "/subjects", nil, 405, 405, "HTTP 405 Method Not Allowed"},
		{"malformed body", "POST", "/subjects/s/versions", json.RawMessage(`{"schema":`), 400, 400, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var status int
			var body []byte
			if raw, ok := tt.body.(json.RawMessage); ok {
				req, _ := http.NewRequest(tt.method, tr.url+tt.path, bytes.NewReader(raw))
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				status = resp.StatusCode
				var buf bytes.Buffer
				_, _ = buf.ReadFrom(resp.Body)
				body = buf.Bytes()
			} else {
				status, body = tr.do(t, tt.method, tt.path, tt.body)
			}
			var e struct {
				Code    int    `json:"error_code"`
				Message string `json:"message"`
			}
			if err := json.Unmarshal(body, &e); err != nil {
				t.Fatalf("body %q is not a JSON error: %v", body, err)
			}
			if status != tt.status || e.Code != tt.code {
				t.Fatalf("got %d/%d %q, want %d/%d", status, e.Code, e.Message, tt.status, tt.code)
			}
			if !strings.HasPrefix(e.Message, tt.message) {
				t.Fatalf("message %q, want prefix %q", e.Message, tt.message)
			}
		})
	}

	t.Run("unsupported media type", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, tr.url+"/subjects/s/versions", strings.NewReader(`{"schema":"\"int\""}`))
		req.Header.Set("Content-Type", "text/plain")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnsupportedMediaType {
			t.Fatalf("status %d, want 415", resp.StatusCode)
		}
	})

	t.Run("content type", func(t *testing.T) {
		resp, err := http.Get(tr.url + "/subjects")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); ct != registry.ContentType {
			t.Fatalf("Content-Type %q", ct)
		}
	})

	t.Run("trailing slash", func(t *testing.T) {
		status, body := tr.do(t, http.MethodGet, "/subjects/s/versions/", nil)
		if status != http.StatusOK || string(body) != "[1]" {
			t.Fatalf("got %d %s", status, body)
		}
	})

	// An escaped slash ends another subject's name ("s/"): it is no
	// trailing slash, and s is left alone.
	t.Run("escaped trailing slash", func(t *testing.T) {
		status, body := tr.do(t, http.MethodDelete, "/subjects/s%2F", nil)
		wantAPIError(t, status, body, http.StatusNotFound, registry.CodeSubjectNotFound)
		tr.doJSON(t, http.MethodPut, "/config/s%2F", map[string]string{"compatibility": "NONE"}, nil)
		status, body = tr.do(t, http.MethodGet, "/config/s", nil)
		wantAPIError(t, status, body, http.StatusNotFound, registry.CodeSubjectCompatibilityNotConfig)
		var level struct{ CompatibilityLevel string }
		tr.doJSON(t, http.MethodGet, "/config/s%2F", nil, &level)
		if level.CompatibilityLevel != "NONE" {
			t.Fatalf("level of s/ = %q, want NONE", level.CompatibilityLevel)
		}
		if status, body := tr.do(t, http.MethodGet, "/subjects/s/versions", nil); status != http.StatusOK || string(body) != "[1]" {
			t.Fatalf("versions of s = %d %s after requests for s/", status, body)
		}
	})
}

func TestHealthzAndLogging(t *testing.T) {
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tr := newTestRegistry(t, registry.WithLogger(log))
	status, body := tr.do(t, http.MethodGet, "/healthz", nil)
	if status != http.StatusOK || string(body) != "ok" {
		t.Fatalf("healthz = %d %q", status, body)
	}
	if out := buf.String(); !strings.Contains(out, "registry request") || !strings.Contains(out, "path=/healthz") || !strings.Contains(out, "status=200") {
		t.Fatalf("request not logged: %s", out)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestConcurrentRegister(t *testing.T) {
	ctx := context.Background()
	tr := newTestRegistry(t, registry.WithCompatibility(registry.None))
	const n = 16
	ids := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			subject := fmt.Sprintf("s%d", i%4)
			// Every goroutine registers the shared schema and one of its own.
			id, _, err := tr.client.CreateSchema(ctx, subject, schemaA)
			if err != nil {
				t.Error(err)
				return
			}
			ids[i] = id
			if _, _, err := tr.client.CreateSchema(ctx, subject, record(fmt.Sprintf(`{"name":"f%d","type":"int"}`, i))); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	for i, id := range ids {
		if id != ids[0] {
			t.Fatalf("goroutine %d got id %d, goroutine 0 got %d", i, id, ids[0])
		}
	}
	seen := map[int]bool{}
	for s := range 4 {
		for _, v := range mustVersions(t, tr, fmt.Sprintf("s%d", s)) {
			info, err := tr.client.GetSchemaInfo(ctx, fmt.Sprintf("s%d", s), v)
			if err != nil {
				t.Fatal(err)
			}
			if info.ID != ids[0] && seen[info.ID] {
				t.Fatalf("id %d given to two different schemas", info.ID)
			}
			seen[info.ID] = true
		}
	}
	if len(seen) != n+1 {
		t.Fatalf("%d distinct ids, want %d", len(seen), n+1)
	}
}

func mustVersions(t *testing.T, tr *testRegistry, subject string) []int {
	t.Helper()
	vs, err := tr.client.GetVersions(context.Background(), subject)
	if err != nil {
		t.Fatal(err)
	}
	return vs
}
