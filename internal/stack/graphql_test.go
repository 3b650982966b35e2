package stack_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/slatehq/slate/internal/testenv"
	financev1 "github.com/slatehq/slate/proto/finance/v1"
	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
)

// gql posts a GraphQL query to the stack's API and returns its data; it
// fails the test on GraphQL errors.
func gql(t *testing.T, url, query string, vars map[string]any) map[string]any {
	t.Helper()
	data, errs := gqlTry(t, url, query, vars)
	if len(errs) > 0 {
		t.Fatalf("%s: %v", query, errs)
	}
	return data
}

func gqlTry(t *testing.T, url, query string, vars map[string]any) (map[string]any, []any) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	res, err := http.Post(url+"/query", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var r struct {
		Data   map[string]any `json:"data"`
		Errors []any          `json:"errors"`
	}
	if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	return r.Data, r.Errors
}

const (
	titleQuery = `query($id: ID!, $min: Int64) { title(id: $id, minVersion: $min) {
		id name status releaseDate version freshness
		schedule { releases { territory date } version }
		budget { lineItems { category amount currency } } } }`
	cashFlowQuery = `query($id: ID!, $min: Int64) { cashFlow(titleId: $id, from: "2027-01", to: "2027-12", minVersion: $min) {
		titleId currency total version freshness months { month amount } } }`
)

// gqlMonths is month -> amount of a cashFlow answer.
func gqlMonths(cf map[string]any) map[string]string {
	out := map[string]string{}
	for _, m := range cf["months"].([]any) {
		mm := m.(map[string]any)
		out[mm["month"].(string)] = mm["amount"].(string)
	}
	return out
}

func sameMonths(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// A title, its schedule and its budget made through the services are read
// back through GraphQL; after the release moves, a query with minVersion
// above the version read first answers the moved months at once: the
// server waits for the view, the client does not poll.
func TestGraphQLReadsItsWrites(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system")
	}
	s := startStack(t, false)
	if s.GraphQLURL == "" {
		t.Fatal("the stack serves no GraphQL API")
	}
	ctx := context.Background()
	created, err := s.Titles.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: &titlesv1.Title{
		Name: "Slate", Kind: "FEATURE", Status: "PRODUCTION", ReleaseDate: "2027-07-16"}})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetTitle().GetId()
	if _, err := s.Titles.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: &titlesv1.Title{
		Name: "Slate Two", Kind: "SERIES", Status: "DEVELOPMENT"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Schedules.PutSchedule(ctx, schedule(id, "2027-07-16", 0)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Finance.PutBudget(ctx, &financev1.PutBudgetRequest{Budget: &financev1.Budget{TitleId: id, LineItems: []*financev1.LineItem{
		{Category: "p&a", Amount: 3_000_000_01, Currency: "USD", Profile: "before_release:3"},
	}}}); err != nil {
		t.Fatal(err)
	}

	july := map[string]string{"2027-04": "100000001", "2027-05": "100000000", "2027-06": "100000000"}
	var cf map[string]any
	testenv.WaitFor(t, 30*time.Second, "the July cash flow through GraphQL", func() bool {
		cf, _ = gql(t, s.GraphQLURL, cashFlowQuery, map[string]any{"id": id})["cashFlow"].(map[string]any)
		return cf != nil && sameMonths(gqlMonths(cf), july)
	})
	if cf["total"] != "300000001" || cf["currency"] != "USD" {
		t.Errorf("cash flow: %v", cf)
	}
	if f, ok := cf["freshness"].(float64); !ok || f < 0 || f > 60 {
		t.Errorf("cash flow freshness %v: want the seconds since the budget's change", cf["freshness"])
	}
	var title map[string]any
	testenv.WaitFor(t, 30*time.Second, "the title view with schedule and budget", func() bool {
		title, _ = gql(t, s.GraphQLURL, titleQuery, map[string]any{"id": id})["title"].(map[string]any)
		return title != nil && len(title["schedule"].([]any)) == 1 && len(title["budget"].([]any)) == 1
	})
	if title["name"] != "Slate" || title["status"] != "PRODUCTION" {
		t.Errorf("title: %v", title)
	}
	if li := title["budget"].([]any)[0].(map[string]any)["lineItems"].([]any)[0].(map[string]any); li["amount"] != "300000001" {
		t.Errorf("budget line: %v", li)
	}

	// Search, filtered by status and paged.
	all := `query($after: String) { titles(search: "name:slate", first: 1, after: $after) {
		edges { cursor node { id name } } pageInfo { hasNextPage endCursor } } }`
	testenv.WaitFor(t, 30*time.Second, "both titles searchable", func() bool {
		conn := gql(t, s.GraphQLURL, all, nil)["titles"].(map[string]any)
		return conn["pageInfo"].(map[string]any)["hasNextPage"] == true
	})
	first := gql(t, s.GraphQLURL, all, nil)["titles"].(map[string]any)
	second := gql(t, s.GraphQLURL, all, map[string]any{"after": first["pageInfo"].(map[string]any)["endCursor"]})["titles"].(map[string]any)
	names := map[any]bool{}
	for _, c := range []map[string]any{first, second} {
		for _, e := range c["edges"].([]any) {
			names[e.(map[string]any)["node"].(map[string]any)["name"]] = true
		}
	}
	if !names["Slate"] || !names["Slate Two"] || second["pageInfo"].(map[string]any)["hasNextPage"] != false {
		t.Errorf("pages of name:slate: %v then %v", first, second)
	}
	producing := gql(t, s.GraphQLURL, `{ titles(search: "name:slate", status: "PRODUCTION") { edges { node { id } } } }`, nil)["titles"].(map[string]any)
	if edges := producing["edges"].([]any); len(edges) != 1 || edges[0].(map[string]any)["node"].(map[string]any)["id"] != id {
		t.Errorf("titles in production: %v", producing)
	}

	// The release moves to June; one query each, with minVersion one above
	// what was read.
	cfV, err := strconv.ParseInt(cf["version"].(string), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	titleV, err := strconv.ParseInt(title["version"].(string), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Schedules.PutSchedule(ctx, schedule(id, "2027-06-10", 1)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	cf = gql(t, s.GraphQLURL, cashFlowQuery, map[string]any{"id": id, "min": strconv.FormatInt(cfV+1, 10)})["cashFlow"].(map[string]any)
	june := map[string]string{"2027-03": "100000001", "2027-04": "100000000", "2027-05": "100000000"}
	if got := gqlMonths(cf); !sameMonths(got, june) {
		t.Errorf("cash flow at minVersion %d: %v, want June's %v", cfV+1, got, june)
	}
	t.Logf("the cash flow at minVersion answered in %s", time.Since(start).Round(time.Millisecond))
	title = gql(t, s.GraphQLURL, titleQuery, map[string]any{"id": id, "min": strconv.FormatInt(titleV+1, 10)})["title"].(map[string]any)
	rel := title["schedule"].([]any)[0].(map[string]any)["releases"].([]any)[0].(map[string]any)
	if rel["date"] != "2027-06-10" {
		t.Errorf("title at minVersion %d: release %v, want 2027-06-10", titleV+1, rel)
	}

	// The schedule and the budget on their own, each with when it changed.
	rec := gql(t, s.GraphQLURL, `query($id: ID!) { schedule(titleId: $id) { version updatedAt freshness releases { date } }
		budget(titleId: $id) { version updatedAt freshness lineItems { amount } } }`, map[string]any{"id": id})
	for _, name := range []string{"schedule", "budget"} {
		r, _ := rec[name].(map[string]any)
		if r == nil || r["version"] == "0" || r["updatedAt"] == nil {
			t.Errorf("%s: %v", name, r)
			continue
		}
		if f, ok := r["freshness"].(float64); !ok || f < 0 || f > 60 {
			t.Errorf("%s freshness %v: want the seconds since it changed", name, r["freshness"])
		}
	}
	if d := rec["schedule"].(map[string]any)["releases"].([]any)[0].(map[string]any)["date"]; d != "2027-06-10" {
		t.Errorf("schedule release %v", d)
	}

	// Titles by release date, each with its cash flow; and the portfolio
	// by month (only the title in production spends).
	released := gql(t, s.GraphQLURL, `{ titles(search: "name:slate", releasedAfter: "2027-07-01", releasedBefore: "2027-07-31") {
		edges { node { id cashFlow(from: "2027-03", to: "2027-05") { total months { month amount } } } } } }`, nil)["titles"].(map[string]any)
	edges := released["edges"].([]any)
	if len(edges) != 1 || edges[0].(map[string]any)["node"].(map[string]any)["id"] != id {
		t.Fatalf("titles released in July 2027: %v", released)
	}
	if got := gqlMonths(edges[0].(map[string]any)["node"].(map[string]any)["cashFlow"].(map[string]any)); !sameMonths(got, june) {
		t.Errorf("Title.cashFlow: %v, want %v", got, june)
	}
	p := gql(t, s.GraphQLURL, `{ cashFlowByMonth(from: "2027-03", to: "2027-05", status: "PRODUCTION") {
		currency titles total months { month amount titles } version freshness } }`, nil)["cashFlowByMonth"].(map[string]any)
	if p["currency"] != "USD" || p["titles"] != float64(1) || p["total"] != "300000001" || p["freshness"] == nil {
		t.Errorf("cashFlowByMonth: %v", p)
	}
	if got := gqlMonths(p); !sameMonths(got, june) {
		t.Errorf("cashFlowByMonth months: %v, want %v", got, june)
	}

	// A version the view never reaches is an error naming it.
	_, errs := gqlTry(t, s.GraphQLURL, cashFlowQuery, map[string]any{"id": id, "min": "9223372036854775807"})
	if len(errs) != 1 {
		t.Fatalf("minVersion past the view: errors %v", errs)
	}
	if msg := errs[0].(map[string]any)["message"].(string); !bytes.Contains([]byte(msg), []byte("minVersion 9223372036854775807")) {
		t.Errorf("minVersion past the view: %s", msg)
	}
}
