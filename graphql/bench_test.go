package graphql_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/graphql"
)

// A page of 100 titles with their cash flows, and the roll-up of 1000
// titles' cash flows by month, over the embedded index.
func BenchmarkQueries(b *testing.B) {
	var evs []sink.Event
	for i := range 1000 {
		id := fmt.Sprintf("t%04d", i)
		evs = append(evs, viewEvent("title", id, 1, titleDoc(id, "PRODUCTION", "2027-07-16", 1)),
			viewEvent("cashflow", id, 1, cashFlowDoc(id, "USD", map[string]int64{"2027-01": int64(i), "2027-02": 1, "2027-03": 2})))
	}
	hs := seeded(b, graphql.Config{}, evs, nil)
	for _, bc := range []struct{ name, q string }{
		{"titles100_cashFlow", `{ titles(first: 100) { edges { node { id cashFlow { total months { month amount } } } } } }`},
		{"cashFlowByMonth_1000titles", `{ cashFlowByMonth(from: "2027-01", to: "2027-12") { titles total months { amount } } }`},
	} {
		body, _ := json.Marshal(map[string]any{"query": bc.q})
		b.Run(bc.name, func(b *testing.B) {
			for b.Loop() {
				res, err := http.Post(hs.URL+"/query", "application/json", strings.NewReader(string(body)))
				if err != nil {
					b.Fatal(err)
				}
				var r response
				err = json.NewDecoder(res.Body).Decode(&r)
				res.Body.Close()
				if err != nil || len(r.Errors) > 0 {
					b.Fatal(err, r.Errors)
				}
			}
		})
	}
}
