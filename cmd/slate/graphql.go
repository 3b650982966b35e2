package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/slatehq/slate/consumer/sink/es"
	"github.com/slatehq/slate/graphql"
	"github.com/slatehq/slate/internal/stack"
	"github.com/slatehq/slate/schema"
)

// graphqlFlags are the flags of slate up's GraphQL API.
func graphqlFlags(f *pflag.FlagSet, cfg *stack.Config) {
	f.IntVar(&cfg.GraphQLPort, "graphql-port", 8080, "port of the GraphQL API of the title and cashflow views (GraphiQL at /)")
	graphqlLimitFlags(f, &cfg.GraphQL)
}

// graphqlLimitFlags are the settings of a GraphQL server that slate up
// and slate graphql share: its limits and its CORS origins.
func graphqlLimitFlags(f *pflag.FlagSet, g *graphql.Config) {
	f.IntVar(&g.MaxDepth, "graphql-max-depth", graphql.DefaultMaxDepth, "deepest selection a GraphQL operation may have")
	f.IntVar(&g.MaxComplexity, "graphql-max-complexity", graphql.DefaultMaxComplexity, "largest complexity of a GraphQL operation (a page of titles costs its size times its selection)")
	f.IntVar(&g.MaxPageSize, "graphql-max-page-size", graphql.DefaultMaxPageSize, "largest page (first) of titles")
	f.IntVar(&g.MaxWindow, "graphql-max-window", graphql.DefaultMaxWindow, "how deep titles pages (after plus first), and the most titles cashFlowByMonth sums")
	f.DurationVar(&g.MinVersionWait, "graphql-min-version-wait", graphql.DefaultMinVersionWait, "how long a GraphQL query with minVersion waits for the view to reach it")
	f.StringSliceVar(&g.AllowedOrigins, "graphql-cors-origins", nil, "origins whose browser pages may call the GraphQL API (CORS), comma-separated: https://app.example.com, https://*.example.com or *; none answers no cross-origin request")
	f.IntVar(&g.SubscriberBuffer, "graphql-subscriber-buffer", graphql.DefaultSubscriberBuffer, "changes a GraphQL subscription may fall behind before it is dropped")
	f.DurationVar(&g.KeepAlive, "graphql-keepalive", graphql.DefaultKeepAlive, "how often GraphQL websocket clients are pinged (their pong must come within twice that)")
}

// esStartTimeout bounds slate graphql's first request to Elasticsearch.
const esStartTimeout = 10 * time.Second

// graphqlCmd is slate graphql: the GraphQL API of the views, as a process
// of its own, reading them from the Elasticsearch indices the es sink
// writes.
func graphqlCmd() *cobra.Command {
	var (
		addr, prefix, apiKey string
		urls                 []string
		cfg                  graphql.Config
		brokers, registryURL string
		topics, groups       []string
		kf                   kafkaFlags
	)
	cmd := &cobra.Command{
		Use:   "graphql",
		Short: "Serve the GraphQL API of the title and cashflow views from Elasticsearch",
		Long: `slate graphql serves the GraphQL API of the title and cashflow views (GraphiQL at /,
the API at /query, /metrics, and /healthz, 503 while Elasticsearch does not answer) as a
process of its own. It reads the indices the es sink writes (--es-index-prefix + view:
studio-title, studio-cashflow). Inside slate up the same API reads the embedded index instead.

With --brokers, the subscriptions titleChanged and cashFlowChanged are served from the views'
materialized topics (--feed-topics), read by one Kafka client without a group of its own,
starting where the sink pipelines' groups (--feed-groups) are; without it, a subscription is
refused with an error saying so.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := validateAddr("addr", addr); err != nil {
				return err
			}
			if brokers == "" && kf.set() {
				return errors.New("--kafka-* flags are set without --brokers: the subscriptions' feed needs the brokers")
			}
			if brokers != "" {
				if err := kf.validate(brokers); err != nil {
					return err
				}
				if len(topics) == 0 {
					return errors.New("--feed-topics is empty: the subscriptions' feed needs the views' materialized topics")
				}
			}
			if len(urls) == 0 {
				return errors.New("--es-url is required: the Elasticsearch cluster the es sink writes")
			}
			if err := cfg.ValidateLimits(); err != nil {
				return fmt.Errorf("graphql flags: %w", err)
			}
			log, err := newLogger(cmd)
			if err != nil {
				return err
			}
			client, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: urls, APIKey: apiKey})
			if err != nil {
				return fmt.Errorf("--es-url %s: %w", strings.Join(urls, ","), err)
			}
			store := graphql.Elasticsearch(client, prefix)
			pctx, cancel := context.WithTimeout(cmd.Context(), esStartTimeout)
			err = store.Ping(pctx)
			cancel()
			if err != nil {
				return fmt.Errorf("--es-url %s: Elasticsearch does not answer: %w", strings.Join(urls, ","), err)
			}
			reg := prometheus.NewRegistry()
			reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			cfg.Titles, cfg.CashFlows, cfg.Registerer, cfg.Gatherer, cfg.Log = store, store, reg, reg, log
			cfg.Ready = func() error {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				return store.Ping(ctx)
			}
			if brokers != "" {
				k := kf.client(brokers)
				k.ClientID = "slate-graphql"
				opts, err := k.FranzOptions()
				if err != nil {
					return fmt.Errorf("--brokers: %w", err)
				}
				reg, err := schema.NewRegistryClient(registryURL)
				if err != nil {
					return fmt.Errorf("--registry-url: %w", err)
				}
				if cfg.Feed, err = graphql.NewKafkaFeed(graphql.KafkaFeedConfig{Topics: topics, Groups: groups,
					Registry: reg, Client: opts, Log: log}); err != nil {
					return err
				}
			}
			srv, err := graphql.New(cfg)
			if err != nil {
				return fmt.Errorf("graphql flags: %w", err)
			}
			ctx, stop := context.WithCancel(cmd.Context())
			defer stop()
			var feedDone chan error // nil, never ready, without a feed
			if cfg.Feed != nil {
				feedDone = make(chan error, 1)
				go func() { feedDone <- srv.Run(ctx) }()
			}
			lis, err := net.Listen("tcp", addr)
			if err != nil {
				return fmt.Errorf("--addr %s: %w", addr, err)
			}
			// Websockets outlive Shutdown; the end of ctx closes them.
			hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second,
				BaseContext: func(net.Listener) context.Context { return ctx }}
			done := make(chan error, 1)
			go func() { done <- hs.Serve(lis) }()
			fmt.Fprintf(cmd.OutOrStdout(), "GraphQL at http://%s/ (views from Elasticsearch %s, indices %s*)\n",
				lis.Addr(), strings.Join(urls, ","), store.Index(""))
			log.Info("graphql listening", "addr", lis.Addr().String(), "es", strings.Join(urls, ","), "prefix", store.Index(""))
			var ferr error
			select {
			case err := <-done:
				return fmt.Errorf("graphql: %w", err)
			case ferr = <-feedDone:
				// The feed failed: every subscription has ended with its
				// error; stop rather than serve queries without them.
			case <-cmd.Context().Done():
			}
			stop()
			sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			return errors.Join(ferr, hs.Shutdown(sctx))
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", ":8080", "address the GraphQL API listens on (host:port; port 0 picks a free one)")
	f.StringSliceVar(&urls, "es-url", nil, "Elasticsearch URL(s) the views are read from, comma-separated (required)")
	f.StringVar(&prefix, "es-index-prefix", es.DefaultIndexPrefix, "prefix of the views' indices, as the es sink writes them")
	f.StringVar(&apiKey, "es-api-key", "", "Elasticsearch API key (prefer SLATE_ES_API_KEY: flags show in ps)")
	f.StringVar(&brokers, "brokers", "", "Kafka bootstrap servers of the subscriptions' feed (empty: no subscriptions)")
	kf.bind(f)
	f.StringVar(&registryURL, "registry-url", "http://127.0.0.1:8081", "schema registry URL of the feed's records")
	f.StringSliceVar(&topics, "feed-topics", []string{"studio.title.materialized", "studio.cashflow.materialized"},
		"the views' materialized topics the subscriptions are fed from")
	f.StringSliceVar(&groups, "feed-groups", []string{"title-sink", "cashflow-sink"},
		"consumer groups of the sink pipelines that write the views: the feed starts where they are")
	graphqlLimitFlags(f, &cfg)
	return cmd
}

// validateAddr checks that v, the value of flag name, is host:port.
func validateAddr(name, v string) error {
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		return fmt.Errorf("--%s %q: not host:port: %w", name, v, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return fmt.Errorf("--%s %q: port %q is not a number", name, v, port)
	}
	return validatePort(name, n)
}
