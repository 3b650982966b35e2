package graphql

import (
	"context"
	"fmt"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/consumer/sink/bleve"
)

// Store reads the materialized views: a view is an entity type of the
// store ("title", "cashflow"), its documents keyed by id, each with the
// version (the envelope's sequence) that wrote it. The embedded bleve sink
// is one ([Bleve]), an Elasticsearch cluster the es sink writes another
// ([Elasticsearch]).
//
// The documents' numbers are json.Number, so that versions and money
// amounts past 2^53 read exactly.
type Store interface {
	// Get returns the document of id in the view and its version; found
	// is false when there is none.
	Get(ctx context.Context, view, id string) (doc map[string]any, version int64, found bool, err error)
	// Search runs a Bleve query string (the syntax of [bleve.Sink.Search]:
	// "+name:heat", `+release_date:>="2027-01-01"`; "" matches everything)
	// against the view and returns up to size hits, best first.
	Search(ctx context.Context, view, query string, size int) ([]Hit, error)
	// GetMany returns the documents of ids in the view, by id, read in one
	// call to the store; ids without a document are not in the map.
	GetMany(ctx context.Context, view string, ids []string) (map[string]Hit, error)
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
	got, err := b.s.Lookup(ctx, view, []string{id})
	if err != nil {
		return nil, 0, false, err
	}
	if !got[0].Live {
		return nil, got[0].Version, false, nil
	}
	doc, err := decodeDoc(got[0].Source)
	if err != nil {
		return nil, 0, false, fmt.Errorf("%s %s: %w", view, id, err)
	}
	return doc, got[0].Version, true, nil
}

func (b bleveStore) Search(ctx context.Context, view, query string, size int) ([]Hit, error) {
	hits, err := b.s.Search(ctx, view, query, size)
	if err != nil {
		return nil, err
	}
	out := make([]Hit, len(hits))
	for i, h := range hits {
		doc, err := decodeDoc(h.Source)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", view, h.ID, err)
		}
		out[i] = Hit{ID: h.ID, Version: h.Version, Doc: doc}
	}
	return out, nil
}

func (b bleveStore) GetMany(ctx context.Context, view string, ids []string) (map[string]Hit, error) {
	got, err := b.s.Lookup(ctx, view, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]Hit, len(got))
	for _, g := range got {
		if !g.Live {
			continue
		}
		doc, err := decodeDoc(g.Source)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", view, g.ID, err)
		}
		out[g.ID] = Hit{ID: g.ID, Version: g.Version, Doc: doc}
	}
	return out, nil
}

// decodeDoc decodes a stored document with its numbers as json.Number.
func decodeDoc(src []byte) (map[string]any, error) {
	var doc map[string]any
	if err := sink.DecodeJSON(src, &doc); err != nil {
		return nil, fmt.Errorf("stored document: %w", err)
	}
	return doc, nil
}
