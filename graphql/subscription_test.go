package graphql_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	coderws "github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/consumer/sink/bleve"
	"github.com/slatehq/slate/consumer/sink/sinktest"
	"github.com/slatehq/slate/graphql"
	"github.com/slatehq/slate/internal/gqlws"
	"github.com/slatehq/slate/schema"
)

// chanFeed publishes the changes sent on it.
type chanFeed chan graphql.Change

func (f chanFeed) Run(ctx context.Context, hub *graphql.Hub) error {
	hub.Live()
	for {
		select {
		case <-ctx.Done():
			return nil
		case c := <-f:
			hub.Publish(c)
		}
	}
}

// feedServer serves a bleve store and a feed; Run runs until the test
// ends.
func feedServer(t *testing.T, cfg graphql.Config) (*httptest.Server, *bleve.Sink, chanFeed, *prometheus.Registry) {
	t.Helper()
	sk, err := bleve.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sk.Close(context.Background()) })
	feed := make(chanFeed)
	reg := prometheus.NewRegistry()
	cfg.Titles, cfg.CashFlows, cfg.Registerer, cfg.Feed = graphql.Bleve(sk), graphql.Bleve(sk), reg, feed
	srv, err := graphql.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	return hs, sk, feed, reg
}

func dial(t *testing.T, url string) *gqlws.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := gqlws.Dial(ctx, url+"/query", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func next(t *testing.T, c *gqlws.Conn) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Errors) > 0 {
		t.Fatalf("errors: %v", r.Errors)
	}
	return r.Data
}

const titleSub = `subscription($id: ID!) { titleChanged(id: $id) { id name releaseDate version deleted } }`

func subTitleDoc(id, name, release string) map[string]any {
	return map[string]any{"id": id, "name": name, "release_date": release, bleve.EnvelopeField: map[string]any{"time": time.Now().UTC().Format(time.RFC3339Nano)}}
}

// A subscription gets the view as the store has it, then each newer
// change the feed publishes, skipping older and repeated versions, then a
// deletion; a second subscription on the same connection gets another
// view's changes.
func TestSubscriptionStream(t *testing.T) {
	hs, sk, feed, reg := feedServer(t, graphql.Config{})
	if err := sk.Write(t.Context(), []sink.Event{sinktest.Event(schema.OpCreate, "t-1", 3, map[string]any{"id": "t-1", "name": "Heat", "release_date": "2027-07-16"})}); err != nil {
		t.Fatal(err)
	}
	c := dial(t, hs.URL)
	if err := c.Subscribe(t.Context(), "1", titleSub, map[string]any{"id": "t-1"}); err != nil {
		t.Fatal(err)
	}
	got := next(t, c)["titleChanged"].(map[string]any)
	if got["version"] != "3" || got["releaseDate"] != "2027-07-16" || got["deleted"] != false {
		t.Fatalf("first event %v, want the stored view at version 3", got)
	}
	feed <- graphql.Change{View: "title", ID: "t-1", Version: 2, Doc: subTitleDoc("t-1", "Heat", "2027-01-01")}
	feed <- graphql.Change{View: "title", ID: "t-1", Version: 3, Doc: subTitleDoc("t-1", "Heat", "2027-07-16")}
	feed <- graphql.Change{View: "title", ID: "t-2", Version: 9, Doc: subTitleDoc("t-2", "Other", "2027-01-01")}
	feed <- graphql.Change{View: "title", ID: "t-1", Version: 5, Doc: subTitleDoc("t-1", "Heat", "2027-06-10"), Produced: time.Now()}
	got = next(t, c)["titleChanged"].(map[string]any)
	if got["version"] != "5" || got["releaseDate"] != "2027-06-10" {
		t.Fatalf("second event %v, want version 5 with the June date", got)
	}
	feed <- graphql.Change{View: "title", ID: "t-1", Version: 6, Deleted: true}
	got = next(t, c)["titleChanged"].(map[string]any)
	if got["version"] != "6" || got["deleted"] != true || got["id"] != "t-1" {
		t.Fatalf("deletion event %v", got)
	}

	// A cash flow that does not exist yet: no first event, then its change.
	if err := c.Subscribe(t.Context(), "2", `subscription { cashFlowChanged(titleId: "t-1") { titleId total version months { month amount } } }`, nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return value(t, reg, "slate_graphql_subscribers") == 2 }, "the cash flow subscription")
	feed <- graphql.Change{View: "cashflow", ID: "t-1", Version: 1, Doc: map[string]any{"title_id": "t-1", "total": "100",
		"months": []any{map[string]any{"month": "2027-05", "amount": "100"}}}}
	got = next(t, c)["cashFlowChanged"].(map[string]any)
	if got["total"] != "100" || got["version"] != "1" || len(got["months"].([]any)) != 1 {
		t.Fatalf("cash flow event %v", got)
	}
	if err := c.Complete(t.Context(), "2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return value(t, reg, "slate_graphql_subscribers") == 1 }, "the completed subscription to leave the hub")
}

// A client that stops reading is dropped: once it reads again, its
// subscription ends with an error saying it was too slow, and the
// dropped counter counts it.
func TestSlowSubscriptionEndsWithError(t *testing.T) {
	hs, _, feed, reg := feedServer(t, graphql.Config{SubscriberBuffer: 1})
	c := dial(t, hs.URL)
	if err := c.Subscribe(t.Context(), "slow", titleSub, map[string]any{"id": "t-1"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return value(t, reg, "slate_graphql_subscribers") == 1 }, "the subscription")
	// Far more than the connection's buffers hold, while the client reads
	// nothing.
	big := strings.Repeat("x", 4096)
	for v := int64(1); value(t, reg, "slate_graphql_subscribers_dropped_total") == 0; v++ {
		if v > 100_000 {
			t.Fatal("never dropped")
		}
		feed <- graphql.Change{View: "title", ID: "t-1", Version: v, Doc: subTitleDoc("t-1", big, "2027-06-10")}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		_, err := c.Next(ctx)
		if err == nil {
			continue
		}
		if !errors.Is(err, gqlws.ErrEnded) || !strings.Contains(err.Error(), "titleChanged(t-1): subscriber too slow") {
			t.Fatalf("ended with %v, want the too-slow error", err)
		}
		break
	}
	if v := value(t, reg, "slate_graphql_subscribers"); v != 0 {
		t.Errorf("subscribers gauge %v after the drop", v)
	}
}

// Subscriptions over plain HTTP, or on a server without a feed, are
// errors naming why.
func TestSubscriptionRefused(t *testing.T) {
	hs, _, _, _ := feedServer(t, graphql.Config{})
	r := query(t, hs.URL, titleSub, map[string]any{"id": "t-1"})
	if len(r.Errors) == 0 || !strings.Contains(r.Errors[0].Message, "subscriptions are served over a websocket") {
		t.Errorf("subscription over POST: %+v", r)
	}
	plain, _ := newServer(t, graphql.Config{})
	c := dial(t, plain.URL)
	if err := c.Subscribe(t.Context(), "1", titleSub, map[string]any{"id": "t-1"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	res, err := c.Next(ctx)
	if err == nil && (len(res.Errors) == 0 || !strings.Contains(res.Errors[0]["message"].(string), "the server has no change feed")) {
		t.Errorf("subscription without a feed: %+v", res)
	}
	if err != nil && !strings.Contains(err.Error(), "the server has no change feed") {
		t.Errorf("subscription without a feed: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool, what string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Negative subscription settings are refused, naming them.
func TestNewRefusesBadSubscriptionConfig(t *testing.T) {
	sk, err := bleve.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sk.Close(t.Context())
	st := graphql.Bleve(sk)
	for _, cfg := range []graphql.Config{
		{Titles: st, CashFlows: st, Feed: make(chanFeed), SubscriberBuffer: -1},
		{Titles: st, CashFlows: st, KeepAlive: -time.Second},
	} {
		if _, err := graphql.New(cfg); !errors.Is(err, graphql.ErrConfig) || !strings.Contains(err.Error(), "may not be negative") {
			t.Errorf("New(%+v) = %v, want ErrConfig naming the setting", cfg, err)
		}
	}
}

// A browser page opens a subscription's websocket from the server's own
// origin or from one of the CORS origins; any other origin is refused at
// the handshake.
func TestSubscriptionOrigins(t *testing.T) {
	hs, _, _, _ := feedServer(t, graphql.Config{AllowedOrigins: []string{"https://app.example.com"}})
	ws := "ws" + strings.TrimPrefix(hs.URL, "http") + "/query"
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{hs.URL, true}, {"https://app.example.com", true}, {"", true}, {"https://evil.example.com", false},
	} {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		c, res, err := coderws.Dial(t.Context(), ws, &coderws.DialOptions{HTTPHeader: h, Subprotocols: []string{"graphql-transport-ws"}})
		if c != nil {
			_ = c.CloseNow()
		}
		if ok := err == nil; ok != tc.ok {
			status := 0
			if res != nil {
				status = res.StatusCode
			}
			t.Errorf("Origin %q: handshake err %v (status %d), want ok %v", tc.origin, err, status, tc.ok)
		}
	}
}
