package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/hamba/avro/v2"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/consumer/sink/es"
	"github.com/slatehq/slate/consumer/sink/es/estest"
	"github.com/slatehq/slate/consumer/sink/sinktest"
	"github.com/slatehq/slate/internal/gqlws"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

// esCluster is the Elasticsearch slate graphql reads in the tests: the
// cluster at SLATE_ES_URL when set, the in-process double otherwise
// (closeDouble is nil for a real cluster).
func esCluster(t *testing.T, prefix string) (url string, client *elasticsearch.Client, closeDouble func()) {
	t.Helper()
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
		return url, c, nil
	}
	hs := httptest.NewServer(estest.New())
	t.Cleanup(hs.Close)
	c, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{hs.URL}, DisableRetry: true})
	if err != nil {
		t.Fatal(err)
	}
	return hs.URL, c, hs.Close
}

// startGraphQL runs slate graphql with args and returns the URL it
// serves and a channel of its result.
func startGraphQL(t *testing.T, ctx context.Context, args ...string) (string, <-chan error) {
	t.Helper()
	root := newRoot()
	root.SetArgs(append([]string{"graphql", "--addr", "127.0.0.1:0", "--log-level", "error"}, args...))
	pr, pw := io.Pipe()
	root.SetOut(pw)
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx); pw.Close() }()
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
	}()
	select {
	case line := <-lines:
		m := regexp.MustCompile(`http://\S+/`).FindString(line)
		if m == "" {
			t.Fatalf("slate graphql printed %q", line)
		}
		return strings.TrimSuffix(m, "/"), done
	case err := <-done:
		t.Fatalf("slate graphql exited: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("slate graphql did not start")
	}
	return "", nil
}

// slate graphql serves the views the es sink wrote to Elasticsearch, with
// the shared limits and CORS flags, /metrics and a /healthz that follows
// Elasticsearch; Ctrl-C stops it cleanly.
func TestGraphQLCommand(t *testing.T) {
	prefix := fmt.Sprintf("slatetest-%d-", time.Now().UnixNano())
	url, client, closeDouble := esCluster(t, prefix)
	sk, err := es.New(t.Context(), client, es.WithIndexPrefix(prefix), es.WithRefresh("true"))
	if err != nil {
		t.Fatal(err)
	}
	ev := sinktest.Event(schema.OpCreate, "t1", 4, map[string]any{"id": "t1", "name": "Heat", "kind": "FEATURE", "status": "PRODUCTION"})
	cf := sinktest.Event(schema.OpCreate, "t1", 6, map[string]any{"title_id": "t1", "currency": "USD", "total": int64(1<<53 + 1),
		"months": []any{map[string]any{"month": "2027-01", "amount": int64(1<<53 + 1)}}})
	cf.EntityType = "cashflow"
	if err := sk.Write(t.Context(), []sink.Event{ev, cf}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, done := startGraphQL(t, ctx, "--es-url", url, "--es-index-prefix", prefix, "--graphql-max-depth", "4",
		"--graphql-cors-origins", "https://app.example.com")

	post := func(q string) map[string]any {
		b, _ := json.Marshal(map[string]any{"query": q})
		res, err := http.Post(base+"/query", "application/json", strings.NewReader(string(b)))
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var r map[string]any
		if err := json.NewDecoder(res.Body).Decode(&r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := post(`{ title(id: "t1") { name version cashFlow { total } } cashFlowByMonth(from: "2027-01", to: "2027-01") { titles months { amount } } }`)
	data, _ := r["data"].(map[string]any)
	ti, _ := data["title"].(map[string]any)
	if ti == nil || ti["name"] != "Heat" || ti["version"] != "4" || ti["cashFlow"].(map[string]any)["total"] != "9007199254740993" {
		t.Fatalf("answer %v", r)
	}
	if m := data["cashFlowByMonth"].(map[string]any)["months"].([]any)[0].(map[string]any); m["amount"] != "9007199254740993" {
		t.Errorf("roll-up %v", data["cashFlowByMonth"])
	}
	if r := post(`{ titles { edges { node { schedule { releases { date } } } } } }`); !strings.Contains(fmt.Sprint(r["errors"]), "exceeds the limit of 4 (MaxDepth)") {
		t.Errorf("--graphql-max-depth 4: %v", r)
	}

	req, _ := http.NewRequest(http.MethodOptions, base+"/query", nil)
	req.Header.Set("Origin", "https://app.example.com")
	req.Header.Set("Access-Control-Request-Method", "POST")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get("Access-Control-Allow-Origin") != "https://app.example.com" {
		t.Errorf("preflight: %d %v", res.StatusCode, res.Header)
	}

	get := func(path string) (int, string) {
		res, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, `slate_graphql_operation_duration_seconds_count{operation="cashFlowByMonth,title"} 1`) ||
		!strings.Contains(body, "go_goroutines") {
		t.Errorf("/metrics: %d %.500s", code, body)
	}
	if code, body := get("/healthz"); code != 200 {
		t.Errorf("/healthz: %d %s", code, body)
	}
	if closeDouble != nil {
		closeDouble()
		if code, body := get("/healthz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "not ready") {
			t.Errorf("/healthz with Elasticsearch gone: %d %s", code, body)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("slate graphql stopped with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("slate graphql did not stop")
	}
}

// A bad flag or an Elasticsearch that does not answer fails slate graphql
// at once, naming what was wrong.
func TestGraphQLCommandBadFlags(t *testing.T) {
	// SLATE_ES_URL, a cluster for the tests, is also --es-url's variable.
	t.Setenv("SLATE_ES_URL", "")
	os.Unsetenv("SLATE_ES_URL")
	gone := httptest.NewServer(nil)
	goneURL := gone.URL
	gone.Close()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--addr", "8080"}, `--addr "8080": not host:port`},
		{[]string{"--addr", ":99999", "--es-url", "http://127.0.0.1:1"}, "--addr 99999: must be a port"},
		{nil, "--es-url is required"},
		{[]string{"--es-url", goneURL}, "--es-url " + goneURL + ": Elasticsearch does not answer"},
		{[]string{"--es-url", "http://127.0.0.1:1", "--graphql-max-depth", "-1"}, "MaxDepth -1 is negative"},
		{[]string{"--es-url", "http://127.0.0.1:1", "--graphql-cors-origins", "app.example.com"}, `AllowedOrigins: "app.example.com" is not an origin`},
		{[]string{"--es-url", "http://127.0.0.1:1", "--graphql-min-version-wait", "-1s"}, "--graphql-min-version-wait -1s: must not be negative"},
		{[]string{"--es-url", "http://127.0.0.1:1", "--kafka-sasl-user", "u"}, "--kafka-* flags are set without --brokers"},
		{[]string{"--es-url", "http://127.0.0.1:1", "--brokers", "127.0.0.1:1", "--kafka-sasl-user", "u"}, "--kafka-sasl-password"},
		{[]string{"--es-url", "http://127.0.0.1:1", "--brokers", "127.0.0.1:1", "--feed-topics", ""}, "--feed-topics is empty"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			err := execute(context.Background(), append([]string{"graphql", "--log-level", "error"}, tc.args...))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("slate graphql %v = %v, want an error with %q", tc.args, err, tc.want)
			}
		})
	}
}

// slate up takes the CORS origins too, and refuses a bad one before it
// starts anything.
func TestGraphQLCORSFlagOfUp(t *testing.T) {
	err := execute(context.Background(), []string{"up", "--data-dir", t.TempDir() + "/data", "--graphql-cors-origins", "https://a.example/x", "--log-level", "error"})
	if err == nil || !strings.Contains(err.Error(), `AllowedOrigins: "https://a.example/x" is not an origin`) {
		t.Errorf("slate up --graphql-cors-origins https://a.example/x = %v", err)
	}
}

// With --brokers, slate graphql serves subscriptions from the views'
// materialized topics: a title written to Elasticsearch arrives as it is
// there, and a newer record on studio.title.materialized follows.
// Without --brokers a subscription is refused, saying why.
func TestGraphQLCommandSubscriptions(t *testing.T) {
	env := testenv.Start(t, "//studio/enricher")
	topic := "studio.title.materialized"
	testenv.CreateTopics(t, env.Brokers, 1, topic, "studio.cashflow.materialized")
	prefix := fmt.Sprintf("slatetest-%d-", time.Now().UnixNano())
	url, client, _ := esCluster(t, prefix)
	sk, err := es.New(t.Context(), client, es.WithIndexPrefix(prefix), es.WithRefresh("true"))
	if err != nil {
		t.Fatal(err)
	}
	if err := sk.Write(t.Context(), []sink.Event{sinktest.Event(schema.OpCreate, "t1", 4,
		map[string]any{"id": "t1", "name": "Heat", "kind": "FEATURE", "status": "PRODUCTION", "release_date": "2027-07-16"})}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const sub = `subscription { titleChanged(id: "t1") { name releaseDate version } }`

	// Without a feed.
	offCtx, stopOff := context.WithCancel(ctx)
	base, offDone := startGraphQL(t, offCtx, "--es-url", url, "--es-index-prefix", prefix)
	c, err := gqlws.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/query", nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Subscribe(ctx, "1", sub, nil); err != nil {
		t.Fatal(err)
	}
	if r, err := c.Next(ctx); !strings.Contains(fmt.Sprint(err, r.Errors), "subscriptions are off") {
		t.Errorf("a subscription without --brokers: %v %v, want it refused", r.Errors, err)
	}
	_ = c.Close()
	stopOff()
	<-offDone

	base, done := startGraphQL(t, ctx, "--es-url", url, "--es-index-prefix", prefix,
		"--brokers", env.Brokers, "--registry-url", env.RegistryURL, "--feed-groups", "")
	c, err = gqlws.Dial(ctx, strings.Replace(base, "http", "ws", 1)+"/query", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Subscribe(ctx, "1", sub, nil); err != nil {
		t.Fatal(err)
	}
	next := func() map[string]any {
		t.Helper()
		r, err := c.Next(ctx)
		if err != nil || len(r.Errors) > 0 {
			t.Fatalf("next: %v %v", r.Errors, err)
		}
		tc, _ := r.Data["titleChanged"].(map[string]any)
		return tc
	}
	if got := next(); got["version"] != "4" || got["releaseDate"] != "2027-07-16" {
		t.Fatalf("first event %v, want the stored view at version 4", got)
	}
	e := schema.NewEnvelope("//studio/enricher", schema.OpUpdate, "title", "t1")
	e.Sequence = 5
	titleSchema := avro.MustParse(`{"type": "record", "name": "Title", "namespace": "test.graphql", "fields": [
		{"name": "id", "type": "string"}, {"name": "name", "type": "string"}, {"name": "release_date", "type": "string"}]}`)
	if e.Data, e.DataSchema, err = schema.EncodeData(ctx, env.Registry, "test.graphql.Title", titleSchema,
		map[string]any{"id": "t1", "name": "Heat", "release_date": "2027-06-10"}); err != nil {
		t.Fatal(err)
	}
	e.DataContentType = schema.ContentTypeAvro
	// The first event comes once the feed is live: the change follows it.
	if err := env.Producer.Publish(ctx, topic, e); err != nil {
		t.Fatal(err)
	}
	if g := next(); g["version"] != "5" || g["releaseDate"] != "2027-06-10" {
		t.Fatalf("change %v, want the June release at version 5", g)
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("slate graphql stopped with %v", err)
	}
}
