package consumer

import (
	"context"
	"errors"
	"hash/fnv"
	"sync"

	"github.com/slatehq/slate/consumer/sink"
)

// laneSet is one batch split by key into lanes, with which lanes are done.
type laneSet struct {
	lanes [][]sink.Event
	done  []bool
	fails []int // failed runs of each lane with an error that is not temporary
}

// splitLanes puts the events of each key (the envelope's subject) into one
// of n lanes, keeping their order. With n == 1 the batch is one lane.
func splitLanes(events []sink.Event, n int) *laneSet {
	if n <= 1 || len(events) <= 1 {
		return &laneSet{lanes: [][]sink.Event{events}, done: []bool{len(events) == 0}, fails: []int{0}}
	}
	lanes := make([][]sink.Event, n)
	for _, ev := range events {
		h := fnv.New32a()
		_, _ = h.Write([]byte(ev.Subject))
		i := int(h.Sum32() % uint32(n))
		lanes[i] = append(lanes[i], ev)
	}
	ls := &laneSet{done: make([]bool, 0, n)}
	for _, l := range lanes {
		if len(l) > 0 {
			ls.lanes = append(ls.lanes, l)
			ls.done = append(ls.done, false)
			ls.fails = append(ls.fails, 0)
		}
	}
	return ls
}

// run hands every lane not yet done to h, concurrently when there are
// several, and returns the joined errors of the lanes that failed. With
// acceptRejected, a lane whose only failure is events refused for good by
// the sinks ([sink.RejectedError]) counts as done, and those refusals are
// returned for the caller to dead-letter.
func (ls *laneSet) run(ctx context.Context, h Handler, acceptRejected bool) ([]sink.Rejection, error) {
	errs := make([]error, len(ls.lanes))
	todo := 0
	for _, d := range ls.done {
		if !d {
			todo++
		}
	}
	if todo == 1 {
		for i, d := range ls.done {
			if !d {
				errs[i] = h.Handle(ctx, ls.lanes[i])
			}
		}
	} else if todo > 1 {
		var wg sync.WaitGroup
		for i := range ls.lanes {
			if !ls.done[i] {
				wg.Go(func() { errs[i] = h.Handle(ctx, ls.lanes[i]) })
			}
		}
		wg.Wait()
	}
	var rejected []sink.Rejection
	for i, err := range errs {
		if ls.done[i] {
			continue
		}
		if rs, ok := sink.Rejections(err); ok && acceptRejected {
			rejected = append(rejected, rs...)
			err, errs[i] = nil, nil
		}
		ls.done[i] = err == nil
		if err != nil && !temporary(err) {
			ls.fails[i]++
		}
	}
	return rejected, errors.Join(errs...)
}

// exhausted returns the lanes not done that failed at least n times with
// an error that is not temporary.
func (ls *laneSet) exhausted(n int) []int {
	var out []int
	for i, f := range ls.fails {
		if !ls.done[i] && f >= n {
			out = append(out, i)
		}
	}
	return out
}

// temporary reports whether err says nothing against the events: a store
// busy or unreachable, a done record that failed after the write, a claim
// held by another consumer, a deadline.
// Such failures are retried without counting toward [WithMaxAttempts].
func temporary(err error) bool {
	return errors.Is(err, sink.ErrUnavailable) || errors.Is(err, ErrDedupeUnavailable) || errors.Is(err, ErrDedupeDone) ||
		errors.Is(err, ErrClaimHeld) ||
		errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
