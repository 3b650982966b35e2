package stack

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/schema"
)

// Tracker is a sink that remembers the newest state per subject it was
// given, so `slate up` can tell when every change reached the sinks, and
// how fresh the view is: for every event, how long after the source
// change it reflects (the envelope's time, which the enricher copies from
// the change event) the sink pipeline handed it to its sinks.
type Tracker struct {
	// Joined says the titles are a joined view: an event's sequence is
	// the view version (enricher.ViewVersion), the title's version times
	// 2^32 plus the joined records' versions.
	Joined bool
	// SLA is the view's freshness SLA: an event that arrives later than
	// SLA after its source change is a breach. 0 counts none.
	SLA      time.Duration
	breaches prometheus.Counter // nil: not exported
	mu       sync.Mutex
	written  int
	state    map[string]Expectation
	fresh    freshness
}

// NewTracker returns an empty tracker.
func NewTracker() *Tracker { return &Tracker{state: make(map[string]Expectation)} }

// maxSamples bounds the freshness samples a tracker keeps for its
// quantiles (a uniform sample of every event, by reservoir sampling).
const maxSamples = 10_000

// freshness is what a tracker knows of the freshness of its events.
type freshness struct {
	n, breaches int64
	max         time.Duration
	samples     []time.Duration
}

func (f *freshness) observe(d, sla time.Duration) bool {
	f.n++
	f.max = max(f.max, d)
	if len(f.samples) < maxSamples {
		f.samples = append(f.samples, d)
	} else if i := rand.Int64N(f.n); i < maxSamples {
		f.samples[i] = d
	}
	if sla > 0 && d > sla {
		f.breaches++
		return true
	}
	return false
}

// Freshness summarizes the freshness of the events a tracker was given.
type Freshness struct {
	Events   int64         // events with a source time
	P50, P99 time.Duration // quantiles (of a sample of at most 10,000)
	Max      time.Duration
	SLA      time.Duration
	Breaches int64 // events later than SLA
}

// Freshness returns the freshness of the events written so far.
func (t *Tracker) Freshness() Freshness {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := Freshness{Events: t.fresh.n, Max: t.fresh.max, SLA: t.SLA, Breaches: t.fresh.breaches}
	if len(t.fresh.samples) > 0 {
		s := slices.Clone(t.fresh.samples)
		slices.Sort(s)
		q := func(p float64) time.Duration { return s[min(len(s)-1, int(p*float64(len(s))))] }
		out.P50, out.P99 = q(0.50), q(0.99)
	}
	return out
}

// exportBreaches counts the tracker's breaches in
// slate_view_freshness_breaches_total{view} of reg, and its SLA in
// slate_view_freshness_sla_seconds{view}.
func (t *Tracker) exportBreaches(reg prometheus.Registerer, view string) error {
	t.breaches = prometheus.NewCounter(prometheus.CounterOpts{Name: "slate_view_freshness_breaches_total",
		Help:        "Events of a view that reached its sinks later after their source change than the freshness SLA, by view.",
		ConstLabels: prometheus.Labels{"view": view}})
	sla := prometheus.NewGauge(prometheus.GaugeOpts{Name: "slate_view_freshness_sla_seconds",
		Help: "The freshness SLA of a view, by view.", ConstLabels: prometheus.Labels{"view": view}})
	sla.Set(t.SLA.Seconds())
	for _, c := range []prometheus.Collector{t.breaches, sla} {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Write implements sink.Sink.
func (t *Tracker) Write(_ context.Context, batch []sink.Event) error {
	now := time.Now()
	t.mu.Lock()
	defer t.mu.Unlock()
	for i := range batch {
		e := &batch[i]
		t.written++
		if !e.Time.IsZero() && t.fresh.observe(now.Sub(e.Time), t.SLA) && t.breaches != nil {
			t.breaches.Inc()
		}
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
