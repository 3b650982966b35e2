package cdc

import "github.com/prometheus/client_golang/prometheus"

// Metrics are the Prometheus collectors of a CDC pipeline; the Runner and
// the sources update them. Events per second is rate(slate_cdc_events_total).
type Metrics struct {
	// Events counts events acknowledged by Kafka, by topic.
	Events *prometheus.CounterVec
	// LagSeconds is now minus the source commit time of the last
	// acknowledged event.
	LagSeconds prometheus.Gauge
	// LagBytes is how far the confirmed position trails the source's
	// current write position (PostgreSQL WAL bytes).
	LagBytes prometheus.Gauge
	// Confirmed is the last position confirmed to the source, as a number
	// (PostgreSQL LSN, MySQL binlog-derived sequence).
	Confirmed prometheus.Gauge
	// SnapshotRows counts rows read by the initial snapshot, by table.
	SnapshotRows *prometheus.CounterVec
	// SnapshotTablesLeft is how many tables the running snapshot has not
	// finished yet (0 when none runs).
	SnapshotTablesLeft prometheus.Gauge
}

// NewMetrics returns the collectors, registered in r when r is not nil.
func NewMetrics(r prometheus.Registerer) *Metrics {
	m := &Metrics{
		Events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slate_cdc_events_total", Help: "CDC events acknowledged by Kafka.",
		}, []string{"topic"}),
		LagSeconds: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "slate_cdc_lag_seconds", Help: "Now minus the source commit time of the last acknowledged event.",
		}),
		LagBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "slate_cdc_lag_bytes", Help: "Source write position minus the confirmed position.",
		}),
		Confirmed: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "slate_cdc_confirmed_position", Help: "Last position confirmed to the source, as a number.",
		}),
		SnapshotRows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "slate_cdc_snapshot_rows_total", Help: "Rows read by the initial snapshot.",
		}, []string{"table"}),
		SnapshotTablesLeft: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "slate_cdc_snapshot_tables_left", Help: "Tables the running snapshot has not finished.",
		}),
	}
	if r != nil {
		r.MustRegister(m.Events, m.LagSeconds, m.LagBytes, m.Confirmed, m.SnapshotRows, m.SnapshotTablesLeft)
	}
	return m
}
