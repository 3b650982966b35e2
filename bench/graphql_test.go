package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/consumer/sink/bleve"
	"github.com/slatehq/slate/graphql"
	"github.com/slatehq/slate/schema"
)

// Workload of BenchmarkGraphQL: gqlTitles documents of the title view in
// a bleve sink; each round, gqlClients goroutines send gqlGets title(id)
// lookups or gqlSearches titles(search) queries per side.
const (
	gqlTitles   = 2000
	gqlWords    = 50 // distinct name words: a search matches gqlTitles/gqlWords titles
	gqlClients  = 8
	gqlGets     = 4000
	gqlSearches = 1000
)

// gqlWord is the i-th name word of the workload's titles.
func gqlWord(i int) string { return fmt.Sprintf("w%02dx", i%gqlWords) }

// gqlTitleEvents is the title view of the workload: each title with a
// schedule of three releases and a budget of four lines, as slate up's
// title view joins them.
func gqlTitleEvents() []sink.Event {
	now := time.Now().UTC()
	evs := make([]sink.Event, gqlTitles)
	for i := range evs {
		id := fmt.Sprintf("title-%04d", i)
		e := schema.NewEnvelope("//bench/titles", schema.OpUpdate, "title", id)
		e.Time, e.Sequence, e.DataContentType = now, 3, schema.ContentTypeJSON
		var lines []map[string]any
		for j, c := range []string{"above the line", "production", "post", "p&a"} {
			lines = append(lines, map[string]any{"category": c, "amount": 1_000_000 * (i + j + 1), "currency": "USD", "profile": "even"})
		}
		e.Data, _ = json.Marshal(map[string]any{
			"id": id, "name": fmt.Sprintf("Title %d %s", i, gqlWord(i)), "kind": "FEATURE", "status": "PRODUCTION",
			"release_date": "2027-07-16", "version": 1, "updated_at": now.Format(time.RFC3339Nano),
			"schedule": []any{map[string]any{"title_id": id, "production_start": "2026-09-01", "production_end": "2027-03-31", "version": 1,
				"releases": []any{map[string]any{"territory": "US", "date": "2027-07-16"}, map[string]any{"territory": "GB", "date": "2027-07-23"},
					map[string]any{"territory": "DE", "date": "2027-08-06"}}}},
			"budget": []any{map[string]any{"title_id": id, "version": 1, "line_items": lines}},
		})
		evs[i] = sink.Event{Envelope: e, Topic: "studio.title.materialized", Offset: int64(i)}
	}
	return evs
}

const (
	gqlTitleQuery = `query($id: ID!) { title(id: $id) { id name kind status releaseDate version freshness
		schedule { productionStart productionEnd releases { territory date } version }
		budget { lineItems { category amount currency } version } } }`
	gqlSearchQuery = `query($q: String) { titles(search: $q, first: 10) {
		edges { cursor node { id name status releaseDate version } } pageInfo { hasNextPage endCursor } } }`
)

// latencies collects per-query latencies of one side across rounds.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d []time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d...)
	l.mu.Unlock()
}

// clients runs n queries from gqlClients goroutines, query i calling
// fn(i), and records each one's latency in l.
func clients(n int, l *latencies, fn func(i int) error) error {
	return fanOut(n, gqlClients, func(lo, hi int) error {
		d := make([]time.Duration, 0, hi-lo)
		for i := lo; i < hi; i++ {
			start := time.Now()
			if err := fn(i); err != nil {
				return err
			}
			d = append(d, time.Since(start))
		}
		l.add(d)
		return nil
	})
}

// BenchmarkGraphQL measures the GraphQL API of the title view over HTTP
// (loopback, keep-alive connections, the answer decoded) against the
// lookup it wraps, the bleve sink's Get and Search called directly, in
// the same rounds: title(id) with the title's schedule and budget against
// Sink.Get, and titles(search, first: 10) of one name word against
// Sink.Search of the same query string for 11 hits (what the resolver
// asks for). A third side, http, serves the same lookups as plain JSON
// over the same HTTP stack, which splits the gap into HTTP and JSON on
// one side and GraphQL on the other. Each op is one round per
// sub-benchmark, gqlClients concurrent clients per side; it reports each
// side's queries/s (as <side>-rec/s), p50 and p99 latencies, and the
// median per-round ratios.
func BenchmarkGraphQL(b *testing.B) {
	ctx := context.Background()
	sk, err := bleve.New(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = sk.Close(ctx) })
	evs := gqlTitleEvents()
	for lo := 0; lo < len(evs); lo += 500 {
		if err := sk.Write(ctx, evs[lo:min(lo+500, len(evs))]); err != nil {
			b.Fatal(err)
		}
	}
	srv, err := graphql.New(graphql.Config{Titles: graphql.Bleve(sk), CashFlows: graphql.Bleve(sk)})
	if err != nil {
		b.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	b.Cleanup(hs.Close)
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: gqlClients}}
	b.Cleanup(hc.CloseIdleConnections)

	// post sends a query and decodes the answer; it fails on GraphQL
	// errors and on an answer without data.
	post := func(q string, vars map[string]any, check func(data map[string]any) error) error {
		body, _ := json.Marshal(map[string]any{"query": q, "variables": vars})
		res, err := hc.Post(hs.URL+"/query", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		defer res.Body.Close()
		var r struct {
			Data   map[string]any    `json:"data"`
			Errors []json.RawMessage `json:"errors"`
		}
		if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
			return err
		}
		if res.StatusCode != http.StatusOK || len(r.Errors) > 0 {
			return fmt.Errorf("%s: %s", res.Status, r.Errors)
		}
		return check(r.Data)
	}
	// A plain JSON endpoint over the same sink, through the same HTTP
	// stack and client: what is left between it and graphql is gqlgen's
	// parsing, validation, execution and the view's mapping.
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var out any
		var err error
		if q := r.URL.Query(); q.Has("id") {
			var doc map[string]any
			doc, _, _, err = sk.Get(r.Context(), "title", q.Get("id"))
			out = doc
		} else {
			var hits []bleve.Hit
			hits, err = sk.Search(r.Context(), "title", q.Get("q"), 11)
			out = hits[:min(10, len(hits))]
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(out)
	}))
	b.Cleanup(plain.Close)
	getJSON := func(path string, check func(v any) error) error {
		res, err := hc.Get(plain.URL + path)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		var v any
		if err := json.NewDecoder(res.Body).Decode(&v); err != nil {
			return err
		}
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s", path, res.Status)
		}
		return check(v)
	}
	id := func(i int) string { return fmt.Sprintf("title-%04d", (i*7919)%gqlTitles) }

	compare := func(b *testing.B, perRound int, store, plainJSON, gql func(i int) error) {
		fns := []func(int) error{store, plainJSON, gql}
		names := []string{"store", "http", "graphql"}
		lat := make([]latencies, len(fns))
		// One untimed pass of each side: connections, the query cache and
		// Bleve's merges of the freshly written segments settle first.
		for k, fn := range fns {
			if err := clients(perRound, &lat[k], fn); err != nil {
				b.Fatalf("%s: %v", names[k], err)
			}
			lat[k].d = nil
		}
		var sides []side
		for k, fn := range fns {
			sides = append(sides, side{names[k], func() error { return clients(perRound, &lat[k], fn) }})
		}
		rs := runRounds(b, perRound, sides)
		for k, n := range names {
			b.ReportMetric(float64(pct(lat[k].d, 0.5).Microseconds())/1000, n+"-p50-ms")
			b.ReportMetric(float64(pct(lat[k].d, 0.99).Microseconds())/1000, n+"-p99-ms")
		}
		b.ReportMetric(rs.ratio(2, 0), "graphql/store")
		b.ReportMetric(rs.ratio(1, 0), "http/store")
		b.ReportMetric(rs.ratio(2, 1), "graphql/http")
	}

	b.Run("title", func(b *testing.B) {
		compare(b, gqlGets, func(i int) error {
			doc, _, found, err := sk.Get(ctx, "title", id(i))
			if err == nil && (!found || doc["id"] != id(i)) {
				err = fmt.Errorf("get %s: found %v, %v", id(i), found, doc["id"])
			}
			return err
		}, func(i int) error {
			return getJSON("/?id="+id(i), func(v any) error {
				if doc, _ := v.(map[string]any); doc == nil || doc["id"] != id(i) {
					return fmt.Errorf("GET id=%s: %v", id(i), v)
				}
				return nil
			})
		}, func(i int) error {
			return post(gqlTitleQuery, map[string]any{"id": id(i)}, func(data map[string]any) error {
				if t, _ := data["title"].(map[string]any); t == nil || t["id"] != id(i) {
					return fmt.Errorf("title(%s): %v", id(i), data)
				}
				return nil
			})
		})
	})
	b.Run("titles", func(b *testing.B) {
		compare(b, gqlSearches, func(i int) error {
			hits, err := sk.Search(ctx, "title", "+name:"+gqlWord(i), 11)
			if err == nil && len(hits) != 11 {
				err = fmt.Errorf("search name:%s: %d hits, want 11", gqlWord(i), len(hits))
			}
			return err
		}, func(i int) error {
			return getJSON("/?q=%2Bname:"+gqlWord(i), func(v any) error {
				if hits, _ := v.([]any); len(hits) != 10 {
					return fmt.Errorf("GET q=+name:%s: %v", gqlWord(i), v)
				}
				return nil
			})
		}, func(i int) error {
			return post(gqlSearchQuery, map[string]any{"q": "name:" + gqlWord(i)}, func(data map[string]any) error {
				conn, _ := data["titles"].(map[string]any)
				if edges, _ := conn["edges"].([]any); len(edges) != 10 {
					return fmt.Errorf("titles(name:%s): %v", gqlWord(i), data)
				}
				return nil
			})
		})
	})
}
