package bench

import (
	"runtime"
	"slices"
	"testing"
	"time"
)

// side is one contender of a same-run comparison.
type side struct {
	name string
	run  func() error
}

// rounds holds, per round, how long each side took.
type rounds [][]time.Duration

// runRounds runs every side once per benchmark op, rotating the order so
// that no side always runs first (or right after another's garbage), with
// a GC before each, and reports each side's rate as <name>-rec/s for
// perRound records a round.
func runRounds(b *testing.B, perRound int, sides []side) rounds {
	b.Helper()
	var rs rounds
	b.ResetTimer()
	for b.Loop() {
		took := make([]time.Duration, len(sides))
		for k := range sides {
			i := (len(rs) + k) % len(sides)
			b.StopTimer()
			runtime.GC()
			b.StartTimer()
			start := time.Now()
			if err := sides[i].run(); err != nil {
				b.Fatalf("%s: %v", sides[i].name, err)
			}
			took[i] = time.Since(start)
		}
		rs = append(rs, took)
	}
	b.StopTimer()
	for i, s := range sides {
		var total time.Duration
		for _, r := range rs {
			total += r[i]
		}
		b.ReportMetric(float64(len(rs)*perRound)/total.Seconds(), s.name+"-rec/s")
	}
	return rs
}

// ratio is the median over the rounds of side num's rate over side den's.
// Ratios are taken per round, between sides that ran moments apart: on a
// shared machine the load changes between rounds more than within one.
func (rs rounds) ratio(num, den int) float64 {
	r := make([]float64, len(rs))
	for j, took := range rs {
		r[j] = took[den].Seconds() / took[num].Seconds()
	}
	slices.Sort(r)
	return r[len(r)/2]
}
