package graphql

import (
	"context"
	"time"

	gqlgen "github.com/99designs/gqlgen/graphql"
	"github.com/vikstrous/dataloadgen"
)

// loaderWait is how long a loader gathers the keys of one batch: the
// resolvers of a page's fields run at once, so a few milliseconds gather
// the whole page.
const loaderWait = 2 * time.Millisecond

// loaders batch the reads of nested fields within one operation: every
// Title.cashFlow of a page of titles is one GetMany of the cashflow view,
// not one Get per title.
type loaders struct {
	cashFlows *dataloadgen.Loader[string, *Hit]
}

type loadersKey struct{}

// newLoaders returns the loaders of one operation. They do not cache: a
// long-lived operation reads the views afresh on every load.
func newLoaders(cfg Config) *loaders {
	return &loaders{
		cashFlows: dataloadgen.NewLoader(fetchMany(cfg.CashFlows, cfg.CashFlowView),
			dataloadgen.WithWait(loaderWait), dataloadgen.WithBatchCapacity(cfg.MaxPageSize), dataloadgen.WithoutCache()),
	}
}

// fetchMany reads a batch of ids from a view in one GetMany; an id
// without a document loads as nil.
func fetchMany(s Store, view string) func(ctx context.Context, ids []string) ([]*Hit, []error) {
	return func(ctx context.Context, ids []string) ([]*Hit, []error) {
		out := make([]*Hit, len(ids))
		got, err := s.GetMany(ctx, view, ids)
		if err != nil {
			errs := make([]error, len(ids))
			for i := range errs {
				errs[i] = err
			}
			return out, errs
		}
		for i, id := range ids {
			if h, ok := got[id]; ok {
				out[i] = &h
			}
		}
		return out, nil
	}
}

// withLoaders gives each operation its own loaders.
func withLoaders(cfg Config) gqlgen.OperationMiddleware {
	return func(ctx context.Context, next gqlgen.OperationHandler) gqlgen.ResponseHandler {
		return next(context.WithValue(ctx, loadersKey{}, newLoaders(cfg)))
	}
}

func loadersFrom(ctx context.Context) *loaders {
	l, _ := ctx.Value(loadersKey{}).(*loaders)
	return l
}
