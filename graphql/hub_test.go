package graphql_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slatehq/slate/graphql"
)

func newHub(t *testing.T, buffer int) (*graphql.Hub, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	h, err := graphql.NewHub(buffer, reg)
	if err != nil {
		t.Fatal(err)
	}
	return h, reg
}

func change(id string, v int64) graphql.Change {
	return graphql.Change{View: "title", ID: id, Version: v, Doc: map[string]any{"id": id}}
}

// A subscriber that takes nothing is dropped once its buffer is full,
// with an error naming why, while the subscribers that keep up get every
// change in order.
func TestHubDropsSlowSubscriber(t *testing.T) {
	h, reg := newHub(t, 4)
	slow, err := h.Subscribe("title", "t-1")
	if err != nil {
		t.Fatal(err)
	}
	fast := make([]*graphql.Subscriber, 3)
	for i := range fast {
		if fast[i], err = h.Subscribe("title", "t-1"); err != nil {
			t.Fatal(err)
		}
	}
	const n = 100
	for v := int64(1); v <= n; v++ {
		h.Publish(change("t-1", v))
		for i, s := range fast {
			select {
			case c := <-s.Changes():
				if c.Version != v {
					t.Fatalf("fast subscriber %d: version %d, want %d", i, c.Version, v)
				}
			default:
				t.Fatalf("fast subscriber %d has no change %d", i, v)
			}
		}
	}
	select {
	case <-slow.Done():
	default:
		t.Fatal("the slow subscriber is still subscribed")
	}
	if err := slow.Err(); !errors.Is(err, graphql.ErrSlowSubscriber) || !strings.Contains(err.Error(), "dropped at version 5") {
		t.Errorf("slow subscriber ended with %v, want ErrSlowSubscriber at version 5", err)
	}
	if got := len(slow.Changes()); got != 4 {
		t.Errorf("the slow subscriber holds %d changes, want its buffer of 4", got)
	}
	for _, s := range fast {
		if s.Err() != nil {
			t.Errorf("fast subscriber ended: %v", s.Err())
		}
	}
	if h.Subscribers() != 3 {
		t.Errorf("%d subscribers, want the 3 fast ones", h.Subscribers())
	}
	if got := value(t, reg, "slate_graphql_subscribers_dropped_total"); got != 1 {
		t.Errorf("dropped counter %v, want 1", got)
	}
	if got := value(t, reg, "slate_graphql_subscribers"); got != 3 {
		t.Errorf("subscribers gauge %v, want 3", got)
	}
}

// Closing a subscriber frees it: the hub forgets it, the gauge drops, and
// it gets no more changes; a document's last subscriber leaving leaves
// nothing behind.
func TestHubUnsubscribeFrees(t *testing.T) {
	h, reg := newHub(t, 2)
	a, _ := h.Subscribe("title", "t-1")
	b, _ := h.Subscribe("title", "t-1")
	a.Close()
	a.Close() // twice is fine
	if h.Subscribers() != 1 {
		t.Fatalf("%d subscribers after one closed, want 1", h.Subscribers())
	}
	for v := int64(1); v <= 10; v++ {
		if got := h.Publish(change("t-1", v)); v <= 2 && got != 1 {
			t.Fatalf("publish %d reached %d subscribers, want 1", v, got)
		}
	}
	if len(a.Changes()) != 0 {
		t.Errorf("a closed subscriber got %d changes", len(a.Changes()))
	}
	if a.Err() != nil {
		t.Errorf("a closed subscriber has error %v", a.Err())
	}
	// b never read: dropped at the third change.
	if !errors.Is(b.Err(), graphql.ErrSlowSubscriber) {
		t.Errorf("b: %v", b.Err())
	}
	if h.Subscribers() != 0 || value(t, reg, "slate_graphql_subscribers") != 0 {
		t.Errorf("subscribers %d after all left", h.Subscribers())
	}
	if got := h.Publish(change("t-1", 11)); got != 0 {
		t.Errorf("a publish with no subscribers reached %d", got)
	}
}

// Many subscribers of many documents, subscribing and leaving while
// changes are published: each gets its own document's changes only, in
// order, and all of them.
func TestHubManySubscribers(t *testing.T) {
	h, _ := newHub(t, 1000)
	const docs, per, changes = 20, 50, 100
	subs := map[string][]*graphql.Subscriber{}
	for d := range docs {
		id := fmt.Sprintf("t-%d", d)
		for range per {
			s, err := h.Subscribe("title", id)
			if err != nil {
				t.Fatal(err)
			}
			subs[id] = append(subs[id], s)
		}
	}
	// Others come and go meanwhile, on a view nobody else reads.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for range 1000 {
			s, err := h.Subscribe("cashflow", "t-0")
			if err != nil {
				t.Error(err)
				return
			}
			s.Close()
		}
	}()
	var pub sync.WaitGroup
	for d := range docs {
		pub.Add(1)
		go func() {
			defer pub.Done()
			for v := int64(1); v <= changes; v++ {
				h.Publish(change(fmt.Sprintf("t-%d", d), v))
			}
		}()
	}
	pub.Wait()
	wg.Wait()
	if h.Subscribers() != docs*per {
		t.Fatalf("%d subscribers, want %d", h.Subscribers(), docs*per)
	}
	for id, list := range subs {
		for i, s := range list {
			if len(s.Changes()) != changes {
				t.Fatalf("%s subscriber %d has %d changes, want %d", id, i, len(s.Changes()), changes)
			}
			for v := int64(1); v <= changes; v++ {
				if c := <-s.Changes(); c.ID != id || c.Version != v {
					t.Fatalf("%s subscriber %d: change %s@%d, want @%d", id, i, c.ID, c.Version, v)
				}
			}
		}
	}
	h.Close(nil)
	for _, list := range subs {
		for _, s := range list {
			if !errors.Is(s.Err(), graphql.ErrHubClosed) {
				t.Fatalf("after Close: %v", s.Err())
			}
		}
	}
	if _, err := h.Subscribe("title", "t-0"); !errors.Is(err, graphql.ErrHubClosed) {
		t.Errorf("Subscribe after Close: %v", err)
	}
}

func TestNewHubRefusesNegativeBuffer(t *testing.T) {
	if _, err := graphql.NewHub(-1, nil); !errors.Is(err, graphql.ErrConfig) {
		t.Errorf("NewHub(-1): %v", err)
	}
}

// value is the value of the gauge or counter called name in g.
func value(t *testing.T, g prometheus.Gatherer, name string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			m := mf.GetMetric()[0]
			return m.GetGauge().GetValue() + m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
