package main

import (
	"github.com/spf13/pflag"

	"github.com/slatehq/slate/graphql"
	"github.com/slatehq/slate/internal/stack"
)

// graphqlFlags are the flags of slate up's GraphQL API.
func graphqlFlags(f *pflag.FlagSet, cfg *stack.Config) {
	f.IntVar(&cfg.GraphQLPort, "graphql-port", 8080, "port of the GraphQL API of the title and cashflow views (GraphiQL at /)")
	g := &cfg.GraphQL
	f.IntVar(&g.MaxDepth, "graphql-max-depth", graphql.DefaultMaxDepth, "deepest selection a GraphQL operation may have")
	f.IntVar(&g.MaxComplexity, "graphql-max-complexity", graphql.DefaultMaxComplexity, "largest complexity of a GraphQL operation (a page of titles costs its size times its selection)")
	f.IntVar(&g.MaxPageSize, "graphql-max-page-size", graphql.DefaultMaxPageSize, "largest page (first) of titles")
	f.DurationVar(&g.MinVersionWait, "graphql-min-version-wait", graphql.DefaultMinVersionWait, "how long a GraphQL query with minVersion waits for the view to reach it")
	f.IntVar(&g.SubscriberBuffer, "graphql-subscriber-buffer", graphql.DefaultSubscriberBuffer, "changes a GraphQL subscription may fall behind before it is dropped")
	f.DurationVar(&g.KeepAlive, "graphql-keepalive", graphql.DefaultKeepAlive, "how often GraphQL websocket clients are pinged (their pong must come within twice that)")
}
