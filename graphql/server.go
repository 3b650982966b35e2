// Package graphql serves the studio's materialized views over GraphQL: the
// title view (a title with its schedule and budget) and the cashflow view
// (a title's monthly spend), read from a [Store]: the embedded bleve index
// the sink pipelines write ([Bleve], inside slate up) or the Elasticsearch
// indices the es sink writes ([Elasticsearch], slate graphql). Documents
// are read with their integers exact, and cashFlowByMonth sums them
// exactly or fails (see rollup.go).
//
// Nested fields that read another view (Title.cashFlow) load through a
// per-operation dataloader: the titles of a page read their cash flows in
// one [Store.GetMany]. [Config.AllowedOrigins] answers browsers' CORS
// requests from those origins.
//
// The schema is schema.graphqls; gqlgen generates generated.go and
// models_gen.go from it (go generate ./graphql) and resolver.go answers
// its queries. A [Server] serves GraphiQL at /, the API at /query,
// per-operation metrics at /metrics and /healthz.
//
// Every view object has a version, the view's sequence. A client that
// changed a source record passes the version it expects as minVersion and
// the server waits, up to [Config.MinVersionWait], until the view has
// caught up, so the client reads its own write without polling.
//
// Operations are bounded: their depth ([Config.MaxDepth]), their
// complexity ([Config.MaxComplexity], where a page of titles costs its size
// times its selection) and the size of a page ([Config.MaxPageSize]). Going
// over any of them is a GraphQL error that names the limit.
//
// With a [Feed] (Config.Feed; [KafkaFeed] reads the materialized topics)
// the server also serves subscriptions, titleChanged and cashFlowChanged,
// over websockets at /query (graphql-transport-ws): [Server.Run] runs the
// feed into a [Hub] that fans each change out to the subscribers of its
// document and drops those that fall behind (see subscription.go).
package graphql

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	gqlgen "github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/slatehq/slate/graphql/gen"
)

// The defaults of [Config]'s limits.
const (
	DefaultMaxDepth       = 10
	DefaultMaxComplexity  = 5000
	DefaultMaxPageSize    = 100
	DefaultPageSize       = 10
	DefaultMaxWindow      = 10000
	DefaultMinVersionWait = 5 * time.Second
	// MaxRequestBytes is the largest request body /query reads.
	MaxRequestBytes = 1 << 20
	// DefaultTitleView and DefaultCashFlowView are the entity types of
	// the two views in their stores.
	DefaultTitleView    = "title"
	DefaultCashFlowView = "cashflow"
)

// ErrConfig is wrapped by [New] when a setting cannot work.
var ErrConfig = errors.New("graphql: invalid config")

// Config is what a [Server] reads and how far it lets an operation go.
// Zero limits take their defaults.
type Config struct {
	// Titles holds the title view, CashFlows the cashflow view; both are
	// required (they may be the same store).
	Titles    Store
	CashFlows Store
	// TitleView and CashFlowView are the views' entity types in their
	// stores (default "title" and "cashflow").
	TitleView    string
	CashFlowView string
	// MaxDepth is the deepest selection an operation may have (default
	// 10); introspection fields (__schema, __type) do not count, so
	// GraphiQL can read the schema.
	MaxDepth int
	// MaxComplexity bounds gqlgen's complexity of an operation (default
	// 5000): one per field, a page of titles its size times its selection.
	MaxComplexity int
	// MaxPageSize is the largest first of titles (default 100).
	MaxPageSize int
	// MaxWindow is how deep titles pages: after plus first may not go
	// past it (default 10000).
	MaxWindow int
	// MinVersionWait is how long a query with minVersion waits for the
	// view to reach it (default 5s).
	MinVersionWait time.Duration
	// Registerer takes the server's metrics; nil keeps them in a registry
	// of the server's own. /metrics serves Gatherer, or Registerer when it
	// is also a Gatherer (a *prometheus.Registry).
	Registerer prometheus.Registerer
	Gatherer   prometheus.Gatherer
	// AllowedOrigins are the origins whose browser pages may call the API
	// (CORS): "https://app.example.com", "https://*.example.com" or "*".
	// None answers no cross-origin request.
	AllowedOrigins []string
	// Ready, if set, is what /healthz reports: nil is ready.
	Ready func() error
	Log   *slog.Logger
	// Feed, if set, serves subscriptions (titleChanged, cashFlowChanged)
	// over websockets at /query; [Server.Run] runs it. SubscriberBuffer
	// is how many changes a subscription may fall behind before it is
	// dropped (default [DefaultSubscriberBuffer]); KeepAlive how often
	// websocket clients are pinged (default [DefaultKeepAlive]).
	Feed             Feed
	SubscriberBuffer int
	KeepAlive        time.Duration
	hub              *Hub // the subscriptions of Feed
}

// ValidateLimits reports the first limit that is negative (it wraps
// [ErrConfig]).
func (c *Config) ValidateLimits() error {
	for _, l := range []struct {
		name string
		v    int
	}{
		{"MaxDepth", c.MaxDepth}, {"MaxComplexity", c.MaxComplexity}, {"MaxPageSize", c.MaxPageSize}, {"MaxWindow", c.MaxWindow},
	} {
		if l.v < 0 {
			return fmt.Errorf("%w: %s %d is negative", ErrConfig, l.name, l.v)
		}
	}
	if c.MinVersionWait < 0 {
		return fmt.Errorf("%w: MinVersionWait %s is negative", ErrConfig, c.MinVersionWait)
	}
	if c.SubscriberBuffer < 0 || c.KeepAlive < 0 {
		return fmt.Errorf("%w: SubscriberBuffer %d and KeepAlive %s may not be negative", ErrConfig, c.SubscriberBuffer, c.KeepAlive)
	}
	return validateOrigins(c.AllowedOrigins)
}

// Server is the GraphQL API of the views, an http.Handler.
type Server struct {
	cfg     Config
	mux     *http.ServeMux
	handler http.Handler // mux behind CORS
	latency *prometheus.HistogramVec
	errs    *prometheus.CounterVec
	reqs    *prometheus.CounterVec
}

// New returns a server of cfg's views; it registers its metrics on
// cfg.Registerer.
func New(cfg Config) (*Server, error) {
	if cfg.Titles == nil || cfg.CashFlows == nil {
		return nil, fmt.Errorf("%w: Titles and CashFlows stores are required", ErrConfig)
	}
	if err := cfg.ValidateLimits(); err != nil {
		return nil, err
	}
	for _, l := range []struct {
		v   *int
		def int
	}{
		{&cfg.MaxDepth, DefaultMaxDepth}, {&cfg.MaxComplexity, DefaultMaxComplexity},
		{&cfg.MaxPageSize, DefaultMaxPageSize}, {&cfg.MaxWindow, DefaultMaxWindow},
	} {
		if *l.v == 0 {
			*l.v = l.def
		}
	}
	if cfg.MinVersionWait == 0 {
		cfg.MinVersionWait = DefaultMinVersionWait
	}
	if cfg.TitleView == "" {
		cfg.TitleView = DefaultTitleView
	}
	if cfg.CashFlowView == "" {
		cfg.CashFlowView = DefaultCashFlowView
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Registerer == nil {
		reg := prometheus.NewRegistry()
		cfg.Registerer, cfg.Gatherer = reg, reg
	}
	if cfg.Gatherer == nil {
		g, ok := cfg.Registerer.(prometheus.Gatherer)
		if !ok {
			return nil, fmt.Errorf("%w: Registerer %T is no Gatherer; set Gatherer for /metrics", ErrConfig, cfg.Registerer)
		}
		cfg.Gatherer = g
	}
	if cfg.Feed != nil {
		var err error
		if cfg.hub, err = NewHub(cfg.SubscriberBuffer, cfg.Registerer); err != nil {
			return nil, err
		}
	}

	s := &Server{cfg: cfg,
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "slate_graphql_operation_duration_seconds",
			Help:    "Time to answer a GraphQL operation, by its root fields (invalid: it did not parse or validate).",
			Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, []string{"operation"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "slate_graphql_operation_errors_total",
			Help: "GraphQL operations answered with errors, by their root fields."}, []string{"operation"}),
		reqs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "slate_graphql_requests_total",
			Help: "HTTP requests to /query, by status code."}, []string{"code"}),
	}
	for _, c := range []prometheus.Collector{s.latency, s.errs, s.reqs} {
		if err := cfg.Registerer.Register(c); err != nil {
			return nil, fmt.Errorf("graphql: metrics: %w", err)
		}
	}

	es := gen.NewExecutableSchema(schemaConfig(cfg))
	gql := handler.New(es)
	gql.AddTransport(transport.Options{})
	gql.AddTransport(transport.GET{})
	gql.AddTransport(transport.POST{})
	gql.AddTransport(websocket(cfg))
	gql.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	gql.Use(extension.Introspection{})
	gql.Use(websocketSubscriptions{})
	gql.Use(depthLimit{max: cfg.MaxDepth})
	gql.Use(extension.FixedComplexityLimit(cfg.MaxComplexity))
	gql.AroundResponses(s.measure)
	gql.AroundOperations(withLoaders(cfg))

	s.mux = http.NewServeMux()
	mountGraphiQL(s.mux, "query")
	s.mux.Handle("/query", promhttp.InstrumentHandlerCounter(s.reqs, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBytes)
		gql.ServeHTTP(w, r)
	})))
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(cfg.Gatherer, promhttp.HandlerOpts{}))
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if cfg.Ready != nil {
			if err := cfg.Ready(); err != nil {
				http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
				return
			}
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	s.handler = withCORS(cfg.AllowedOrigins, s.mux)
	return s, nil
}

// schemaConfig is the generated schema's configuration: cfg's resolvers
// and the complexity of a page of titles.
func schemaConfig(cfg Config) gen.Config {
	c := gen.Config{Resolvers: root{&resolver{cfg: cfg}}}
	// A page of titles costs its size times what each edge selects. A
	// first past MaxPageSize costs as much as MaxPageSize does, so that
	// the answer names the page size limit rather than the complexity.
	c.Complexity.Query.Titles = func(child int, _, _, _, _ *string, first *int, _ *string) int {
		n := DefaultPageSize
		if first != nil && *first > 0 {
			n = min(*first, cfg.MaxPageSize)
		}
		return 1 + n*child
	}
	// A roll-up reads every title's cash flow: it costs RollupComplexity.
	c.Complexity.Query.CashFlowByMonth = func(child int, _, _ string, _ *string) int { return RollupComplexity + child }
	return c
}

// ServeHTTP serves GraphiQL at /, the API at /query, /metrics and
// /healthz.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.handler.ServeHTTP(w, r) }

// measure records an operation's latency, and its errors, by its root
// fields.
func (s *Server) measure(ctx context.Context, next gqlgen.ResponseHandler) *gqlgen.Response {
	start := time.Now()
	op := "invalid"
	if gqlgen.HasOperationContext(ctx) {
		oc := gqlgen.GetOperationContext(ctx)
		if !oc.Stats.OperationStart.IsZero() {
			start = oc.Stats.OperationStart
		}
		if oc.Operation != nil {
			op = rootFields(oc.Operation.SelectionSet)
			if oc.Operation.Operation == ast.Subscription {
				return next(ctx) // an event, measured by the hub's metrics
			}
		}
	}
	resp := next(ctx)
	s.latency.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if resp != nil && len(resp.Errors) > 0 {
		s.errs.WithLabelValues(op).Inc()
	}
	return resp
}

// rootFields names an operation by its root fields, sorted: a label the
// schema bounds, unlike the client's operation name.
func rootFields(set ast.SelectionSet) string {
	var names []string
	var walk func(ast.SelectionSet)
	walk = func(set ast.SelectionSet) {
		for _, sel := range set {
			switch sel := sel.(type) {
			case *ast.Field:
				names = append(names, sel.Name)
			case *ast.InlineFragment:
				walk(sel.SelectionSet)
			case *ast.FragmentSpread:
				if sel.Definition != nil {
					walk(sel.Definition.SelectionSet)
				}
			}
		}
	}
	walk(set)
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) == 0 {
		return "invalid"
	}
	return strings.Join(names, ",")
}

// depthLimit refuses operations nested deeper than max.
type depthLimit struct{ max int }

var _ interface {
	gqlgen.OperationContextMutator
	gqlgen.HandlerExtension
} = depthLimit{}

func (depthLimit) ExtensionName() string                  { return "DepthLimit" }
func (depthLimit) Validate(gqlgen.ExecutableSchema) error { return nil }

func (d depthLimit) MutateOperationContext(_ context.Context, oc *gqlgen.OperationContext) *gqlerror.Error {
	if oc.Operation == nil {
		return nil
	}
	if n := depth(oc.Operation.SelectionSet, 0); n > d.max {
		err := gqlerror.Errorf("operation has depth %d, which exceeds the limit of %d (MaxDepth)", n, d.max)
		err.Extensions = map[string]any{"code": "DEPTH_LIMIT_EXCEEDED"}
		return err
	}
	return nil
}

// depth is the deepest field under set; seen guards against fragment
// cycles (which validation refuses anyway).
func depth(set ast.SelectionSet, seen int) int {
	if seen > 1000 {
		return seen
	}
	most := 0
	for _, sel := range set {
		var n int
		switch sel := sel.(type) {
		case *ast.Field:
			if strings.HasPrefix(sel.Name, "__") {
				continue // introspection
			}
			n = 1 + depth(sel.SelectionSet, seen+1)
		case *ast.InlineFragment:
			n = depth(sel.SelectionSet, seen+1)
		case *ast.FragmentSpread:
			if sel.Definition != nil {
				n = depth(sel.Definition.SelectionSet, seen+1)
			}
		}
		most = max(most, n)
	}
	return most
}
