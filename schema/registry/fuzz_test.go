package registry

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzParseAndCompat parses two schemas as the registry does for a client
// and, when both parse, checks them against each other under every level:
// nothing may panic, and a schema is always compatible with itself.
func FuzzParseAndCompat(f *testing.F) {
	f.Add(`{"type":"record","name":"R","fields":[{"name":"a","type":"int"}]}`,
		`{"type":"record","name":"R","fields":[{"name":"a","type":"long"},{"name":"b","type":"string","default":""}]}`)
	f.Add(`{"type":"record","name":"A","fields":[{"name":"f","type":[],"default":null}]}`, `"int"`)
	f.Add(`{"type":"enum","name":"E","symbols":["A","B"],"default":"A"}`, `{"type":"enum","name":"E","symbols":["A"]}`)
	f.Add(`["null","string",{"type":"fixed","name":"F","size":4}]`, `{"type":"array","items":{"type":"map","values":"bytes"}}`)
	f.Add(`{"type":"record","name":"L","fields":[{"name":"next","type":["null","L"],"default":null}]}`,
		`{"type":"record","name":"L","aliases":["M"],"fields":[{"name":"n","aliases":["next"],"type":["null","L"],"default":null}]}`)
	lim := limits{maxBytes: 1 << 16, maxFields: 1000}
	f.Fuzz(func(t *testing.T, a, b string) {
		pa, errA := parseAvro(a, lim)
		pb, errB := parseAvro(b, lim)
		if errA != nil || errB != nil {
			return
		}
		for _, l := range []Level{Backward, Forward, Full, BackwardTransitive, ForwardTransitive, FullTransitive, None} {
			_ = checkPair(l, pa.parsed, pb.parsed)
			_ = checkPair(l, pb.parsed, pa.parsed)
		}
		if r := checkPair(Full, pa.parsed, pa.parsed); r != "" {
			t.Fatalf("schema incompatible with itself: %s\n%s", r, a)
		}
	})
}

// FuzzHandlers sends requests to an in-memory registry: register, lookup,
// config and compatibility checks with fuzzed subjects and bodies. The
// registry must answer every one (never panic or drop it), with a
// Confluent error body for every error and no 500 (the memory store does
// not fail). A request that names another subject than s, the one
// registered first, must leave s's versions and level as they were.
func FuzzHandlers(f *testing.F) {
	f.Add(uint8(0), "s", []byte(`{"schema":"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}"}`))
	f.Add(uint8(1), "s", []byte(`{"schema":"\"int\""}`))
	f.Add(uint8(2), "s", []byte(`{"compatibility":"FULL"}`))
	f.Add(uint8(3), "s", []byte(`{"schema":"{\"type\":\"record\",\"name\":\"A\",\"fields\":[{\"name\":\"f\",\"type\":[],\"default\":null}]}"}`))
	f.Add(uint8(4), "a%00b", []byte(`{"schema":"\"string\""}`))
	f.Add(uint8(5), "s", []byte(`{"schema":`))
	f.Add(uint8(6), "s", []byte(`{"mode":"READONLY"}`))
	f.Fuzz(func(t *testing.T, op uint8, subject string, body []byte) {
		srv, err := New(context.Background(), WithMaxSchemaBytes(1<<16), WithMaxFields(1000))
		if err != nil {
			t.Fatal(err)
		}
		// A first version, so that checks have something to compare with.
		seed := httptest.NewRequest(http.MethodPost, "/subjects/s/versions", bytes.NewReader([]byte(`{"schema":"{\"type\":\"record\",\"name\":\"R\",\"fields\":[{\"name\":\"a\",\"type\":\"int\"}]}"}`)))
		srv.ServeHTTP(httptest.NewRecorder(), seed)
		routes := []struct{ method, path string }{
			{http.MethodPost, "/subjects/{s}/versions"},
			{http.MethodPost, "/subjects/{s}"},
			{http.MethodPut, "/config/{s}"},
			{http.MethodPost, "/compatibility/subjects/{s}/versions/latest"},
			{http.MethodPost, "/compatibility/subjects/{s}/versions"},
			{http.MethodPut, "/config"},
			{http.MethodPut, "/mode"},
			{http.MethodDelete, "/subjects/{s}"},
			{http.MethodGet, "/subjects/{s}/versions/latest"},
			{http.MethodDelete, "/subjects/{s}/versions/latest"},
			{http.MethodDelete, "/subjects/{s}?permanent=true"},
			{http.MethodDelete, "/config/{s}"},
			{http.MethodGet, "/config/{s}?defaultToGlobal=true"},
			{http.MethodPost, "/subjects/{s}?deleted=true"},
		}
		rt := routes[int(op)%len(routes)]
		path := bytes.ReplaceAll([]byte(rt.path), []byte("{s}"), []byte(subject))
		req, err := http.NewRequest(rt.method, "http://registry"+string(path), bytes.NewReader(body))
		if err != nil {
			return // not a URL any client could send
		}
		req.Header.Set("Content-Type", "application/json")
		for range 2 { // twice: the second sees what the first changed
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, req.Clone(context.Background()))
			req.Body = http.NoBody
			if w.Code >= 500 {
				t.Fatalf("%s %s: %d %s", rt.method, path, w.Code, w.Body.Bytes())
			}
			if w.Code >= 400 {
				var e struct {
					Code    int    `json:"error_code"`
					Message string `json:"message"`
				}
				if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil || e.Code == 0 {
					t.Fatalf("%s %s: %d with body %q", rt.method, path, w.Code, w.Body.Bytes())
				}
			}
			req, _ = http.NewRequest(rt.method, "http://registry"+string(path), bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
		}
		if named, err := url.PathUnescape(subject); err != nil || named == "s" || strings.ContainsAny(subject, "/?#") || !strings.Contains(rt.path, "{s}") {
			return // s itself, or a path that names no single subject
		}
		for _, c := range []struct{ path, want string }{
			{"/subjects/s/versions", `[1]`},
			{"/config/s", `{"error_code":40408,`},
		} {
			w := httptest.NewRecorder()
			srv.ServeHTTP(w, httptest.NewRequest(http.MethodGet, c.path, nil))
			if !strings.HasPrefix(w.Body.String(), c.want) {
				t.Fatalf("after %s %s: GET %s = %d %s, want %s...", rt.method, path, c.path, w.Code, w.Body, c.want)
			}
		}
	})
}
