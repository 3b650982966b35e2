package enricher_test

import (
	"context"
	"testing"

	"github.com/google/uuid"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/schema"
)

// TestEventIDsAreWhatTheEventIs: a retried batch, or a fresh enricher
// after a crash before the commit, re-publishes the same states; they must
// carry the same ids so that the consumers' dedupe drops them (and the
// Hive audit table does not count them twice). Another version, another
// op or another view is another event.
func TestEventIDsAreWhatTheEventIs(t *testing.T) {
	reg := newRegistry(t)
	ctx := context.Background()
	store := &titles{byID: map[string]title{
		"t1": {ID: "t1", ReleaseDate: "2027-07-16", Version: 4},
		"t2": {ID: "t2", ReleaseDate: "2027-09-01", Version: 2},
	}}
	batch := []sink.Event{
		change("title", "t1", schema.OpUpdate, 4, 0),
		change("title", "t2", schema.OpCreate, 2, 1),
		change("title", "t3", schema.OpDelete, 7, 2),
	}
	run := func(topic string) map[string]schema.Envelope {
		t.Helper()
		pub := &capture{}
		e, err := enricher.New("title", store.resolver(), pub, reg, enricher.WithOutputTopic(topic))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]schema.Envelope{}
		for range 2 { // the same batch, retried by the consumer
			if err := e.Handle(ctx, batch); err != nil {
				t.Fatal(err)
			}
		}
		envs := pub.published()
		if len(envs) != 2*len(batch) {
			t.Fatalf("published %d, want %d", len(envs), 2*len(batch))
		}
		for i, env := range envs[:len(batch)] {
			if again := envs[len(batch)+i]; again.ID != env.ID {
				t.Errorf("%s: retry published id %s, first attempt %s", env.Subject, again.ID, env.ID)
			}
			if u, err := uuid.Parse(env.ID); err != nil || u.Version() != 5 {
				t.Errorf("%s: id %q is not a name-based (v5) UUID: %v", env.Subject, env.ID, err)
			}
			out[env.Subject] = env
		}
		return out
	}
	first := run("studio.title.materialized")
	restarted := run("studio.title.materialized") // a fresh instance, as after a crash
	for id, env := range first {
		if restarted[id].ID != env.ID {
			t.Errorf("%s: a fresh enricher published id %s, the first one %s", id, restarted[id].ID, env.ID)
		}
	}
	seen := map[string]string{}
	for id, env := range first {
		if other, dup := seen[env.ID]; dup {
			t.Errorf("%s and %s share id %s", id, other, env.ID)
		}
		seen[env.ID] = id
	}

	// t1 in another view, another version of t1, and t1 deleted at that
	// version: three other events, three other ids.
	other := run("studio.cashflow.materialized")
	store.byID["t1"] = title{ID: "t1", ReleaseDate: "2027-06-01", Version: 5}
	pub := &capture{}
	e, err := enricher.New("title", store.resolver(), pub, reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Handle(ctx, []sink.Event{change("title", "t1", schema.OpUpdate, 5, 3)}); err != nil {
		t.Fatal(err)
	}
	delete(store.byID, "t1")
	if err := e.Handle(ctx, []sink.Event{change("title", "t1", schema.OpDelete, 5, 4)}); err != nil {
		t.Fatal(err)
	}
	ids := []struct {
		what string
		id   string
	}{
		{"v4 UPDATE", first["t1"].ID},
		{"v5 UPDATE", pub.published()[0].ID},
		{"v5 DELETE", pub.published()[1].ID},
		{"v4 UPDATE in another view", other["t1"].ID},
	}
	for i := range ids {
		for j := i + 1; j < len(ids); j++ {
			if ids[i].id == ids[j].id {
				t.Errorf("%s and %s share id %s", ids[i].what, ids[j].what, ids[i].id)
			}
		}
	}
}
