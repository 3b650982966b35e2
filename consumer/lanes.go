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
}

// splitLanes puts the events of each key (the envelope's subject) into one
// of n lanes, keeping their order. With n == 1 the batch is one lane.
func splitLanes(events []sink.Event, n int) *laneSet {
	if n <= 1 || len(events) <= 1 {
		ls := &laneSet{lanes: [][]sink.Event{events}, done: []bool{len(events) == 0}}
		return ls
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
		}
	}
	return ls
}

// run hands every lane not yet done to h, concurrently when there are
// several, and returns the joined errors of the lanes that failed.
func (ls *laneSet) run(ctx context.Context, h Handler) error {
	todo := 0
	last := -1
	for i, d := range ls.done {
		if !d {
			todo++
			last = i
		}
	}
	switch todo {
	case 0:
		return nil
	case 1:
		if err := h.Handle(ctx, ls.lanes[last]); err != nil {
			return err
		}
		ls.done[last] = true
		return nil
	}
	errs := make([]error, len(ls.lanes))
	var wg sync.WaitGroup
	for i := range ls.lanes {
		if ls.done[i] {
			continue
		}
		wg.Go(func() { errs[i] = h.Handle(ctx, ls.lanes[i]) })
	}
	wg.Wait()
	for i, err := range errs {
		if err == nil {
			ls.done[i] = true
		}
	}
	return errors.Join(errs...)
}
