package enricher_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/schema"
)

// counter returns the sum of a counter of g over the series with the
// given labels, or -1 if there is none.
func counter(t *testing.T, g prometheus.Gatherer, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum, found := 0.0, false
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			sum, found = sum+m.GetCounter().GetValue(), true
		}
	}
	if !found {
		return -1
	}
	return sum
}

// Two enrichers given one registry with WithMetrics both count into it,
// and nothing of theirs lands on the default registry.
func TestEnrichersShareTheirRegistry(t *testing.T) {
	reg := newRegistry(t)
	metrics := prometheus.NewRegistry()
	resolver := enricher.ResolverFunc(func(_ context.Context, _ string, ids []string) (map[string]enricher.Record, error) {
		out := make(map[string]enricher.Record, len(ids))
		for _, id := range ids {
			out[id] = enricher.Record{Version: 1, Schema: titleSchema, Value: title{ID: id, Version: 1}}
		}
		return out, nil
	})
	entities := []string{"metricsa", "metricsb"}
	for i, entity := range entities {
		e, err := enricher.New(entity, resolver, &capture{}, reg, enricher.WithMetrics(metrics))
		if err != nil {
			t.Fatal(err)
		}
		var batch []sink.Event
		for j := range 2 + i {
			batch = append(batch, change(entity, fmt.Sprintf("%s-%d", entity, j), schema.OpUpdate, 1, int64(j)))
		}
		if err := e.Handle(context.Background(), batch); err != nil {
			t.Fatal(err)
		}
	}
	for i, entity := range entities {
		labels := map[string]string{"entity": entity}
		for _, name := range []string{"slate_enricher_events_total", "slate_enricher_materialized_total", "slate_enricher_lookups_total"} {
			if v := counter(t, metrics, name, labels); v != float64(2+i) {
				t.Errorf("%s{entity=%q} = %v, want %d", name, entity, v, 2+i)
			}
			if v := counter(t, prometheus.DefaultGatherer, name, labels); v != -1 {
				t.Errorf("%s{entity=%q} = %v on the default registry, want none", name, entity, v)
			}
		}
	}
}

// New refuses a registry that holds another collector under the name of
// one of the enricher's metrics.
func TestNewRefusesConflictingMetrics(t *testing.T) {
	taken := prometheus.NewRegistry()
	taken.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "slate_enricher_events_total", Help: "Something else."}))
	_, err := enricher.New("title", enricher.ResolverFunc(nil), &capture{}, newRegistry(t), enricher.WithMetrics(taken))
	if !errors.Is(err, enricher.ErrConfig) {
		t.Errorf("err = %v, want ErrConfig", err)
	}
}
