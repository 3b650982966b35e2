package enricher_test

import (
	"context"
	"testing"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/schema"
)

// TestDeleteBeatsTheLastLiveVersion: the view holds v5 of a title; the
// owner deletes it. Whatever order the change events arrive in, and
// whether or not they carry versions, the DELETE the enricher publishes
// must carry a sequence above 5, or Elasticsearch refuses it (409, which
// the sink counts as success) and the document stays for good.
func TestDeleteBeatsTheLastLiveVersion(t *testing.T) {
	reg := newRegistry(t)
	ctx := context.Background()
	tests := []struct {
		name    string
		batch   []sink.Event
		tomb    *enricher.Record // the resolver's answer for the deleted id
		wantSeq int64
	}{
		{"delete then late update in one batch", []sink.Event{
			change("title", "t1", schema.OpDelete, 6, 10),
			change("title", "t1", schema.OpUpdate, 5, 11),
		}, nil, 6},
		{"late update then delete", []sink.Event{
			change("title", "t1", schema.OpUpdate, 5, 10),
			change("title", "t1", schema.OpDelete, 6, 11),
		}, nil, 6},
		{"unversioned events, resolver tombstone", []sink.Event{
			change("title", "t1", schema.OpDelete, 0, 10),
			change("title", "t1", schema.OpUpdate, 0, 11),
		}, &enricher.Record{Deleted: true, Version: 6}, 6},
		{"tombstone newer than the events", []sink.Event{
			change("title", "t1", schema.OpDelete, 6, 10),
		}, &enricher.Record{Deleted: true, Version: 7}, 7},
		{"unversioned events, no tombstone", []sink.Event{
			change("title", "t1", schema.OpDelete, 0, 10),
			change("title", "t1", schema.OpUpdate, 0, 11),
		}, nil, enricher.TombstoneSequence},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := &titles{byID: map[string]title{"t1": {ID: "t1", ReleaseDate: "2027-07-16", Version: 5}}}
			var tomb *enricher.Record
			inner := store.resolver()
			r := enricher.ResolverFunc(func(ctx context.Context, entity string, ids []string) (map[string]enricher.Record, error) {
				out, err := inner.Resolve(ctx, entity, ids)
				if err == nil && tomb != nil {
					out["t1"] = *tomb
				}
				return out, err
			})
			pub := &capture{}
			e, err := enricher.New("title", r, pub, reg)
			if err != nil {
				t.Fatal(err)
			}
			v := newViews(t, reg, "title")
			if err := e.Handle(ctx, []sink.Event{change("title", "t1", schema.OpUpdate, 5, 0)}); err != nil {
				t.Fatal(err)
			}
			v.apply(pub.published()...)
			if es, bl := v.get("title", "t1"); !es.found || !bl.found || es.version != 5 || bl.version != 5 {
				t.Fatalf("before the delete: es %+v, bleve %+v, want both at v5", es, bl)
			}

			store.mu.Lock()
			delete(store.byID, "t1")
			store.mu.Unlock()
			tomb = tt.tomb
			pub.envs = nil
			if err := e.Handle(ctx, tt.batch); err != nil {
				t.Fatal(err)
			}
			out := pub.published()
			if len(out) != 1 || out[0].Type != schema.OpDelete {
				t.Fatalf("published %v, want one DELETE", out)
			}
			if out[0].Sequence != tt.wantSeq {
				t.Errorf("DELETE sequence = %d, want %d", out[0].Sequence, tt.wantSeq)
			}
			v.apply(out...)
			if es, bl := v.get("title", "t1"); es.found || bl.found {
				t.Errorf("after the delete: es %+v, bleve %+v, want the document gone from both", es, bl)
			}
		})
	}
}
