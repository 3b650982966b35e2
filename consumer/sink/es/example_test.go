package es_test

import (
	"context"
	"fmt"
	"net/http/httptest"

	"github.com/elastic/go-elasticsearch/v8"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/consumer/sink/es"
	"github.com/slatehq/slate/consumer/sink/es/estest"
	"github.com/slatehq/slate/schema"
)

func ExampleNew() {
	ctx := context.Background()
	// A real deployment points the client at its cluster; the example
	// uses the in-process double.
	double := estest.New()
	srv := httptest.NewServer(double)
	defer srv.Close()
	client, err := elasticsearch.NewClient(elasticsearch.Config{Addresses: []string{srv.URL}})
	if err != nil {
		panic(err)
	}
	s, err := es.New(ctx, client, es.WithEntityTypes("title"))
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
	_, version, ok := double.Doc(s.Index("title"), "t-1")
	fmt.Println(s.Index("title"), version, ok)
	// Output: studio-title 7 true
}
