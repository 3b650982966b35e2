package postgres

import (
	"context"
	"sync"

	"github.com/slatehq/slate/cdc"
)

// pending is one event of a unit: a row change still to be encoded, or an
// event built already (an outbox envelope).
type pending struct {
	ch *cdc.Change
	ev cdc.Event
}

// unit is a committed transaction, or a part of a big one, on its way from
// the replication goroutine through an encoder to emit. Units are emitted
// in the order they were submitted, whatever order the encoders finish in.
type unit struct {
	items  []pending
	pos    cdc.Position // nil: part of a transaction whose position comes later
	events []cdc.Event
	err    error
	done   chan struct{}
}

// pipeline decodes on the caller's goroutine (the replication stream) and
// encodes on several workers, emitting batches in submission order from
// one emitter goroutine. Positions are emitted with their units, so the
// ack order (and with it what the slot confirms) is exactly the order the
// source read the transactions in.
type pipeline struct {
	enc    *cdc.Encoder
	emit   cdc.EmitFunc
	ctx    context.Context
	cancel context.CancelFunc
	jobs   chan *unit
	order  chan *unit
	failed chan struct{}
	err    error // set before failed is closed
	wg     sync.WaitGroup
}

// startPipeline runs workers encoders and the emitter until stop; depth
// bounds the units in flight.
func startPipeline(ctx context.Context, enc *cdc.Encoder, emit cdc.EmitFunc, workers, depth int) *pipeline {
	pctx, cancel := context.WithCancel(ctx)
	p := &pipeline{
		enc: enc, emit: emit, ctx: pctx, cancel: cancel,
		jobs: make(chan *unit, depth), order: make(chan *unit, depth), failed: make(chan struct{}),
	}
	for range workers {
		p.wg.Go(p.encodeLoop)
	}
	p.wg.Go(p.emitLoop)
	return p
}

func (p *pipeline) encodeLoop() {
	for u := range p.jobs {
		for i, it := range u.items {
			if it.ch == nil {
				u.events[i] = it.ev
				continue
			}
			ev, err := p.enc.Encode(p.ctx, it.ch)
			if err != nil {
				u.err = err
				break
			}
			u.events[i] = ev
		}
		close(u.done)
	}
}

func (p *pipeline) emitLoop() {
	for u := range p.order {
		select {
		case <-u.done:
		case <-p.ctx.Done():
			return
		}
		err := u.err
		if err == nil {
			err = p.emit(p.ctx, cdc.Batch{Events: u.events, Position: u.pos})
		}
		if err != nil {
			p.err = err
			close(p.failed)
			p.cancel()
			return
		}
	}
}

// submit hands u on; it blocks while depth units are in flight and
// returns the pipeline's error once it failed.
func (p *pipeline) submit(ctx context.Context, u *unit) error {
	u.done = make(chan struct{})
	u.events = make([]cdc.Event, len(u.items))
	encode := false
	for _, it := range u.items {
		if it.ch != nil {
			encode = true
			break
		}
	}
	if !encode {
		for i, it := range u.items {
			u.events[i] = it.ev
		}
		close(u.done)
	}
	select {
	case p.order <- u:
	case <-p.failed:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
	if !encode {
		return nil
	}
	select {
	case p.jobs <- u:
		return nil
	case <-p.failed:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// failure returns the error the pipeline stopped with, or nil.
func (p *pipeline) failure() error {
	select {
	case <-p.failed:
		return p.err
	default:
		return nil
	}
}

// stop cancels what is still in flight (none of it was acknowledged, so a
// restart replays it) and waits for the goroutines.
func (p *pipeline) stop() {
	p.cancel()
	close(p.order)
	close(p.jobs)
	p.wg.Wait()
}
