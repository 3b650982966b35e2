package stack

import (
	"context"
	"fmt"
	"net/http"
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
	srv, err := graphql.New(gc)
	if err != nil {
		return fmt.Errorf("stack: graphql: %w", err)
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second, TLSConfig: s.sec.server}
	addr, err := s.serveHTTP(ctx, "graphql", "127.0.0.1", s.cfg.GraphQLPort, hs)
	if err != nil {
		return err
	}
	s.GraphQLURL = scheme(hs) + addr
	return nil
}
