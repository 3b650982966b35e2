package graphql_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/consumer/sink/es"
	"github.com/slatehq/slate/consumer/sink/es/estest"
	"github.com/slatehq/slate/graphql"
)

// esBackend is a cluster the es sink writes and the store reads: a real
// one when SLATE_ES_URL is set, the in-process double otherwise (double
// is nil for a real cluster), under a prefix of the test's own.
type esBackend struct {
	client *elasticsearch.Client
	prefix string
	double *estest.Server
}

func newESBackend(t *testing.T) esBackend {
	t.Helper()
	prefix := fmt.Sprintf("slatetest-%d-", time.Now().UnixNano())
	if url := os.Getenv("SLATE_ES_URL"); url != "" {
		c, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{url}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if res, err := c.Indices.Delete([]string{prefix + "*"}); err == nil {
				res.Body.Close()
			}
		})
		return esBackend{client: c, prefix: prefix}
	}
	d := estest.New()
	hs := httptest.NewServer(d)
	t.Cleanup(hs.Close)
	c, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{hs.URL}, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	return esBackend{client: c, prefix: prefix, double: d}
}

// write applies evs through the es sink, searchable once it returns.
func (b esBackend) write(t *testing.T, evs []sink.Event) {
	t.Helper()
	s, err := es.New(t.Context(), b.client, es.WithIndexPrefix(b.prefix), es.WithRefresh("true"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Write(t.Context(), evs); err != nil {
		t.Fatal(err)
	}
}

// The views the es sink writes read back through the Elasticsearch store
// as through the embedded index: documents, searches, joined records,
// batched cash flows and the exact roll-up.
func TestElasticsearchStore(t *testing.T) {
	b := newESBackend(t)
	big := int64(1<<53 + 1)
	// A title without a release date has "" there, as the title view
	// writes it: the es sink's template keeps it a string.
	title := func(id, status, release string) map[string]any { return titleDoc(id, status, release, big) }
	var evs []sink.Event
	for i, tc := range []struct{ status, release string }{
		{"PRODUCTION", "2027-07-16"}, {"PRODUCTION", "2028-01-01"}, {"RELEASED", "2026-05-01"}, {"DEVELOPMENT", ""},
	} {
		id := fmt.Sprintf("t%d", i+1)
		evs = append(evs, viewEvent("title", id, int64(i+2), title(id, tc.status, tc.release)))
		if tc.release != "" {
			evs = append(evs, viewEvent("cashflow", id, int64(10+i), cashFlowDoc(id, "USD", map[string]int64{"2027-01": big, "2027-02": int64(i)})))
		}
	}
	b.write(t, evs)
	store := graphql.Elasticsearch(b.client, b.prefix)
	if store.Index("Title") != b.prefix+"title" {
		t.Errorf("index of Title: %s", store.Index("Title"))
	}
	if err := store.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	srv, err := graphql.New(graphql.Config{Titles: store, CashFlows: store, MinVersionWait: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()

	d := mustQuery(t, hs.URL, `{ title(id: "t1") { id status version releaseDate budget { lineItems { amount } } cashFlow { version total } }
		schedule(titleId: "t1", minVersion: "5") { version updatedAt }
		budget(titleId: "t2") { version }
		none: title(id: "nope") { id } }`, nil)
	ti := d["title"].(map[string]any)
	if ti["version"] != "2" || ti["releaseDate"] != "2027-07-16" ||
		ti["budget"].([]any)[0].(map[string]any)["lineItems"].([]any)[0].(map[string]any)["amount"] != "9007199254740993" {
		t.Errorf("title: %v", ti)
	}
	if cf := ti["cashFlow"].(map[string]any); cf["version"] != "10" || cf["total"] != fmt.Sprint(big) {
		t.Errorf("title cash flow: %v", cf)
	}
	if d["schedule"].(map[string]any)["version"] != "5" || d["budget"].(map[string]any)["version"] != "7" || d["none"] != nil {
		t.Errorf("schedule, budget, missing title: %v", d)
	}
	wantError(t, hs.URL, `{ title(id: "t1", minVersion: "3") { id } }`, "minVersion 3: the title view of t1 is at version 2")

	ids := func(q string) string {
		d := mustQuery(t, hs.URL, q, nil)
		var out []string
		for _, e := range d["titles"].(map[string]any)["edges"].([]any) {
			out = append(out, e.(map[string]any)["node"].(map[string]any)["id"].(string))
		}
		sortStrings(out)
		return strings.Join(out, " ")
	}
	for _, tc := range []struct{ q, want string }{
		{`{ titles(first: 10) { edges { node { id } } } }`, "t1 t2 t3 t4"},
		{`{ titles(status: "PRODUCTION") { edges { node { id } } } }`, "t1 t2"},
		{`{ titles(search: "name:t3") { edges { node { id } } } }`, "t3"},
		{`{ titles(releasedAfter: "2027-01-01", releasedBefore: "2027-12-31") { edges { node { id } } } }`, "t1"},
		{`{ titles(releasedAfter: "2027-01-01") { edges { node { id } } } }`, "t1 t2"},
		{`{ titles(releasedBefore: "2027-07-16", status: "RELEASED") { edges { node { id } } } }`, "t3"},
		{`{ titles(releasedBefore: "2027-07-16") { edges { node { id } } } }`, "t1 t3"},
	} {
		if got := ids(tc.q); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.q, got, tc.want)
		}
	}

	// A page's cash flows are one _mget.
	var before int
	if b.double != nil {
		before = b.double.Requests("mget")
	}
	d = mustQuery(t, hs.URL, `{ titles(first: 10) { edges { node { id cashFlow(from: "2027-02", to: "2027-02") { months { amount } } } } } }`, nil)
	flows := 0
	for _, e := range d["titles"].(map[string]any)["edges"].([]any) {
		if e.(map[string]any)["node"].(map[string]any)["cashFlow"] != nil {
			flows++
		}
	}
	if flows != 3 {
		t.Errorf("%d titles with a cash flow, want 3: %v", flows, d)
	}
	if b.double != nil && b.double.Requests("mget")-before != 1 {
		t.Errorf("%d _mget requests for a page, want 1", b.double.Requests("mget")-before)
	}

	p := mustQuery(t, hs.URL, `{ all: cashFlowByMonth(from: "2027-01", to: "2027-02") { titles total months { month amount titles } version }
		prod: cashFlowByMonth(from: "2027-01", to: "2027-01", status: "PRODUCTION") { titles months { amount } } }`, nil)
	all := p["all"].(map[string]any)
	if all["titles"] != float64(3) || all["version"] != "12" || all["total"] != fmt.Sprint(3*big+3) {
		t.Errorf("roll-up: %v", all)
	}
	checkMonths(t, all, []string{"2027-01 27021597764222979 3", "2027-02 3 3"})
	if prod := p["prod"].(map[string]any); prod["titles"] != float64(2) || prod["months"].([]any)[0].(map[string]any)["amount"] != fmt.Sprint(2*big) {
		t.Errorf("PRODUCTION roll-up: %v", prod)
	}
}

// Views not written yet (their indices missing) read as empty, not as
// errors.
func TestElasticsearchStoreMissingIndex(t *testing.T) {
	b := newESBackend(t)
	store := graphql.Elasticsearch(b.client, b.prefix)
	ctx := context.Background()
	if _, _, found, err := store.Get(ctx, "title", "t1"); err != nil || found {
		t.Errorf("Get: found %v, %v", found, err)
	}
	if hits, err := store.Search(ctx, "title", "name:x", 10); err != nil || len(hits) != 0 {
		t.Errorf("Search: %v, %v", hits, err)
	}
	if got, err := store.GetMany(ctx, "title", []string{"a", "b"}); err != nil || len(got) != 0 {
		t.Errorf("GetMany: %v, %v", got, err)
	}
}

// An unreachable cluster fails the calls naming what was asked.
func TestElasticsearchStoreUnreachable(t *testing.T) {
	hs := httptest.NewServer(nil)
	url := hs.URL
	hs.Close()
	c, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{url}, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	store := graphql.Elasticsearch(c, "")
	if err := store.Ping(t.Context()); err == nil {
		t.Error("Ping of a closed port succeeded")
	}
	if _, err := store.GetMany(t.Context(), "cashflow", []string{"t1"}); err == nil || !strings.Contains(err.Error(), "mget studio-cashflow (1 ids)") {
		t.Errorf("GetMany: %v", err)
	}
}

// A search for more hits than Elasticsearch returns at once asks its
// window and fails when more match, rather than answer a short list as
// if it were whole: the roll-up of more cash flows than that is an error.
func TestElasticsearchStoreWindow(t *testing.T) {
	if testing.Short() {
		t.Skip("writes 10001 documents")
	}
	b := newESBackend(t)
	evs := make([]sink.Event, 0, graphql.MaxResultWindow+1)
	for i := range graphql.MaxResultWindow + 1 {
		id := fmt.Sprintf("t%05d", i)
		evs = append(evs, viewEvent("cashflow", id, 1, cashFlowDoc(id, "USD", map[string]int64{"2027-01": 1})))
	}
	b.write(t, evs)
	store := graphql.Elasticsearch(b.client, b.prefix)
	if hits, err := store.Search(t.Context(), "cashflow", "", graphql.MaxResultWindow); err != nil || len(hits) != graphql.MaxResultWindow {
		t.Fatalf("search of the window: %d hits, %v", len(hits), err)
	}
	_, err := store.Search(t.Context(), "cashflow", "", graphql.MaxResultWindow+1)
	if err == nil || !strings.Contains(err.Error(), "10001 hits, more than the 10000 one search returns (index.max_result_window)") {
		t.Fatalf("search past the window: %v", err)
	}
	srv, err := graphql.New(graphql.Config{Titles: store, CashFlows: store})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	wantError(t, hs.URL, `{ cashFlowByMonth(from: "2027-01", to: "2027-01") { titles } }`, "more than the 10000 one search returns")
}
