package es_test

import (
	"errors"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/consumer/sink/es"
	"github.com/slatehq/slate/consumer/sink/sinktest"
	"github.com/slatehq/slate/schema"
)

// Two sinks given one registry with WithMetrics count the version
// conflicts of replayed events into it, under their own indices.
func TestVersionConflictsOnTheGivenRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	b := newBackend(t)
	first := b.sink(t, es.WithMetrics(reg))
	second := b.sink(t, es.WithMetrics(reg), es.WithIndexPrefix(b.prefix+"other-"))
	ev := sinktest.Event(schema.OpUpdate, "t1", 2, map[string]any{"name": "Pilot"})
	for _, s := range []*es.Sink{first, second} {
		for range 2 { // the second write is a replay: 409, counted
			if err := s.Write(t.Context(), []sink.Event{ev}); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := conflicts(t, reg)
	if len(got) != 2 {
		t.Errorf("slate_es_version_conflicts_total = %v, want one series per sink's index", got)
	}
	for _, s := range []*es.Sink{first, second} {
		if n := got[s.Index("title")]; n != 1 {
			t.Errorf("conflicts in %s = %v, want 1", s.Index("title"), n)
		}
	}

	taken := prometheus.NewRegistry()
	taken.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "slate_es_version_conflicts_total", Help: "Something else."}))
	if _, err := es.New(t.Context(), b.client, es.WithMetrics(taken)); !errors.Is(err, es.ErrConfig) {
		t.Errorf("New on a registry with a conflicting collector: err = %v, want ErrConfig", err)
	}
}

// conflicts returns slate_es_version_conflicts_total of g by index.
func conflicts(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != "slate_es_version_conflicts_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "index" {
					out[l.GetValue()] = m.GetCounter().GetValue()
				}
			}
		}
	}
	return out
}
