package enricher_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/schema"
)

// TestViewVersionGrowsWithEveryRecord follows a title view (title +
// schedules, a schedule change fanning out to its title) through a
// realistic history. Every re-materialization must carry a version above
// the previous one, or Elasticsearch (strict external versions) and bleve
// refuse it and keep the stale view.
func TestViewVersionGrowsWithEveryRecord(t *testing.T) {
	reg := newRegistry(t)
	ctx := context.Background()
	var mu sync.Mutex
	store := &titles{byID: map[string]title{"t1": {ID: "t1", ReleaseDate: "2027-07-16", Version: 1}}}
	type sched struct {
		s       schedule
		version int64
		deleted bool
	}
	schedules := map[string]sched{"s1": {schedule{ID: "s1", TitleID: "t1", ShootDays: 40}, 7, false}}
	keysAt := map[int64][]string{1: {"s1"}, 2: {"s1"}, 3: {"s2"}} // the title's schedule, by title version
	scheduleResolver := enricher.ResolverFunc(func(_ context.Context, _ string, ids []string) (map[string]enricher.Record, error) {
		mu.Lock()
		defer mu.Unlock()
		out := map[string]enricher.Record{}
		for _, id := range ids {
			if s, ok := schedules[id]; ok {
				out[id] = enricher.Record{Version: s.version, Deleted: s.deleted, Schema: scheduleSchema, Value: s.s}
			}
		}
		return out, nil
	})
	dependents := enricher.DependentsFunc(func(_ context.Context, ids []string) (map[string][]string, error) {
		out := map[string][]string{}
		for _, id := range ids {
			out[id] = []string{"t1"}
		}
		return out, nil
	})
	pub := &capture{}
	e, err := enricher.New("title", store.resolver(), pub, reg,
		enricher.WithJoin(enricher.Join{Field: "schedules", EntityType: "schedule", Resolver: scheduleResolver, Schema: scheduleSchema,
			Keys: func(_ string, rec enricher.Record) []string { return keysAt[rec.Version] }}),
		enricher.WithFanOut(enricher.FanOut{EntityType: "schedule", Dependents: dependents}))
	if err != nil {
		t.Fatal(err)
	}
	v := newViews(t, reg, "title")
	setTitle := func(version int64) {
		store.mu.Lock()
		defer store.mu.Unlock()
		store.byID["t1"] = title{ID: "t1", ReleaseDate: "2027-07-16", Version: version}
	}
	setSchedule := func(id string, days int, version int64, deleted bool) {
		mu.Lock()
		defer mu.Unlock()
		schedules[id] = sched{schedule{ID: id, TitleID: "t1", ShootDays: days}, version, deleted}
	}
	steps := []struct {
		name   string
		change func()
		event  sink.Event
		op     schema.Op
		days   []int // the joined shoot days the view must show
	}{
		{"title created", func() {}, change("title", "t1", schema.OpCreate, 1, 0), schema.OpCreate, []int{40}},
		{"primary-only change", func() { setTitle(2) }, change("title", "t1", schema.OpUpdate, 2, 1), schema.OpUpdate, []int{40}},
		{"joined record changed, fanned out", func() { setSchedule("s1", 45, 8, false) },
			change("schedule", "s1", schema.OpUpdate, 8, 2), schema.OpUpdate, []int{45}},
		{"join target replaced by a record with a lower version", func() { setSchedule("s2", 12, 1, false); setTitle(3) },
			change("title", "t1", schema.OpUpdate, 3, 3), schema.OpUpdate, []int{12}},
		{"joined record deleted (tombstone), fanned out", func() { setSchedule("s2", 12, 2, true) },
			change("schedule", "s2", schema.OpDelete, 2, 4), schema.OpUpdate, nil},
		{"title deleted", func() {
			store.mu.Lock()
			delete(store.byID, "t1")
			store.mu.Unlock()
		}, change("title", "t1", schema.OpDelete, 4, 5), schema.OpDelete, nil},
	}
	var last int64
	for _, st := range steps {
		st.change()
		pub.mu.Lock()
		pub.envs = nil
		pub.mu.Unlock()
		if err := e.Handle(ctx, []sink.Event{st.event}); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		out := pub.published()
		if len(out) != 1 || out[0].Type != st.op {
			t.Fatalf("%s: published %v, want one %s", st.name, out, st.op)
		}
		env := out[0]
		if env.Sequence <= last {
			t.Errorf("%s: view version %d, not above the previous %d", st.name, env.Sequence, last)
		}
		last = max(last, env.Sequence)
		v.apply(env)
		es, bl := v.get("title", "t1")
		if st.op == schema.OpDelete {
			if es.found || bl.found {
				t.Errorf("%s: es %+v, bleve %+v, want the view gone from both", st.name, es, bl)
			}
			continue
		}
		if es.version != env.Sequence || bl.version != env.Sequence {
			t.Errorf("%s: es holds v%d, bleve v%d, want both to take v%d", st.name, es.version, bl.version, env.Sequence)
		}
		var got map[string]any
		if err := schema.DecodeData(ctx, reg, env.Data, &got); err != nil {
			t.Fatal(err)
		}
		var days []int
		for _, s := range got["schedules"].([]any) {
			days = append(days, s.(map[string]any)["shoot_days"].(int))
		}
		if len(days) != len(st.days) || (len(days) > 0 && days[0] != st.days[0]) {
			t.Errorf("%s: joined shoot days %v, want %v", st.name, days, st.days)
		}
	}
}

func TestViewVersion(t *testing.T) {
	tests := []struct {
		name    string
		primary int64
		joined  []int64
		want    int64
		err     bool
	}{
		{"primary only", 3, nil, 3 << 32, false},
		{"joined records add up", 3, []int64{7, 2}, 3<<32 + 9, false},
		{"largest", enricher.MaxViewPrimaryVersion, []int64{enricher.MaxViewJoinedVersions}, enricher.MaxViewPrimaryVersion<<32 + enricher.MaxViewJoinedVersions, false},
		{"primary too large", enricher.MaxViewPrimaryVersion + 1, nil, 0, true},
		{"joined sum too large", 1, []int64{enricher.MaxViewJoinedVersions, 1}, 0, true},
		{"negative", 1, []int64{-1}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := enricher.ViewVersion(tt.primary, tt.joined...)
			if tt.err != errors.Is(err, enricher.ErrViewVersion) || got != tt.want {
				t.Fatalf("ViewVersion(%d, %v) = %d, %v; want %d (error %v)", tt.primary, tt.joined, got, err, tt.want, tt.err)
			}
			if got >= enricher.TombstoneSequence {
				t.Errorf("view version %d is not below TombstoneSequence", got)
			}
		})
	}
	// A higher primary outweighs any joined versions.
	hi, _ := enricher.ViewVersion(4)
	lo, _ := enricher.ViewVersion(3, enricher.MaxViewJoinedVersions)
	if hi <= lo {
		t.Errorf("ViewVersion(4) = %d is not above ViewVersion(3, max) = %d", hi, lo)
	}
}
