package bleve_test

import (
	"context"
	"fmt"
	"os"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/consumer/sink/bleve"
	"github.com/slatehq/slate/schema"
)

func ExampleNew() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "slate-search")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	s, err := bleve.New(dir)
	if err != nil {
		panic(err)
	}
	defer s.Close(ctx)

	e := schema.NewEnvelope("//studio/titles", schema.OpUpdate, "title", "t-1")
	e.Sequence = 7
	e.DataContentType, e.Data = schema.ContentTypeJSON, []byte(`{"name":"Heat"}`)
	if err := s.Write(ctx, []sink.Event{{Envelope: e}}); err != nil {
		panic(err)
	}
	hits, err := s.Search(ctx, "title", "name:heat", 10)
	if err != nil {
		panic(err)
	}
	doc, version, found, err := s.Get(ctx, "title", "t-1")
	if err != nil {
		panic(err)
	}
	fmt.Println(s.Index("title"), len(hits), hits[0].ID, doc["name"], version, found)
	// Output: studio-title 1 t-1 Heat 7 true
}
