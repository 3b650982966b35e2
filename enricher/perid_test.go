package enricher_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/schema"
)

// A unary lookup answering NOT_FOUND makes a DELETE, whatever the change
// event said.
func TestPerIDNotFoundIsDelete(t *testing.T) {
	reg := newRegistry(t)
	var inFlight, peak atomic.Int64
	get := func(_ context.Context, _ string, id string) (enricher.Record, bool, error) {
		n := inFlight.Add(1)
		defer inFlight.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		switch id {
		case "gone":
			return enricher.Record{}, false, status.Error(codes.NotFound, "title gone")
		case "absent":
			return enricher.Record{}, false, nil
		}
		return enricher.Record{Version: 2, Schema: titleSchema, Value: title{ID: id, Version: 2}}, true, nil
	}
	pub := &capture{}
	e, err := enricher.New("title", enricher.PerID(get, 2), pub, reg)
	if err != nil {
		t.Fatal(err)
	}
	batch := []sink.Event{
		change("title", "here", schema.OpUpdate, 2, 0),
		change("title", "gone", schema.OpUpdate, 5, 1),
		change("title", "absent", schema.OpCreate, 1, 2),
		change("title", "x1", schema.OpUpdate, 2, 3),
		change("title", "x2", schema.OpUpdate, 2, 4),
	}
	if err := e.Handle(context.Background(), batch); err != nil {
		t.Fatal(err)
	}
	want := map[string]schema.Op{"here": schema.OpUpdate, "gone": schema.OpDelete, "absent": schema.OpDelete,
		"x1": schema.OpUpdate, "x2": schema.OpUpdate}
	for _, env := range pub.published() {
		if env.Type != want[env.Subject] {
			t.Errorf("%s: %s, want %s", env.Subject, env.Type, want[env.Subject])
		}
	}
	if peak.Load() > 2 {
		t.Errorf("%d lookups at once, want at most 2", peak.Load())
	}

	boom := errors.New("boom")
	failing := enricher.PerID(func(context.Context, string, string) (enricher.Record, bool, error) {
		return enricher.Record{}, false, boom
	}, 4)
	if _, err := failing.Resolve(context.Background(), "title", []string{"a", "b"}); !errors.Is(err, boom) {
		t.Fatalf("err = %v, want boom", err)
	}
}
