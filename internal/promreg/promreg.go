// Package promreg registers Prometheus collectors so that several clients
// of one kind share them on one Registerer.
package promreg

import (
	"errors"
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c on r and returns it or, when r already holds an
// equal collector (same name, help and labels) of c's type, that one, so
// that every client counting into r counts into the same series. It fails
// when r holds a different collector under c's name.
func Register[C prometheus.Collector](r prometheus.Registerer, c C) (C, error) {
	err := r.Register(c)
	if err == nil {
		return c, nil
	}
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if old, ok := are.ExistingCollector.(C); ok {
			return old, nil
		}
		return c, fmt.Errorf("a collector of type %T is registered under the name of a %T", are.ExistingCollector, c)
	}
	return c, err
}

// Set registers collectors on r one after another, each through
// [Register], and remembers the first failure.
type Set struct {
	r   prometheus.Registerer
	err error
}

// NewSet returns a Set that registers on r.
func NewSet(r prometheus.Registerer) *Set { return &Set{r: r} }

// Err returns the first registration failure, nil if there was none.
func (s *Set) Err() error { return s.err }

// Counter registers a counter vector and returns the one to count into.
func (s *Set) Counter(opts prometheus.CounterOpts, labels ...string) *prometheus.CounterVec {
	return add(s, prometheus.NewCounterVec(opts, labels), opts.Name)
}

// Gauge registers a gauge vector and returns the one to set.
func (s *Set) Gauge(opts prometheus.GaugeOpts, labels ...string) *prometheus.GaugeVec {
	return add(s, prometheus.NewGaugeVec(opts, labels), opts.Name)
}

// Histogram registers a histogram vector and returns the one to observe.
func (s *Set) Histogram(opts prometheus.HistogramOpts, labels ...string) *prometheus.HistogramVec {
	return add(s, prometheus.NewHistogramVec(opts, labels), opts.Name)
}

func add[C prometheus.Collector](s *Set, c C, name string) C {
	got, err := Register(s.r, c)
	if err != nil && s.err == nil {
		s.err = fmt.Errorf("register %s: %w", name, err)
	}
	return got
}
