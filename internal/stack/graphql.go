package stack

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/slatehq/slate/consumer/sink/bleve"
	"github.com/slatehq/slate/graphql"
)

// The sink pipelines whose bleve indexes the GraphQL API reads.
const (
	titleViewSink    = "title-sink"
	cashflowViewSink = "cashflow-sink"
)

// startGraphQL serves the GraphQL API of the title and cashflow views on
// 127.0.0.1:GraphQLPort, reading the bleve sinks of their pipelines, with
// its metrics among the stack's. Pipelines without both views (a
// --config of other pipelines) leave it off.
func (s *Stack) startGraphQL(ctx context.Context) error {
	if s.cfg.GraphQLPort < 0 {
		return fmt.Errorf("stack: graphql port %d is negative", s.cfg.GraphQLPort)
	}
	titles, ok1 := s.Runner.Sink(titleViewSink, "bleve")
	cashflows, ok2 := s.Runner.Sink(cashflowViewSink, "bleve")
	ts, ok3 := titles.(*bleve.Sink)
	cs, ok4 := cashflows.(*bleve.Sink)
	if !ok1 || !ok2 || !ok3 || !ok4 {
		s.cfg.Log.Info("graphql off: the pipelines have no bleve sinks of both views", "title", titleViewSink, "cashflow", cashflowViewSink)
		return nil
	}
	gc := s.cfg.GraphQL
	gc.Titles, gc.CashFlows = graphql.Bleve(ts), graphql.Bleve(cs)
	gc.Registerer, gc.Gatherer, gc.Ready, gc.Log = s.metrics, s.metrics, s.Runner.Ready, s.cfg.Log
	feed, err := s.graphqlFeed()
	if err != nil {
		return err
	}
	gc.Feed = feed
	srv, err := graphql.New(gc)
	if err != nil {
		return fmt.Errorf("stack: graphql: %w", err)
	}
	s.group.Go(func() error { return srv.Run(ctx) })
	// Websockets outlive Shutdown; the stack's end closes them.
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, TLSConfig: s.sec.server,
		BaseContext: func(net.Listener) context.Context { return ctx }}
	addr, err := s.serveHTTP(ctx, "graphql", "127.0.0.1", s.cfg.GraphQLPort, hs)
	if err != nil {
		return err
	}
	s.GraphQLURL = scheme(hs) + addr
	return nil
}

// graphqlFeed is the subscriptions' feed: one Kafka client, no group of
// its own, reading the topics of both views' sink pipelines from where
// those pipelines' groups are.
func (s *Stack) graphqlFeed() (*graphql.KafkaFeed, error) {
	var topics, groups []string
	for _, p := range s.Pipelines.Sink {
		if p.Name == titleViewSink || p.Name == cashflowViewSink {
			topics = append(topics, p.Inputs...)
			g := p.Group
			if g == "" {
				g = p.Name
			}
			groups = append(groups, g)
		}
	}
	slices.Sort(topics)
	k := s.sec.kafka(s.Brokers, s.cfg.Brokers != "")
	k.ClientID = "slate-graphql"
	opts, err := k.FranzOptions()
	if err != nil {
		return nil, fmt.Errorf("stack: graphql feed: %w", err)
	}
	feed, err := graphql.NewKafkaFeed(graphql.KafkaFeedConfig{Topics: slices.Compact(topics), Groups: groups, Registry: s.Registry, Client: opts, Log: s.cfg.Log})
	if err != nil {
		return nil, fmt.Errorf("stack: %w", err)
	}
	return feed, nil
}
