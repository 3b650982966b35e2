package graphql_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slatehq/slate/consumer/sink/bleve"
	"github.com/slatehq/slate/graphql"
)

// response is a GraphQL response.
type response struct {
	Data   map[string]any `json:"data"`
	Errors []struct {
		Message string `json:"message"`
	} `json:"errors"`
}

// post sends body to /query and decodes the answer.
func post(t *testing.T, url, body string) (int, response) {
	t.Helper()
	res, err := http.Post(url+"/query", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	var r response
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("answer %s: %v", b, err)
	}
	return res.StatusCode, r
}

// query posts a query with variables.
func query(t *testing.T, url, q string, vars map[string]any) response {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"query": q, "variables": vars})
	_, r := post(t, url, string(b))
	return r
}

func newServer(t *testing.T, cfg graphql.Config) (*httptest.Server, *prometheus.Registry) {
	t.Helper()
	sk, err := bleve.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sk.Close(t.Context()) })
	reg := prometheus.NewRegistry()
	cfg.Titles, cfg.CashFlows, cfg.Registerer = graphql.Bleve(sk), graphql.Bleve(sk), reg
	srv, err := graphql.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return hs, reg
}

// Each operation over a limit, or that is not GraphQL, gets an error that
// says what was wrong, and the server goes on answering.
func TestLimits(t *testing.T) {
	hs, reg := newServer(t, graphql.Config{MaxDepth: 5, MaxComplexity: 200, MaxPageSize: 20, MinVersionWait: 200 * time.Millisecond})
	deep := `{ titles { edges { node { schedule { releases { date } } } } } }` // depth 6
	for _, tc := range []struct {
		name, body string
		status     int
		want       string
	}{
		{"too deep", `{"query":"` + deep + `"}`, http.StatusOK, "exceeds the limit of 5 (MaxDepth)"},
		{"too complex", `{"query":"{ titles(first: 20) { edges { cursor node { id name kind status version budget { version } } } } }"}`,
			http.StatusOK, "operation has complexity 201, which exceeds the limit of 200"},
		{"page too large", `{"query":"{ titles(first: 21) { edges { cursor } } }"}`, http.StatusOK, "first 21 exceeds the page size limit of 20 (MaxPageSize)"},
		{"unknown field", `{"query":"{ title(id: \"t-1\") { nope } }"}`, http.StatusUnprocessableEntity, `Cannot query field "nope" on type "Title"`},
		{"malformed JSON", `{"query": "{ title(id: \"t-1\") { id }"`, http.StatusBadRequest, "json request body could not be decoded"},
		{"body too large", `{"query":"{ title(id: \"` + strings.Repeat("x", graphql.MaxRequestBytes) + `\") { id } }"}`,
			http.StatusOK, "request body too large"},
		{"page far too large", `{"query":"{ titles(first: 5000) { edges { cursor node { id name } } } }"}`,
			http.StatusOK, "first 5000 exceeds the page size limit of 20 (MaxPageSize)"},
		{"not a month", `{"query":"{ cashFlow(titleId: \"t-1\", from: \"2027-13\") { total } }"}`, http.StatusOK, `from "2027-13" is not a month (YYYY-MM)`},
		{"bad cursor", `{"query":"{ titles(after: \"x\") { edges { cursor } } }"}`, http.StatusOK, `after "x" is not a cursor of titles`},
		{"version never reached", `{"query":"{ title(id: \"t-1\", minVersion: \"7\") { id } }"}`, http.StatusOK,
			"minVersion 7: the title view of t-1 is at version 0 after waiting 200ms (MinVersionWait)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, r := post(t, hs.URL, tc.body)
			if status != tc.status {
				t.Errorf("status %d, want %d", status, tc.status)
			}
			if len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Message, tc.want) {
				t.Fatalf("errors %+v, want one with %q", r.Errors, tc.want)
			}
			// Still serving.
			if r := query(t, hs.URL, `{ title(id: "t-1") { id } }`, nil); len(r.Errors) > 0 || r.Data["title"] != nil {
				t.Fatalf("after %s: %+v", tc.name, r)
			}
		})
	}

	// The errors are counted per operation; those that do not parse or
	// validate (the unknown field, the malformed JSON) as invalid.
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	errs := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "slate_graphql_operation_errors_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			errs[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	if errs["titles"] != 5 || errs["title"] != 1 || errs["cashFlow"] != 1 || errs["invalid"] != 3 {
		t.Errorf("errors by operation: %v", errs)
	}
}

// GraphiQL, /metrics and /healthz are served beside /query.
func TestPages(t *testing.T) {
	hs, _ := newServer(t, graphql.Config{})
	query(t, hs.URL, `{ titles { edges { cursor } } }`, nil)
	for _, tc := range []struct{ path, want string }{
		{"/", "graphiql"},
		{"/metrics", `slate_graphql_operation_duration_seconds_count{operation="titles"} 1`},
		{"/healthz", "ok"},
	} {
		res, err := http.Get(hs.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !bytes.Contains(b, []byte(tc.want)) {
			t.Errorf("GET %s: %d, want %q in %.300s", tc.path, res.StatusCode, tc.want, b)
		}
	}
}

// An empty view answers an empty connection.
func TestEmptyTitles(t *testing.T) {
	hs, _ := newServer(t, graphql.Config{})
	r := query(t, hs.URL, `query($s: String) { titles(search: $s, status: "PRODUCTION", first: 5) { edges { cursor } pageInfo { hasNextPage endCursor } } }`,
		map[string]any{"s": `name:"the heat"`})
	if len(r.Errors) > 0 {
		t.Fatal(r.Errors)
	}
	conn := r.Data["titles"].(map[string]any)
	if len(conn["edges"].([]any)) != 0 || conn["pageInfo"].(map[string]any)["hasNextPage"] != false {
		t.Errorf("titles of an empty view: %v", conn)
	}
}

// GraphiQL's schema introspection, deeper than MaxDepth in its nested
// type references, is let through with the default limits.
func TestIntrospectionWithinLimits(t *testing.T) {
	hs, _ := newServer(t, graphql.Config{})
	typeRef := "kind name"
	for range 8 {
		typeRef = "kind name ofType { " + typeRef + " }"
	}
	q := "{ __schema { queryType { name } types { kind name description fields(includeDeprecated: true) { name args { name type { " +
		typeRef + " } } type { " + typeRef + " } } inputFields { name type { " + typeRef + " } } enumValues { name } } } }"
	r := query(t, hs.URL, q, nil)
	if len(r.Errors) > 0 {
		t.Fatalf("introspection: %+v", r.Errors)
	}
	types := r.Data["__schema"].(map[string]any)["types"].([]any)
	found := false
	for _, ty := range types {
		if ty.(map[string]any)["name"] == "CashFlow" {
			found = true
		}
	}
	if !found {
		t.Errorf("introspection has no CashFlow among %d types", len(types))
	}
}

// A setting that cannot work is refused, naming it.
func TestNewRefusesBadConfig(t *testing.T) {
	sk, err := bleve.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sk.Close(t.Context())
	st := graphql.Bleve(sk)
	for _, tc := range []struct {
		name string
		cfg  graphql.Config
		want string
	}{
		{"no stores", graphql.Config{}, "Titles and CashFlows stores are required"},
		{"negative depth", graphql.Config{Titles: st, CashFlows: st, MaxDepth: -1}, "MaxDepth -1 is negative"},
		{"negative complexity", graphql.Config{Titles: st, CashFlows: st, MaxComplexity: -5}, "MaxComplexity -5 is negative"},
		{"negative page size", graphql.Config{Titles: st, CashFlows: st, MaxPageSize: -1}, "MaxPageSize -1 is negative"},
		{"negative wait", graphql.Config{Titles: st, CashFlows: st, MinVersionWait: -time.Second}, "MinVersionWait -1s is negative"},
		{"registerer without gatherer", graphql.Config{Titles: st, CashFlows: st, Registerer: registerer{}}, "is no Gatherer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := graphql.New(tc.cfg)
			if !errors.Is(err, graphql.ErrConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("New = %v, want ErrConfig with %q", err, tc.want)
			}
		})
	}
}

// registerer is a prometheus.Registerer that cannot be gathered.
type registerer struct{ prometheus.Registerer }
