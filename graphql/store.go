package graphql

import (
	"context"

	"github.com/slatehq/slate/consumer/sink/bleve"
)

// Store reads the materialized views: a view is an entity type of the
// store ("title", "cashflow"), its documents keyed by id, each with the
// version (the envelope's sequence) that wrote it. The embedded bleve sink
// is one ([Bleve]); an Elasticsearch index answers the same two calls.
type Store interface {
	// Get returns the document of id in the view and its version; found
	// is false when there is none.
	Get(ctx context.Context, view, id string) (doc map[string]any, version int64, found bool, err error)
	// Search runs a Bleve/Lucene query string against the view and returns
	// up to size hits, best first.
	Search(ctx context.Context, view, query string, size int) ([]Hit, error)
}

// Hit is one document a search found.
type Hit struct {
	ID      string
	Version int64
	Doc     map[string]any
}

// Bleve reads views from the embedded search index of a bleve sink.
func Bleve(s *bleve.Sink) Store { return bleveStore{s} }

type bleveStore struct{ s *bleve.Sink }

func (b bleveStore) Get(ctx context.Context, view, id string) (map[string]any, int64, bool, error) {
	return b.s.Get(ctx, view, id)
}

func (b bleveStore) Search(ctx context.Context, view, query string, size int) ([]Hit, error) {
	hits, err := b.s.Search(ctx, view, query, size)
	if err != nil {
		return nil, err
	}
	out := make([]Hit, len(hits))
	for i, h := range hits {
		out[i] = Hit{ID: h.ID, Version: h.Version, Doc: h.Doc}
	}
	return out, nil
}
