package titles

import (
	"context"
	_ "embed"
	"fmt"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/slatehq/slate/enricher"
	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
)

//go:embed title.avsc
var titleSchemaJSON string

// RecordSchema is the Avro schema of materialized titles
// (studio.titles.v1.Title), registered by the enricher under its full name.
var RecordSchema = avro.MustParse(titleSchemaJSON).(*avro.RecordSchema)

// Record is a title as it travels in materialized events.
type Record struct {
	ID          string    `avro:"id" json:"id"`
	Name        string    `avro:"name" json:"name"`
	Kind        string    `avro:"kind" json:"kind"`
	Status      string    `avro:"status" json:"status"`
	ReleaseDate string    `avro:"release_date" json:"release_date"`
	Version     int64     `avro:"version" json:"version"`
	UpdatedAt   time.Time `avro:"updated_at" json:"updated_at"`
}

// RecordOf converts a title from its gRPC form.
func RecordOf(t *titlesv1.Title) Record {
	return Record{
		ID: t.GetId(), Name: t.GetName(), Kind: t.GetKind(), Status: t.GetStatus(),
		ReleaseDate: t.GetReleaseDate(), Version: t.GetVersion(),
		UpdatedAt: t.GetUpdatedAt().AsTime().UTC().Truncate(time.Microsecond),
	}
}

// Resolver resolves titles for the enricher with one BatchGetTitles call
// per batch of ids. It is safe for concurrent use.
type Resolver struct {
	client titlesv1.TitlesClient
}

// NewResolver returns a resolver over a titles client.
func NewResolver(client titlesv1.TitlesClient) *Resolver { return &Resolver{client: client} }

var _ enricher.Resolver = (*Resolver)(nil)

// Resolve implements enricher.Resolver; ids the service reports missing are
// absent from the result (deleted at the source).
func (r *Resolver) Resolve(ctx context.Context, entityType string, ids []string) (map[string]enricher.Record, error) {
	if entityType != EntityType {
		return nil, fmt.Errorf("titles: resolver asked for entity type %q", entityType)
	}
	resp, err := r.client.BatchGetTitles(ctx, &titlesv1.BatchGetTitlesRequest{Ids: ids})
	if err != nil {
		return nil, fmt.Errorf("titles: batch get %d ids: %w", len(ids), err)
	}
	out := make(map[string]enricher.Record, len(resp.GetTitles()))
	for _, t := range resp.GetTitles() {
		out[t.GetId()] = enricher.Record{Version: t.GetVersion(), Schema: RecordSchema, Value: RecordOf(t)}
	}
	return out, nil
}
