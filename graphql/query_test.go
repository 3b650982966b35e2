package graphql_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/consumer/sink/bleve"
	"github.com/slatehq/slate/consumer/sink/sinktest"
	"github.com/slatehq/slate/graphql"
	"github.com/slatehq/slate/schema"
)

// viewEvent is a CREATE of a document of a view at sequence seq.
func viewEvent(view, id string, seq int64, data map[string]any) sink.Event {
	ev := sinktest.Event(schema.OpCreate, id, seq, data)
	ev.EntityType = view
	ev.Topic = "studio." + view + ".materialized"
	return ev
}

// titleDoc is a title view document with its schedule and budget joined.
func titleDoc(id, status, release string, amount int64) map[string]any {
	return map[string]any{"id": id, "name": "Title " + id, "kind": "FEATURE", "status": status, "release_date": release,
		"version": 2, "updated_at": "2026-01-02T03:04:05Z",
		"schedule": []any{map[string]any{"title_id": id, "production_start": "2026-01-01", "production_end": "2026-06-30",
			"releases": []any{map[string]any{"territory": "US", "date": release}}, "version": 5, "updated_at": "2026-02-01T00:00:00Z"}},
		"budget": []any{map[string]any{"title_id": id, "version": 7, "updated_at": "2026-03-01T00:00:00Z",
			"line_items": []any{map[string]any{"category": "p&a", "amount": amount, "currency": "USD", "profile": "production"}}}}}
}

// cashFlowDoc is a cashflow view document: amounts by month.
func cashFlowDoc(id, currency string, months map[string]int64) map[string]any {
	var list []any
	var total int64
	for m, a := range months {
		list = append(list, map[string]any{"month": m, "amount": a})
		total += a
	}
	return map[string]any{"title_id": id, "currency": currency, "total": total, "months": list, "scheduled": true,
		"budget_version": 7, "schedule_version": 5}
}

// seeded serves cfg over a bleve sink holding evs; wrap, if set, wraps
// the store the server reads.
func seeded(t testing.TB, cfg graphql.Config, evs []sink.Event, wrap func(graphql.Store) graphql.Store) *httptest.Server {
	t.Helper()
	sk, err := bleve.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sk.Close(context.Background()) })
	if len(evs) > 0 {
		if err := sk.Write(t.Context(), evs); err != nil {
			t.Fatal(err)
		}
	}
	st := graphql.Bleve(sk)
	if wrap != nil {
		st = wrap(st)
	}
	cfg.Titles, cfg.CashFlows = st, st
	srv, err := graphql.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return hs
}

func mustQuery(t *testing.T, url, q string, vars map[string]any) map[string]any {
	t.Helper()
	r := query(t, url, q, vars)
	if len(r.Errors) > 0 {
		t.Fatalf("%s: %+v", q, r.Errors)
	}
	return r.Data
}

func wantError(t *testing.T, url, q, want string) {
	t.Helper()
	r := query(t, url, q, nil)
	if len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Message, want) {
		t.Errorf("%s: errors %+v, want one with %q", q, r.Errors, want)
	}
}

// schedule and budget answer the records joined to the title view, each
// with its version, when it changed and how long ago; minVersion waits for
// the record's own version.
func TestScheduleAndBudget(t *testing.T) {
	hs := seeded(t, graphql.Config{MinVersionWait: 100 * time.Millisecond}, []sink.Event{
		viewEvent("title", "t1", 3, titleDoc("t1", "PRODUCTION", "2027-07-16", 1<<53+1)),
		viewEvent("title", "t2", 1, map[string]any{"id": "t2", "name": "Bare", "kind": "FEATURE", "status": "DEVELOPMENT"}),
	}, nil)
	d := mustQuery(t, hs.URL, `{
		schedule(titleId: "t1", minVersion: "5") { titleId productionStart productionEnd releases { territory date } version updatedAt freshness }
		budget(titleId: "t1") { titleId lineItems { category amount currency profile } version updatedAt freshness }
		bare: schedule(titleId: "t2") { version }
		none: budget(titleId: "nope") { version } }`, nil)
	s := d["schedule"].(map[string]any)
	if s["titleId"] != "t1" || s["productionStart"] != "2026-01-01" || s["version"] != "5" || s["updatedAt"] != "2026-02-01T00:00:00Z" {
		t.Errorf("schedule: %v", s)
	}
	if rel := s["releases"].([]any); len(rel) != 1 || rel[0].(map[string]any)["date"] != "2027-07-16" {
		t.Errorf("releases: %v", rel)
	}
	b := d["budget"].(map[string]any)
	li := b["lineItems"].([]any)[0].(map[string]any)
	if b["version"] != "7" || b["updatedAt"] != "2026-03-01T00:00:00Z" || li["amount"] != "9007199254740993" || li["currency"] != "USD" {
		t.Errorf("budget: %v", b)
	}
	for _, f := range []any{s["freshness"], b["freshness"]} {
		if sec, ok := f.(float64); !ok || sec < 3600 {
			t.Errorf("freshness %v: want the seconds since the record changed", f)
		}
	}
	if d["bare"] != nil || d["none"] != nil {
		t.Errorf("a title without a schedule, a missing title: %v %v", d["bare"], d["none"])
	}
	wantError(t, hs.URL, `{ schedule(titleId: "t1", minVersion: "6") { version } }`,
		"minVersion 6: the schedule of t1 in the title view is at version 5 after waiting 100ms (MinVersionWait)")
	wantError(t, hs.URL, `{ budget(titleId: "t2", minVersion: "1") { version } }`,
		"minVersion 1: the budget of t2 in the title view is at version 0")

	// A title's own updatedAt and freshness, beside its records'.
	d = mustQuery(t, hs.URL, `{ title(id: "t1") { version updatedAt freshness schedule { updatedAt } budget { freshness } } }`, nil)
	if ti := d["title"].(map[string]any); ti["version"] != "3" || ti["updatedAt"] != "2026-01-02T03:04:05Z" || ti["freshness"] == nil {
		t.Errorf("title: %v", ti)
	}
}

// releasedAfter and releasedBefore keep the titles released between them;
// a date that is not one is refused, naming it.
func TestTitlesReleased(t *testing.T) {
	hs := seeded(t, graphql.Config{}, []sink.Event{
		viewEvent("title", "t1", 1, titleDoc("t1", "PRODUCTION", "2027-07-16", 1)),
		viewEvent("title", "t2", 1, titleDoc("t2", "PRODUCTION", "2028-01-01", 1)),
		viewEvent("title", "t3", 1, titleDoc("t3", "RELEASED", "2026-05-01", 1)),
		viewEvent("title", "t4", 1, titleDoc("t4", "DEVELOPMENT", "", 1)),
	}, nil)
	ids := func(after, before any, status any) []string {
		d := mustQuery(t, hs.URL, `query($a: String, $b: String, $s: String) {
			titles(releasedAfter: $a, releasedBefore: $b, status: $s, first: 10) { edges { node { id } } } }`,
			map[string]any{"a": after, "b": before, "s": status})
		var out []string
		for _, e := range d["titles"].(map[string]any)["edges"].([]any) {
			out = append(out, e.(map[string]any)["node"].(map[string]any)["id"].(string))
		}
		return out
	}
	for _, tc := range []struct {
		after, before, status any
		want                  string
	}{
		{"2027-01-01", "2027-12-31", nil, "t1"},
		{"2027-07-16", nil, nil, "t1 t2"},
		{nil, "2027-07-16", nil, "t1 t3"},
		{"2026-01-01", nil, "PRODUCTION", "t1 t2"},
		{"2029-01-01", nil, nil, ""},
	} {
		got := ids(tc.after, tc.before, tc.status)
		sortStrings(got)
		if strings.Join(got, " ") != tc.want {
			t.Errorf("after %v before %v status %v: %v, want %s", tc.after, tc.before, tc.status, got, tc.want)
		}
	}
	wantError(t, hs.URL, `{ titles(releasedAfter: "2027-13-01") { edges { cursor } } }`, `releasedAfter "2027-13-01" is not a date (YYYY-MM-DD)`)
	wantError(t, hs.URL, `{ titles(releasedBefore: "July") { edges { cursor } } }`, `releasedBefore "July" is not a date (YYYY-MM-DD)`)
	wantError(t, hs.URL, `{ titles(releasedAfter: "2028-01-01", releasedBefore: "2027-01-01") { edges { cursor } } }`,
		"releasedAfter 2028-01-01 is after releasedBefore 2027-01-01")
}

func sortStrings(s []string) {
	for i := range s {
		for j := i + 1; j < len(s); j++ {
			if s[j] < s[i] {
				s[i], s[j] = s[j], s[i]
			}
		}
	}
}

// cashFlowByMonth sums the titles' months exactly, past 2^53, with the
// count of titles behind each month; status narrows it to those titles.
func TestCashFlowByMonth(t *testing.T) {
	big := int64(1<<53 + 1)
	hs := seeded(t, graphql.Config{}, []sink.Event{
		viewEvent("title", "t1", 1, titleDoc("t1", "PRODUCTION", "2027-07-16", 1)),
		viewEvent("title", "t2", 1, titleDoc("t2", "PRODUCTION", "2027-08-01", 1)),
		viewEvent("title", "t3", 1, titleDoc("t3", "RELEASED", "2026-05-01", 1)),
		viewEvent("cashflow", "t1", 4, cashFlowDoc("t1", "USD", map[string]int64{"2027-01": big, "2027-02": 10})),
		viewEvent("cashflow", "t2", 9, cashFlowDoc("t2", "USD", map[string]int64{"2027-01": big, "2027-03": 5})),
		viewEvent("cashflow", "t3", 2, cashFlowDoc("t3", "USD", map[string]int64{"2026-12": 7, "2027-02": 1})),
	}, nil)
	q := `query($s: String) { cashFlowByMonth(from: "2027-01", to: "2027-04", status: $s) {
		currency from to titles total months { month amount titles } version updatedAt freshness } }`
	p := mustQuery(t, hs.URL, q, nil)["cashFlowByMonth"].(map[string]any)
	if p["currency"] != "USD" || p["titles"] != float64(3) || p["version"] != "9" || p["updatedAt"] == nil || p["freshness"] == nil {
		t.Errorf("roll-up: %v", p)
	}
	if want := fmt.Sprint(2*big + 15 + 8); p["total"] != want {
		t.Errorf("total %v, want %s", p["total"], want)
	}
	want := []string{"2027-01 18014398509481986 2", "2027-02 11 2", "2027-03 5 1", "2027-04 0 0"}
	checkMonths(t, p, want)

	p = mustQuery(t, hs.URL, q, map[string]any{"s": "RELEASED"})["cashFlowByMonth"].(map[string]any)
	if p["titles"] != float64(1) {
		t.Errorf("RELEASED: %v", p)
	}
	checkMonths(t, p, []string{"2027-01 0 0", "2027-02 1 1", "2027-03 0 0", "2027-04 0 0"})
	p = mustQuery(t, hs.URL, q, map[string]any{"s": "CANCELLED"})["cashFlowByMonth"].(map[string]any)
	if p["titles"] != float64(0) || p["currency"] != nil || p["total"] != "0" {
		t.Errorf("no titles: %v", p)
	}

	for _, tc := range []struct{ q, want string }{
		{`{ cashFlowByMonth(from: "2027-1", to: "2027-04") { titles } }`, `from "2027-1" is not a month (YYYY-MM)`},
		{`{ cashFlowByMonth(from: "2027-05", to: "2027-04") { titles } }`, "from 2027-05 is after to 2027-04"},
		{`{ cashFlowByMonth(from: "1900-01", to: "2027-04") { titles } }`, "more than 1200 (MaxRollupMonths)"},
		{`{ a: cashFlowByMonth(from: "2027-01", to: "2027-01") { titles } b: cashFlowByMonth(from: "2027-01", to: "2027-01") { titles }
			c: cashFlowByMonth(from: "2027-01", to: "2027-01") { titles } d: cashFlowByMonth(from: "2027-01", to: "2027-01") { titles }
			e: cashFlowByMonth(from: "2027-01", to: "2027-01") { titles } }`, "operation has complexity 5005, which exceeds the limit of 5000"},
	} {
		wantError(t, hs.URL, tc.q, tc.want)
	}
}

func checkMonths(t *testing.T, p map[string]any, want []string) {
	t.Helper()
	var got []string
	for _, m := range p["months"].([]any) {
		mm := m.(map[string]any)
		got = append(got, fmt.Sprintf("%s %s %v", mm["month"], mm["amount"], mm["titles"]))
	}
	if strings.Join(got, ", ") != strings.Join(want, ", ") {
		t.Errorf("months %v, want %v", got, want)
	}
}

// A sum past Int64, or cash flows in two currencies, is an error that
// says so rather than a wrong number.
func TestCashFlowByMonthRefusesInexactSums(t *testing.T) {
	for _, tc := range []struct {
		name string
		evs  []sink.Event
		want string
	}{
		{"overflow", []sink.Event{
			viewEvent("cashflow", "t1", 1, cashFlowDoc("t1", "USD", map[string]int64{"2027-01": math.MaxInt64})),
			viewEvent("cashflow", "t2", 1, cashFlowDoc("t2", "USD", map[string]int64{"2027-01": 1, "2027-02": -2})),
		}, "passes the range of Int64"},
		{"currencies", []sink.Event{
			viewEvent("cashflow", "t1", 1, cashFlowDoc("t1", "USD", map[string]int64{"2027-01": 1})),
			viewEvent("cashflow", "t2", 1, cashFlowDoc("t2", "EUR", map[string]int64{"2027-01": 1})),
		}, "more than one reporting currency"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hs := seeded(t, graphql.Config{}, tc.evs, nil)
			wantError(t, hs.URL, `{ cashFlowByMonth(from: "2027-01", to: "2027-02") { titles } }`, tc.want)
		})
	}
}

// countingStore counts the calls to the store it wraps.
type countingStore struct {
	graphql.Store
	gets, searches, getManys atomic.Int64
	largest                  atomic.Int64
}

func (c *countingStore) Get(ctx context.Context, view, id string) (map[string]any, int64, bool, error) {
	c.gets.Add(1)
	return c.Store.Get(ctx, view, id)
}

func (c *countingStore) Search(ctx context.Context, view, q string, size int) ([]graphql.Hit, error) {
	c.searches.Add(1)
	return c.Store.Search(ctx, view, q, size)
}

func (c *countingStore) GetMany(ctx context.Context, view string, ids []string) (map[string]graphql.Hit, error) {
	c.getManys.Add(1)
	for {
		n := c.largest.Load()
		if int64(len(ids)) <= n || c.largest.CompareAndSwap(n, int64(len(ids))) {
			break
		}
	}
	return c.Store.GetMany(ctx, view, ids)
}

// A page of 100 titles with their cash flows reads the store a handful of
// times: one search and the cash flows in batches, not one read per title.
func TestTitleCashFlowLoadsInBatches(t *testing.T) {
	var evs []sink.Event
	for i := range 100 {
		id := fmt.Sprintf("t%03d", i)
		evs = append(evs, viewEvent("title", id, 1, titleDoc(id, "PRODUCTION", "2027-07-16", 1)))
		if i%10 != 0 { // every tenth title has no cash flow yet
			evs = append(evs, viewEvent("cashflow", id, int64(i+1), cashFlowDoc(id, "USD", map[string]int64{"2027-01": int64(i)})))
		}
	}
	cs := &countingStore{}
	hs := seeded(t, graphql.Config{}, evs, func(s graphql.Store) graphql.Store { cs.Store = s; return cs })
	d := mustQuery(t, hs.URL, `{ titles(first: 100) { edges { node { id cashFlow(from: "2027-01", to: "2027-01") { titleId version months { amount } } } } } }`, nil)
	edges := d["titles"].(map[string]any)["edges"].([]any)
	if len(edges) != 100 {
		t.Fatalf("%d titles", len(edges))
	}
	withFlow := 0
	for _, e := range edges {
		n := e.(map[string]any)["node"].(map[string]any)
		cf, _ := n["cashFlow"].(map[string]any)
		var i int
		fmt.Sscanf(n["id"].(string), "t%03d", &i)
		switch {
		case i%10 == 0 && cf != nil:
			t.Errorf("%s: a cash flow %v where there is none", n["id"], cf)
		case i%10 != 0 && (cf == nil || cf["titleId"] != n["id"] || cf["version"] != fmt.Sprint(i+1) ||
			cf["months"].([]any)[0].(map[string]any)["amount"] != fmt.Sprint(i)):
			t.Errorf("%s: cash flow %v", n["id"], cf)
		case cf != nil:
			withFlow++
		}
	}
	calls := cs.gets.Load() + cs.searches.Load() + cs.getManys.Load()
	t.Logf("store calls: %d searches, %d gets, %d GetMany (largest %d ids) for %d titles, %d with cash flows",
		cs.searches.Load(), cs.gets.Load(), cs.getManys.Load(), cs.largest.Load(), len(edges), withFlow)
	if cs.gets.Load() != 0 || cs.searches.Load() != 1 || calls > 6 {
		t.Errorf("%d store calls (%d gets, %d searches, %d GetMany); want one search and a few GetMany",
			calls, cs.gets.Load(), cs.searches.Load(), cs.getManys.Load())
	}
}

// failingStore fails every GetMany.
type failingStore struct{ graphql.Store }

func (failingStore) GetMany(context.Context, string, []string) (map[string]graphql.Hit, error) {
	return nil, errors.New("store down")
}

// A batch that fails fails the field of every title in it, naming the
// view, and the titles still answer.
func TestTitleCashFlowBatchError(t *testing.T) {
	hs := seeded(t, graphql.Config{}, []sink.Event{viewEvent("title", "t1", 1, titleDoc("t1", "PRODUCTION", "2027-07-16", 1))},
		func(s graphql.Store) graphql.Store { return failingStore{s} })
	r := query(t, hs.URL, `{ title(id: "t1") { id cashFlow { total } } }`, nil)
	if len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Message, "cashflow view: get t1: store down") {
		t.Errorf("errors %+v", r.Errors)
	}
	if ti, _ := r.Data["title"].(map[string]any); ti == nil || ti["id"] != "t1" || ti["cashFlow"] != nil {
		t.Errorf("data %v", r.Data)
	}
}

// With AllowedOrigins, a preflight from an allowed origin is answered with
// what it may send, and its requests carry Access-Control-Allow-Origin; an
// origin not allowed gets no CORS headers.
func TestCORS(t *testing.T) {
	hs := seeded(t, graphql.Config{AllowedOrigins: []string{"https://app.example.com", "https://*.studio.test"}}, nil, nil)
	preflight := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, hs.URL+"/query", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	for _, origin := range []string{"https://app.example.com", "https://finance.studio.test"} {
		res := preflight(origin)
		if res.StatusCode/100 != 2 || res.Header.Get("Access-Control-Allow-Origin") != origin ||
			!strings.Contains(res.Header.Get("Access-Control-Allow-Methods"), "POST") ||
			!strings.Contains(strings.ToLower(res.Header.Get("Access-Control-Allow-Headers")), "content-type") {
			t.Errorf("preflight from %s: %d %v", origin, res.StatusCode, res.Header)
		}
	}
	if res := preflight("https://evil.example"); res.Header.Get("Access-Control-Allow-Origin") != "" || res.Header.Get("Access-Control-Allow-Methods") != "" {
		t.Errorf("preflight from an origin not allowed: %v", res.Header)
	}
	post := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, hs.URL+"/query", strings.NewReader(`{"query":"{ title(id: \"x\") { id } }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Origin", origin)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	if res := post("https://app.example.com"); res.StatusCode != 200 || res.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("POST from an allowed origin: %d %v", res.StatusCode, res.Header)
	}
	if res := post("https://evil.example"); res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("POST from an origin not allowed: %v", res.Header)
	}

	// Without AllowedOrigins no request gets CORS headers.
	plain := seeded(t, graphql.Config{}, nil, nil)
	req, _ := http.NewRequest(http.MethodPost, plain.URL+"/query", strings.NewReader(`{"query":"{ title(id: \"x\") { id } }"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Origin", "https://app.example.com")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("CORS headers without AllowedOrigins: %v", res.Header)
	}
}

// An origin that is not one is refused by New, naming it.
func TestCORSRefusesBadOrigins(t *testing.T) {
	sk, err := bleve.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sk.Close(t.Context())
	st := graphql.Bleve(sk)
	for _, o := range []string{"app.example.com", "https://app.example.com/path", "ftp://x", "https://*.*.example.com", ""} {
		_, err := graphql.New(graphql.Config{Titles: st, CashFlows: st, AllowedOrigins: []string{o}})
		if !errors.Is(err, graphql.ErrConfig) || !strings.Contains(err.Error(), fmt.Sprintf("AllowedOrigins: %q is not an origin", o)) {
			t.Errorf("origin %q: %v", o, err)
		}
	}
}
