// Package estest is an in-process test double of the parts of the
// Elasticsearch HTTP API that the es sink uses. It is not Elasticsearch: it
// keeps documents in memory and follows the documented semantics of the
// calls below closely enough for the sink's tests to mean something when
// no cluster is at hand (set SLATE_ES_URL to run them against a real one).
//
// Supported, with the documented behaviour:
//
//   - GET / (cluster info) and the X-Elastic-Product header the official
//     client checks on every response;
//   - PUT and GET /_index_template/{name};
//   - PUT /{index} (400 resource_already_exists_exception when it exists),
//     HEAD /{index}, and index auto-creation on the first write;
//   - POST /_bulk and /{index}/_bulk: NDJSON with index, create and delete
//     actions. The request is validated first, as Elasticsearch does: an
//     item with a missing id (delete; or any item with a version), an id
//     longer than 512 bytes, an external version that is missing or
//     negative, or a create with an external version refuses the whole
//     request with HTTP 400 action_request_validation_exception and a
//     reason "Validation Failed: 1: ...;2: ...;", and nothing of it is
//     applied. A valid request answers per-item statuses and an "errors"
//     flag; an invalid index name is an item error. version_type=external
//     rejects a version that is not greater than the stored one (or than a
//     delete's tombstone) with 409 version_conflict_engine_exception; a
//     delete of a missing document answers 404 not_found and keeps its
//     version as a tombstone;
//   - GET /{index}/_doc/{id};
//   - GET or POST /{index}/_mget with {"ids": [...]} or {"docs": [{"_id":
//     ...}]}: one entry per id, in order, found or not; on an index that
//     does not exist each entry carries an index_not_found_exception;
//   - GET or POST /{index}/_search with from, size (from+size at most
//     index.max_result_window, 10000), "version": true (hits carry
//     _version), track_total_hits, and a match_all or query_string query.
//     The query string is a subset of Lucene's syntax: clauses split at
//     spaces outside quotes, each optionally + (must) or - (must not),
//     of the form field:term, field:"phrase", field:>=v (>, <, <=) or a
//     bare term (any field); with default_operator OR a clause without a
//     prefix is optional when some clause is required. Text matches
//     Elasticsearch's standard analyzer roughly: lower-cased words, a
//     phrase its words in order. A range compares numbers as numbers and
//     other values as strings (which orders YYYY-MM-DD dates as a date
//     field does). Hits are live documents, in id order (the double does
//     not score); a missing index answers 404 index_not_found_exception;
//   - GET or POST /{index}/_count, where index may be a comma list or a
//     pattern with '*', with an optional {"query":{"term":{field:value}}}
//     on a dotted path of the source;
//   - POST /{index}/_refresh (writes are visible at once, so it only
//     acknowledges);
//   - dynamic mapping: the first value of a field fixes its type (text,
//     long, double, boolean or object, nested fields by their dotted path);
//     a later document whose value cannot be read as that type (a word in
//     a long field, a concrete value where an object was mapped) is refused
//     with 400 mapper_parsing_exception, and the rest of the bulk request
//     is applied. Numbers in text fields and numeric strings in number
//     fields are coerced, as Elasticsearch does. Template mappings are not
//     applied.
//
// [Server.Fail] makes it answer 429 or 503 for a while, per bulk item or for
// the whole request, as a busy cluster does, or 400 for a request refused
// as a whole.
package estest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"path"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/internal/querystr"
)

// Server is the double. It is an http.Handler; serve it with httptest.
// It is safe for concurrent use.
type Server struct {
	mu        sync.Mutex
	indices   map[string]map[string]*doc
	templates map[string]json.RawMessage
	mappings  map[string]map[string]string // index -> dotted field -> type
	fault     Fault
	requests  map[string]int
}

type doc struct {
	version int64
	source  json.RawMessage
	deleted bool
}

// Fault describes a period during which the double refuses writes.
type Fault struct {
	// Status is the HTTP status to answer: 429 (es_rejected_execution_exception),
	// 400 (action_request_validation_exception, a request refused as a
	// whole) or another 5xx (unavailable_shards_exception).
	Status int
	// Until is when the double starts accepting writes again.
	Until time.Time
	// Whole makes the whole _bulk request fail with Status; otherwise each
	// item of an accepted request fails with it.
	Whole bool
}

// New returns an empty double.
func New() *Server {
	return &Server{
		indices:   map[string]map[string]*doc{},
		templates: map[string]json.RawMessage{},
		mappings:  map[string]map[string]string{},
		requests:  map[string]int{},
	}
}

// Fail makes bulk writes fail as f describes until f.Until.
func (s *Server) Fail(f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fault = f
}

// Requests returns how many requests of a kind ("bulk", "bulk_rejected"
// for faults, "bulk_invalid" for requests refused by validation,
// "template", "create_index", "count", "get", "search", "mget") the double
// has served.
func (s *Server) Requests(kind string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests[kind]
}

// Template returns the stored body of an index template.
func (s *Server) Template(name string) (json.RawMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.templates[name]
	return t, ok
}

// Doc returns a live document's source and version.
func (s *Server) Doc(index, id string) (source json.RawMessage, version int64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.indices[index][id]
	if !ok || d.deleted {
		return nil, 0, false
	}
	return d.source, d.version, true
}

// Count returns how many live documents the indices matching pattern hold.
func (s *Server) Count(pattern string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, idx := range s.matchLocked(pattern) {
		for _, d := range s.indices[idx] {
			if !d.deleted {
				n++
			}
		}
	}
	return n
}

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-Elastic-Product", "Elasticsearch")
	w.Header().Set("Content-Type", "application/json")
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if parts[0] == "" {
		parts = nil
	}
	switch {
	case len(parts) == 0:
		writeJSON(w, 200, map[string]any{"name": "estest", "cluster_name": "estest",
			"version": map[string]any{"number": "8.19.0", "build_flavor": "default"}, "tagline": "You Know, for Search"})
	case parts[0] == "_bulk":
		s.bulk(w, r, "")
	case len(parts) == 2 && parts[0] == "_index_template":
		s.template(w, r, parts[1])
	case len(parts) == 1:
		s.index(w, r, parts[0])
	case len(parts) == 2 && parts[1] == "_bulk":
		s.bulk(w, r, parts[0])
	case len(parts) == 2 && parts[1] == "_count":
		s.count(w, r, parts[0])
	case len(parts) == 2 && parts[1] == "_search" && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		s.search(w, r, parts[0])
	case len(parts) == 2 && parts[1] == "_mget" && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		s.mget(w, r, parts[0])
	case len(parts) == 2 && parts[1] == "_refresh":
		writeJSON(w, 200, map[string]any{"_shards": map[string]int{"total": 1, "successful": 1, "failed": 0}})
	case len(parts) == 3 && parts[1] == "_doc" && r.Method == http.MethodGet:
		s.get(w, parts[0], parts[2])
	default:
		writeError(w, 400, "illegal_argument_exception", fmt.Sprintf("estest: %s %s is not supported", r.Method, r.URL.Path))
	}
}

func (s *Server) template(w http.ResponseWriter, r *http.Request, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch r.Method {
	case http.MethodPut, http.MethodPost:
		var body json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeError(w, 400, "parse_exception", err.Error())
			return
		}
		s.requests["template"]++
		s.templates[name] = body
		writeJSON(w, 200, map[string]any{"acknowledged": true})
	case http.MethodGet:
		t, ok := s.templates[name]
		if !ok {
			writeError(w, 404, "resource_not_found_exception", "index template matching ["+name+"] not found")
			return
		}
		writeJSON(w, 200, map[string]any{"index_templates": []any{map[string]any{"name": name, "index_template": t}}})
	default:
		writeError(w, 405, "illegal_argument_exception", r.Method+" not allowed")
	}
}

func (s *Server) index(w http.ResponseWriter, r *http.Request, name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, exists := s.indices[name]
	switch r.Method {
	case http.MethodHead:
		if exists {
			w.WriteHeader(200)
		} else {
			w.WriteHeader(404)
		}
	case http.MethodPut:
		if msg := invalidIndex(name); msg != "" {
			writeError(w, 400, "invalid_index_name_exception", msg)
			return
		}
		if exists {
			writeError(w, 400, "resource_already_exists_exception", "index ["+name+"] already exists")
			return
		}
		s.requests["create_index"]++
		s.indices[name] = map[string]*doc{}
		writeJSON(w, 200, map[string]any{"acknowledged": true, "shards_acknowledged": true, "index": name})
	default:
		writeError(w, 405, "illegal_argument_exception", r.Method+" not allowed")
	}
}

func (s *Server) get(w http.ResponseWriter, index, id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests["get"]++
	docs, ok := s.indices[index]
	if !ok {
		writeError(w, 404, "index_not_found_exception", "no such index ["+index+"]")
		return
	}
	d, ok := docs[id]
	if !ok || d.deleted {
		writeJSON(w, 404, map[string]any{"_index": index, "_id": id, "found": false})
		return
	}
	writeJSON(w, 200, map[string]any{"_index": index, "_id": id, "_version": d.version, "found": true, "_source": d.source})
}

func (s *Server) count(w http.ResponseWriter, r *http.Request, pattern string) {
	var q struct {
		Query struct {
			Term map[string]json.RawMessage `json:"term"`
		} `json:"query"`
	}
	if r.Body != nil {
		b := new(bytes.Buffer)
		_, _ = b.ReadFrom(r.Body)
		if b.Len() > 0 {
			if err := json.Unmarshal(b.Bytes(), &q); err != nil {
				writeError(w, 400, "parse_exception", err.Error())
				return
			}
		}
	}
	var field string
	var want any
	for f, raw := range q.Query.Term {
		field = f
		var obj struct {
			Value any `json:"value"`
		}
		if json.Unmarshal(raw, &obj) == nil && obj.Value != nil {
			want = obj.Value
		} else if err := json.Unmarshal(raw, &want); err != nil {
			writeError(w, 400, "parse_exception", err.Error())
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests["count"]++
	n := 0
	for _, idx := range s.matchLocked(pattern) {
		for _, d := range s.indices[idx] {
			if d.deleted {
				continue
			}
			if field != "" && !termMatches(d.source, field, want) {
				continue
			}
			n++
		}
	}
	writeJSON(w, 200, map[string]any{"count": n, "_shards": map[string]int{"total": 1, "successful": 1, "failed": 0}})
}

func termMatches(source json.RawMessage, field string, want any) bool {
	var v any
	if json.Unmarshal(source, &v) != nil {
		return false
	}
	for _, p := range strings.Split(field, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return false
		}
		v = m[p]
	}
	return fmt.Sprint(v) == fmt.Sprint(want)
}

func (s *Server) matchLocked(pattern string) []string {
	var out []string
	for _, p := range strings.Split(pattern, ",") {
		if p == "_all" {
			p = "*"
		}
		for name := range s.indices {
			if ok, _ := path.Match(p, name); ok {
				out = append(out, name)
			}
		}
	}
	return out
}

type action struct {
	Index       string `json:"_index"`
	ID          string `json:"_id"`
	Version     *int64 `json:"version"`
	VersionType string `json:"version_type"`
}

func (s *Server) bulk(w http.ResponseWriter, r *http.Request, defIndex string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests["bulk"]++
	f := s.fault
	active := f.Status != 0 && time.Now().Before(f.Until)
	if active && f.Whole {
		s.requests["bulk_rejected"]++
		writeError(w, f.Status, faultType(f.Status), "estest: refusing requests for now")
		return
	}
	sc := bufio.NewScanner(r.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 100<<20)
	type request struct {
		op     string
		a      action
		source json.RawMessage
	}
	var reqs []request
	for sc.Scan() {
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 {
			continue
		}
		var meta map[string]action
		if err := json.Unmarshal(line, &meta); err != nil || len(meta) != 1 {
			writeError(w, 400, "illegal_argument_exception", "malformed action/metadata line")
			return
		}
		var rq request
		for rq.op, rq.a = range meta {
		}
		if rq.a.Index == "" {
			rq.a.Index = defIndex
		}
		if rq.op != "delete" {
			if !sc.Scan() {
				writeError(w, 400, "illegal_argument_exception", "the bulk request must be terminated by a newline")
				return
			}
			rq.source = json.RawMessage(bytes.Clone(sc.Bytes()))
		}
		reqs = append(reqs, rq)
	}
	if err := sc.Err(); err != nil {
		writeError(w, 400, "parse_exception", err.Error())
		return
	}
	// As Elasticsearch validates a bulk request before it runs any of it:
	// one invalid item refuses the whole request.
	var invalid []string
	for _, rq := range reqs {
		invalid = append(invalid, validate(rq.op, rq.a)...)
	}
	if len(reqs) == 0 {
		invalid = append(invalid, "no requests added")
	}
	if len(invalid) > 0 {
		s.requests["bulk_invalid"]++
		var b strings.Builder
		b.WriteString("Validation Failed: ")
		for i, msg := range invalid {
			fmt.Fprintf(&b, "%d: %s;", i+1, msg)
		}
		writeError(w, 400, "action_request_validation_exception", b.String())
		return
	}
	var items []map[string]any
	hasErrors := false
	for _, rq := range reqs {
		var res map[string]any
		if active {
			res = itemError(rq.a, f.Status, faultType(f.Status), "estest: rejected for now")
		} else {
			res = s.applyLocked(rq.op, rq.a, rq.source)
		}
		if res["status"].(int) > 201 && !(rq.op == "delete" && res["status"].(int) == 404 && res["error"] == nil) {
			hasErrors = true
		}
		items = append(items, map[string]any{rq.op: res})
	}
	if active {
		s.requests["bulk_rejected"]++
	}
	writeJSON(w, 200, map[string]any{"took": 1, "errors": hasErrors, "items": items})
}

// maxIDBytes is Elasticsearch's bound on a document id, in UTF-8 bytes.
const maxIDBytes = 512

// matchAny is the version Elasticsearch assumes when a request sets none.
const matchAny = -3

// validate returns the messages of Elasticsearch's request validation for
// one bulk item (the checks that refuse the whole request), or none.
func validate(op string, a action) []string {
	var msgs []string
	external := a.VersionType == "external" || a.VersionType == "external_gt"
	version := int64(matchAny)
	if a.Version != nil {
		version = *a.Version
	}
	switch {
	case a.ID == "" && op == "delete":
		msgs = append(msgs, "id is missing")
	case a.ID == "" && (external || a.Version != nil):
		msgs = append(msgs, "an id must be provided if version type or value are set")
	case len(a.ID) > maxIDBytes:
		msgs = append(msgs, fmt.Sprintf("id [%s] is too long, must be no longer than %d bytes but was: %d", a.ID, maxIDBytes, len(a.ID)))
	}
	if external && version < 0 {
		msgs = append(msgs, fmt.Sprintf("illegal version value [%d] for version type [%s]", version, strings.ToUpper(a.VersionType)))
	}
	if op == "create" && external {
		msgs = append(msgs, "create operations only support internal versioning. use index instead")
	}
	return msgs
}

func (s *Server) applyLocked(op string, a action, source json.RawMessage) map[string]any {
	if a.Index == "" {
		return itemError(a, 400, "action_request_validation_exception", "index is missing")
	}
	if msg := invalidIndex(a.Index); msg != "" {
		return itemError(a, 400, "invalid_index_name_exception", msg)
	}
	if a.ID == "" && op != "index" {
		return itemError(a, 400, "action_request_validation_exception", "id is missing")
	}
	external := a.VersionType == "external" || a.VersionType == "external_gt"
	if a.VersionType != "" && !external {
		return itemError(a, 400, "illegal_argument_exception", "version_type ["+a.VersionType+"] is not supported by estest")
	}
	docs, ok := s.indices[a.Index]
	if !ok {
		docs = map[string]*doc{}
		s.indices[a.Index] = docs
	}
	cur := docs[a.ID]
	if external && cur != nil && *a.Version <= cur.version {
		return itemError(a, 409, "version_conflict_engine_exception",
			fmt.Sprintf("[%s]: version conflict, current version [%d] is higher or equal to the one provided [%d]", a.ID, cur.version, *a.Version))
	}
	switch op {
	case "index", "create":
		if op == "create" && cur != nil && !cur.deleted {
			return itemError(a, 409, "version_conflict_engine_exception", "["+a.ID+"]: version conflict, document already exists")
		}
		var fields map[string]any
		if err := json.Unmarshal(source, &fields); err != nil {
			return itemError(a, 400, "mapper_parsing_exception", "failed to parse: source is not a JSON object")
		}
		if reason := s.mapLocked(a.Index, a.ID, "", fields); reason != "" {
			return itemError(a, 400, "mapper_parsing_exception", reason)
		}
		v := int64(1)
		if external {
			v = *a.Version
		} else if cur != nil {
			v = cur.version + 1
		}
		result, status := "created", 201
		if cur != nil && !cur.deleted {
			result, status = "updated", 200
		}
		docs[a.ID] = &doc{version: v, source: source}
		return map[string]any{"_index": a.Index, "_id": a.ID, "_version": v, "result": result, "status": status}
	case "delete":
		v := int64(1)
		if external {
			v = *a.Version
		} else if cur != nil {
			v = cur.version + 1
		}
		docs[a.ID] = &doc{version: v, deleted: true}
		if cur == nil || cur.deleted {
			return map[string]any{"_index": a.Index, "_id": a.ID, "_version": v, "result": "not_found", "status": 404}
		}
		return map[string]any{"_index": a.Index, "_id": a.ID, "_version": v, "result": "deleted", "status": 200}
	}
	return itemError(a, 400, "illegal_argument_exception", "action ["+op+"] is not supported by estest")
}

func itemError(a action, status int, typ, reason string) map[string]any {
	return map[string]any{"_index": a.Index, "_id": a.ID, "status": status,
		"error": map[string]any{"type": typ, "reason": reason, "index": a.Index}}
}

func faultType(status int) string {
	switch status {
	case http.StatusTooManyRequests:
		return "es_rejected_execution_exception"
	case http.StatusBadRequest:
		return "action_request_validation_exception"
	}
	return "unavailable_shards_exception"
}

func invalidIndex(name string) string {
	if name == "" || name != strings.ToLower(name) || strings.HasPrefix(name, "_") || strings.HasPrefix(name, "-") ||
		strings.ContainsAny(name, `\/*?"<>| ,#:`) {
		return "Invalid index name [" + name + "]"
	}
	return ""
}

func writeError(w http.ResponseWriter, status int, typ, reason string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"type": typ, "reason": reason,
		"root_cause": []any{map[string]any{"type": typ, "reason": reason}}}, "status": status})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = 500, []byte(`{"error":{"type":"estest","reason":`+strconv.Quote(err.Error())+`},"status":500}`)
	}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// mapLocked checks the fields of a document against the index's dynamic
// mapping, adding the fields it has not seen. It returns the reason
// Elasticsearch gives for the first value that does not fit, or "". Only
// a document that fits leaves new fields in the mapping.
func (s *Server) mapLocked(index, id, prefix string, fields map[string]any) string {
	m := s.mappings[index]
	if m == nil {
		m = map[string]string{}
		s.mappings[index] = m
	}
	added := map[string]string{}
	var walk func(prefix string, fields map[string]any) string
	walk = func(prefix string, fields map[string]any) string {
		for k, v := range fields {
			field := prefix + k
			want, ok := m[field]
			if !ok {
				want, ok = added[field]
			}
			if !ok {
				if t := jsonType(v); t != "" {
					added[field] = t
					want = t
				}
			}
			if reason := fits(field, want, v, id); reason != "" {
				return reason
			}
			if obj, isObj := v.(map[string]any); isObj {
				if reason := walk(field+".", obj); reason != "" {
					return reason
				}
			}
		}
		return ""
	}
	if reason := walk(prefix, fields); reason != "" {
		return reason
	}
	for f, t := range added {
		m[f] = t
	}
	return ""
}

// jsonType is the type dynamic mapping gives a field's first value; "" for
// null, which maps nothing.
func jsonType(v any) string {
	switch x := v.(type) {
	case string:
		return "text"
	case float64:
		if x == float64(int64(x)) {
			return "long"
		}
		return "double"
	case bool:
		return "boolean"
	case map[string]any:
		return "object"
	case []any:
		for _, e := range x {
			if t := jsonType(e); t != "" {
				return t
			}
		}
	}
	return ""
}

// fits reports, as Elasticsearch's reason, why v cannot be indexed in a
// field of type want, or "" when it can.
func fits(field, want string, v any, id string) string {
	if v == nil || want == "" {
		return ""
	}
	if arr, ok := v.([]any); ok {
		for _, e := range arr {
			if reason := fits(field, want, e, id); reason != "" {
				return reason
			}
		}
		return ""
	}
	_, isObj := v.(map[string]any)
	switch {
	case want == "object" && !isObj:
		return fmt.Sprintf("object mapping for [%s] tried to parse field [%s] as object, but found a concrete value", field, field)
	case want != "object" && isObj:
		return fmt.Sprintf("failed to parse field [%s] of type [%s] in document with id '%s'. Preview of field's value: '{...}'", field, want, id)
	}
	ok := true
	switch want {
	case "long", "double":
		switch x := v.(type) {
		case string:
			_, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
			ok = err == nil
		case bool:
			ok = false
		}
	case "boolean":
		switch x := v.(type) {
		case string:
			ok = x == "true" || x == "false" || x == ""
		case float64:
			ok = false
		}
	}
	if !ok {
		return fmt.Sprintf("failed to parse field [%s] of type [%s] in document with id '%s'. Preview of field's value: '%v'", field, want, id, v)
	}
	return ""
}

func (s *Server) mget(w http.ResponseWriter, r *http.Request, index string) {
	var body struct {
		IDs  []string `json:"ids"`
		Docs []struct {
			ID string `json:"_id"`
		} `json:"docs"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, 400, "parse_exception", "request body is required: "+err.Error())
		return
	}
	ids := body.IDs
	for _, d := range body.Docs {
		ids = append(ids, d.ID)
	}
	if len(ids) == 0 {
		writeError(w, 400, "action_request_validation_exception", "Validation Failed: 1: no documents to get;")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests["mget"]++
	docs, exists := s.indices[index]
	out := make([]any, 0, len(ids))
	for _, id := range ids {
		switch d, ok := docs[id]; {
		case !exists:
			out = append(out, map[string]any{"_index": index, "_id": id, "error": map[string]any{
				"type": "index_not_found_exception", "reason": "no such index [" + index + "]", "index": index}})
		case !ok || d.deleted:
			out = append(out, map[string]any{"_index": index, "_id": id, "found": false})
		default:
			out = append(out, map[string]any{"_index": index, "_id": id, "_version": d.version, "found": true, "_source": d.source})
		}
	}
	writeJSON(w, 200, map[string]any{"docs": out})
}

// maxResultWindow is Elasticsearch's default index.max_result_window.
const maxResultWindow = 10000

func (s *Server) search(w http.ResponseWriter, r *http.Request, index string) {
	var body struct {
		From    *int `json:"from"`
		Size    *int `json:"size"`
		Version bool `json:"version"`
		Query   struct {
			MatchAll    *struct{} `json:"match_all"`
			QueryString *struct {
				Query           string `json:"query"`
				DefaultOperator string `json:"default_operator"`
			} `json:"query_string"`
		} `json:"query"`
		TrackTotalHits any `json:"track_total_hits"`
	}
	if r.Body != nil {
		b := new(bytes.Buffer)
		_, _ = b.ReadFrom(r.Body)
		if b.Len() > 0 {
			if err := json.Unmarshal(b.Bytes(), &body); err != nil {
				writeError(w, 400, "parse_exception", err.Error())
				return
			}
		}
	}
	from, size := 0, 10
	if body.From != nil {
		from = *body.From
	}
	if body.Size != nil {
		size = *body.Size
	}
	if from < 0 || size < 0 {
		writeError(w, 400, "illegal_argument_exception", "[from] and [size] must not be negative")
		return
	}
	if from+size > maxResultWindow {
		writeError(w, 400, "illegal_argument_exception", fmt.Sprintf("Result window is too large, from + size must be less than or equal to: [%d] but was [%d]. "+
			"See the scroll api for a more efficient way to request large data sets. This limit can be set by changing the [index.max_result_window] index level setting.",
			maxResultWindow, from+size))
		return
	}
	var clauses []clause
	if qs := body.Query.QueryString; qs != nil {
		op := strings.ToUpper(qs.DefaultOperator)
		if op != "" && op != "OR" && op != "AND" {
			writeError(w, 400, "illegal_argument_exception", "default_operator ["+qs.DefaultOperator+"] is not OR or AND")
			return
		}
		var err error
		if clauses, err = parseQueryString(qs.Query, op == "AND"); err != nil {
			writeError(w, 400, "query_shard_exception", "Failed to parse query ["+qs.Query+"]: "+err.Error())
			return
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.requests["search"]++
	docs, ok := s.indices[index]
	if !ok {
		writeError(w, 404, "index_not_found_exception", "no such index ["+index+"]")
		return
	}
	ids := make([]string, 0, len(docs))
	for id, d := range docs {
		if !d.deleted && matches(d.source, clauses) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	total := len(ids)
	hits := []any{}
	for i := from; i < len(ids) && i < from+size; i++ {
		d := docs[ids[i]]
		h := map[string]any{"_index": index, "_id": ids[i], "_score": 1.0, "_source": d.source}
		if body.Version {
			h["_version"] = d.version
		}
		hits = append(hits, h)
	}
	relation := "eq"
	if track, isBool := body.TrackTotalHits.(bool); !(isBool && track) && total > maxResultWindow {
		total, relation = maxResultWindow, "gte"
	}
	writeJSON(w, 200, map[string]any{"took": 1, "timed_out": false,
		"_shards": map[string]int{"total": 1, "successful": 1, "failed": 0},
		"hits":    map[string]any{"total": map[string]any{"value": total, "relation": relation}, "max_score": 1.0, "hits": hits}})
}

// clause is one clause of a query string.
type clause struct {
	occur  byte   // '+' must, '-' must not, 0 should
	field  string // "" for any field
	op     string // "", ">", ">=", "<", "<="
	value  string
	phrase bool
}

// parseQueryString parses the subset of Lucene's query string syntax the
// double supports; with and, a clause without a prefix is required.
func parseQueryString(q string, and bool) ([]clause, error) {
	var out []clause
	for _, tok := range querystr.Split(q) {
		var c clause
		if tok[0] == '+' || tok[0] == '-' {
			c.occur, tok = tok[0], tok[1:]
		} else if and {
			c.occur = '+'
		}
		if i := fieldColon(tok); i >= 0 {
			c.field, tok = tok[:i], tok[i+1:]
		}
		for _, op := range []string{">=", "<=", ">", "<"} {
			if strings.HasPrefix(tok, op) {
				c.op, tok = op, tok[len(op):]
				break
			}
		}
		if strings.HasPrefix(tok, `"`) {
			if len(tok) < 2 || !strings.HasSuffix(tok, `"`) {
				return nil, fmt.Errorf("unterminated phrase %s", tok)
			}
			tok, c.phrase = tok[1:len(tok)-1], true
		}
		c.value = unescape(tok)
		if c.value == "" {
			return nil, fmt.Errorf("empty clause")
		}
		if c.value == "*" && c.field == "" {
			continue
		}
		out = append(out, c)
	}
	return out, nil
}

// fieldColon is the index of the colon after a field name, or -1.
func fieldColon(tok string) int {
	for i, r := range tok {
		switch {
		case r == ':':
			if i == 0 {
				return -1
			}
			return i
		case r == '"' || r == '\\':
			return -1
		}
	}
	return -1
}

func unescape(s string) string {
	var b strings.Builder
	escaped := false
	for _, r := range s {
		if !escaped && r == '\\' {
			escaped = true
			continue
		}
		escaped = false
		b.WriteRune(r)
	}
	return b.String()
}

// matches reports whether a document's source satisfies the clauses.
func matches(source json.RawMessage, clauses []clause) bool {
	if len(clauses) == 0 {
		return true
	}
	var doc map[string]any
	if sink.DecodeJSON(source, &doc) != nil {
		return false
	}
	must, should, anyShould := false, false, false
	for _, c := range clauses {
		hit := clauseMatches(doc, c)
		switch c.occur {
		case '+':
			if !hit {
				return false
			}
			must = true
		case '-':
			if hit {
				return false
			}
		default:
			anyShould = true
			should = should || hit
		}
	}
	return must || should || !anyShould
}

func clauseMatches(doc map[string]any, c clause) bool {
	var values []any
	keyword := strings.HasSuffix(c.field, ".keyword")
	switch {
	case c.field == "":
		values = leaves(doc)
	case keyword:
		// The keyword subfield of a string, as the sink's template maps
		// strings: the value as written, compared whole.
		for _, v := range fieldValues(doc, strings.Split(strings.TrimSuffix(c.field, ".keyword"), ".")) {
			if str, ok := v.(string); ok {
				values = append(values, str)
			}
		}
	default:
		values = fieldValues(doc, strings.Split(c.field, "."))
	}
	for _, v := range values {
		if keyword {
			if c.op != "" && keywordInRange(v.(string), c.op, c.value) || c.op == "" && v == c.value {
				return true
			}
			continue
		}
		if c.op != "" {
			if inRange(v, c.op, c.value) {
				return true
			}
			continue
		}
		words := analyze(fmt.Sprint(v))
		want := analyze(c.value)
		if len(want) == 0 {
			continue
		}
		if c.phrase || len(want) > 1 {
			for i := 0; i+len(want) <= len(words); i++ {
				if slices.Equal(words[i:i+len(want)], want) {
					return true
				}
			}
		} else if slices.Contains(words, want[0]) {
			return true
		}
	}
	return false
}

// fieldValues are the values at a dotted path of a document, through
// arrays of objects as Elasticsearch flattens them.
func fieldValues(v any, path []string) []any {
	switch x := v.(type) {
	case []any:
		var out []any
		for _, e := range x {
			out = append(out, fieldValues(e, path)...)
		}
		return out
	case map[string]any:
		if len(path) == 0 {
			return nil
		}
		return fieldValues(x[path[0]], path[1:])
	case nil:
		return nil
	}
	if len(path) > 0 {
		return nil
	}
	return []any{v}
}

// leaves are the concrete values of a document.
func leaves(v any) []any {
	switch x := v.(type) {
	case []any:
		var out []any
		for _, e := range x {
			out = append(out, leaves(e)...)
		}
		return out
	case map[string]any:
		var out []any
		for _, e := range x {
			out = append(out, leaves(e)...)
		}
		return out
	case nil:
		return nil
	}
	return []any{v}
}

// analyze is the lower-cased words of a text.
func analyze(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// inRange compares v with bound: as numbers when both are, as strings
// otherwise; an empty string is no value.
func inRange(v any, op, bound string) bool {
	got := fmt.Sprint(v)
	if got == "" {
		return false
	}
	var cmp int
	a, errA := strconv.ParseFloat(got, 64)
	b, errB := strconv.ParseFloat(bound, 64)
	if errA == nil && errB == nil {
		cmp = compare(a, b)
	} else {
		cmp = strings.Compare(got, bound)
	}
	return holds(cmp, op)
}

// keywordInRange compares a keyword as Elasticsearch does: as a string,
// "" first.
func keywordInRange(v, op, bound string) bool { return holds(strings.Compare(v, bound), op) }

// holds reports whether a comparison's result cmp satisfies op.
func holds(cmp int, op string) bool {
	switch op {
	case ">":
		return cmp > 0
	case ">=":
		return cmp >= 0
	case "<":
		return cmp < 0
	}
	return cmp <= 0
}

func compare(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
