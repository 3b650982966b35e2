package stack

import (
	"context"
	"sync"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/schema"
)

// Tracker is a sink that remembers the newest state per subject it was
// given, so `slate up` can tell when every change reached the sinks.
type Tracker struct {
	// Joined says the titles are a joined view: an event's sequence is
	// the view version (enricher.ViewVersion), the title's version times
	// 2^32 plus the joined records' versions.
	Joined  bool
	mu      sync.Mutex
	written int
	state   map[string]Expectation
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{state: make(map[string]Expectation)} }

// Write implements sink.Sink.
func (t *Tracker) Write(_ context.Context, batch []sink.Event) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range batch {
		e := &batch[i]
		t.written++
		v := e.Sequence
		if t.Joined {
			v >>= 32
		}
		if cur, ok := t.state[e.Subject]; ok && cur.Version > v {
			continue
		}
		t.state[e.Subject] = Expectation{Version: v, Deleted: e.Type == schema.OpDelete}
	}
	return nil
}

// Name names the tracker's sink ("tracker") for its metrics and dedupe
// marks.
func (t *Tracker) Name() string { return "tracker" }

// Close implements sink.Sink.
func (t *Tracker) Close(context.Context) error { return nil }

// Written returns the number of events written.
func (t *Tracker) Written() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.written
}

// Missing returns the ids whose expectation the tracked state does not
// meet, with what the sink has for each (the zero Expectation if nothing).
func (t *Tracker) Missing(want map[string]Expectation) map[string]Expectation {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]Expectation)
	for id, w := range want {
		if got := t.state[id]; got != w {
			out[id] = got
		}
	}
	return out
}
