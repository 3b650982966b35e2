package consumer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/dedupe"
)

// Handler processes one batch of events. Returning nil means the whole
// batch is done and its offsets may be committed; an error means the batch
// is retried (with backoff) as a whole, so handlers must be idempotent.
// Events of one key arrive in offset order.
type Handler interface {
	Handle(ctx context.Context, batch []sink.Event) error
}

// HandlerFunc adapts a function to a [Handler].
type HandlerFunc func(ctx context.Context, batch []sink.Event) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, batch []sink.Event) error { return f(ctx, batch) }

// Named is implemented by sinks that choose their name in [ToSinks], the
// label of their metrics and the key of their per-sink dedupe marks; the
// sinks of slate's sink packages are named after their package ("es",
// "bleve", "hive", "kafka"). Other sinks are known by their Go type
// ("*main.auditSink").
type Named interface {
	Name() string
}

// SinkNamer is implemented by handlers that write each event to a fixed
// set of named sinks, as [ToSinks] does. [Deduplicate] uses the names to
// keep a done mark per sink for an event that some sinks wrote and another
// refused ([sink.Rejection.Sink]), and to skip those sinks when the event
// is replayed ([sink.Event.SkipSinks]).
type SinkNamer interface {
	SinkNames() []string
}

// ToSinks returns a handler that writes each batch to every sink in turn
// and fails if any of them fails. A retried batch is written again to the
// sinks that had succeeded, which their idempotency makes harmless.
//
// A sink that refuses some events for good ([sink.RejectedError]) does not
// stop the others: every sink still gets the whole batch, and the handler
// returns one [*sink.RejectedError] with the refusals of all sinks, each
// naming its sink ([sink.Rejection.Sink], and in its cause), so that the
// consumer dead-letters those events.
//
// An event is not written to the sinks that [sink.Event.SkipSinks] names:
// [Deduplicate] sets it when a replayed event was written before by some
// sinks and refused by others, so that the replay reaches only the sinks
// that refused it. Sinks are known by their name ([Named], else their Go
// type); when several share a name, the second and later get "#2", "#3"
// and so on appended, in the order given. The names are what [SinkNamer]
// reports and what labels the metrics; keep them, and so the order of
// same-named sinks, stable across deployments, or per-sink done marks
// recorded under the old names are not found.
//
// The handler is safe for concurrent use ([WithConcurrency]): calls to one
// sink are serialised, as the [sink.Sink] contract requires, while
// different lanes can be in different sinks at once. Each write is timed
// and counted per sink (slate_sink_write_seconds, slate_sink_errors_total,
// slate_sink_freshness_seconds) on the Registerer of the consumer that
// runs the handler ([WithMetrics]); called outside a consumer, it counts
// on prometheus.DefaultRegisterer.
func ToSinks(sinks ...sink.Sink) Handler {
	ss := &sinkSet{sinks: sinks, names: make([]string, len(sinks)), locks: make([]sync.Mutex, len(sinks))}
	seen := make(map[string]int, len(sinks))
	for i, s := range sinks {
		name := fmt.Sprintf("%T", s)
		if n, ok := s.(Named); ok {
			name = n.Name()
		}
		if seen[name]++; seen[name] > 1 {
			name = fmt.Sprintf("%s#%d", name, seen[name])
		}
		ss.names[i] = name
	}
	return ss
}

// sinkSet is the handler [ToSinks] returns.
type sinkSet struct {
	sinks []sink.Sink
	names []string
	locks []sync.Mutex
}

// SinkNames returns the names of the sinks, in the order they are written.
func (ss *sinkSet) SinkNames() []string { return slices.Clone(ss.names) }

// Handle writes batch to every sink, leaving out of each sink's share the
// events that name it in SkipSinks.
func (ss *sinkSet) Handle(ctx context.Context, batch []sink.Event) error {
	skips := slices.ContainsFunc(batch, func(ev sink.Event) bool { return len(ev.SkipSinks) > 0 })
	var rejected []sink.Rejection
	m := metricsOf(ctx)
	for i, s := range ss.sinks {
		part := batch
		if skips {
			part = withoutSkipped(batch, ss.names[i])
			if len(part) == 0 {
				continue
			}
		}
		ss.locks[i].Lock()
		start := time.Now()
		err := s.Write(ctx, part)
		now := time.Now()
		ss.locks[i].Unlock()
		m.sinkSeconds.WithLabelValues(ss.names[i]).Observe(now.Sub(start).Seconds())
		applied := len(part)
		if err != nil {
			m.sinkErrors.WithLabelValues(ss.names[i]).Inc()
			rs, ok := sink.Rejections(err)
			if !ok {
				return fmt.Errorf("consumer: sink %d (%s): %w", i, ss.names[i], err)
			}
			m.sinkRejected.WithLabelValues(ss.names[i]).Add(float64(len(rs)))
			for _, r := range rs {
				r.Err = fmt.Errorf("sink %s: %w", ss.names[i], r.Err)
				r.Sink = ss.names[i]
				rejected = append(rejected, r)
			}
			applied -= len(rs)
		}
		m.sinkEvents.WithLabelValues(ss.names[i]).Add(float64(applied))
		fresh := m.sinkFreshness.WithLabelValues(ss.names[i])
		for j := range part {
			fresh.Observe(now.Sub(part[j].Time).Seconds())
		}
	}
	return sink.Reject(rejected...)
}

// withoutSkipped returns the events of batch that do not name the sink in
// their SkipSinks.
func withoutSkipped(batch []sink.Event, name string) []sink.Event {
	out := make([]sink.Event, 0, len(batch))
	for _, ev := range batch {
		if !slices.Contains(ev.SkipSinks, name) {
			out = append(out, ev)
		}
	}
	return out
}

// DedupeStore is what [Deduplicate] needs of a dedupe store; the stores of
// package dedupe implement it.
type DedupeStore interface {
	Claim(ctx context.Context, ids []string, lease time.Duration) (st []dedupe.Status, err error)
	Done(ctx context.Context, ids []string, ttl time.Duration) error
	Release(ctx context.Context, ids []string) error
}

// DedupeConfig sets how long a claim and a done record last.
type DedupeConfig struct {
	// Lease bounds how long a claimed id stays blocked if the process dies
	// between the claim and the write (default 1m): the next owner of the
	// partition finds the id held, retries the batch with backoff, and
	// applies the event once the lease ran out. Keep it above the longest
	// sink write of a batch, or a slow write's events may be applied twice.
	Lease time.Duration
	// TTL is how long a done id is remembered (default 7 days): a
	// duplicate delivered within it costs a lookup, not a sink write.
	TTL time.Duration
	// OnDuplicates, if set, is told how many duplicates each batch dropped.
	OnDuplicates func(n int)
	// FailOpen, when the store is unavailable (its error wraps
	// dedupe.ErrUnavailable), passes the whole batch to next without
	// dedupe and relies on the sinks' own idempotency (external versions
	// in Elasticsearch, offset-named files in Hive). A replay of the same
	// offsets stays harmless then, but a redelivery at a new offset (a
	// producer retry) is written again by sinks that are idempotent by
	// offset only, such as the Hive audit table. When false, the default,
	// the batch fails with [ErrDedupeUnavailable] and the consumer pauses
	// its partitions and retries with backoff until the store is back.
	FailOpen bool
	// Group labels the dedupe metrics (slate_consumer_duplicates_total,
	// slate_consumer_dedupe_fail_open_total); usually the consumer group.
	// They are counted on the Registerer of the consumer that runs the
	// handler ([WithMetrics]), or on prometheus.DefaultRegisterer outside
	// a consumer.
	Group string
	// Logger receives a warning per fail-open batch; the default discards.
	Logger *slog.Logger
}

// ErrDedupeUnavailable is wrapped, beside the store's own error, when the
// dedupe store could not be reached and [DedupeConfig.FailOpen] is off.
var ErrDedupeUnavailable = errors.New("consumer: dedupe store unavailable")

// ErrDedupeDone is wrapped, beside the store's own error, when every sink
// wrote a batch but the store failed to record its ids as done. The write
// is not repeated: [Deduplicate] remembers those ids and, when the
// consumer retries the batch, records them as done again instead of
// claiming and writing them. The failure is temporary: it never counts
// toward [WithMaxAttempts] and never dead-letters an event.
var ErrDedupeDone = errors.New("consumer: dedupe done not recorded")

// ErrClaimHeld is returned for a batch with events that another claim
// holds ([dedupe.Held]): a consumer that is still writing them, or one that
// died and whose lease has not run out. The batch is retried with backoff
// until each of them is done (then dropped as a duplicate) or free again.
var ErrClaimHeld = errors.New("consumer: events held by another consumer's dedupe claim")

// Deduplicate returns a handler that drops events whose envelope id is
// already done, passes the fresh ones to next, records them as done only
// after next succeeded, and releases them if it failed so the retry runs
// them. A batch with an id that another claim holds is not applied: its
// claims are released and it fails with [ErrClaimHeld], to be retried once
// the holder finished or its lease ran out; skipping the id instead would
// lose the event if the holder had died.
//
// An event that next refused for good ([sink.RejectedError]) and no sink
// wrote is released, not done, so that a retry or a replay of its dead
// letter meets it again. When next writes to named sinks ([SinkNamer], as
// [ToSinks] does) and the refusal names its sink ([sink.Rejection.Sink]),
// an event that some sinks wrote is done, and each sink that wrote it gets
// a done mark of its own, the store id "<id>\x00<sink name>", with the same
// TTL. Whenever an event comes back whose id is done (a replay of its dead
// letter, a copy at another offset, the same offset after a crash before
// its dead letter was written), Deduplicate claims its per-sink marks: if
// some sinks have one and others not, it passes the event on with
// [sink.Event.SkipSinks] naming the sinks that hold it, so it reaches only
// the sinks that refused it, and the append-only ones (the Hive audit
// table) do not get it twice; otherwise it is a duplicate. A replayed event
// ([Replay], which sets [sink.Event.ReplayedFrom]) whose id is fresh has
// its marks claimed too. A batch without replays or duplicates costs one
// claim and one done call; the per-sink marks cost one more claim per
// batch with replays, and a claim and a release per batch with duplicates.
func Deduplicate(store DedupeStore, cfg DedupeConfig, next Handler) Handler {
	if cfg.Lease <= 0 {
		cfg.Lease = time.Minute
	}
	if cfg.TTL <= 0 {
		cfg.TTL = 7 * 24 * time.Hour
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	d := &deduper{store: store, cfg: cfg, next: next, pending: map[string]pendingDone{}}
	if sn, ok := next.(SinkNamer); ok {
		d.names = sn.SinkNames()
	}
	return HandlerFunc(d.handle)
}

// deduper is the handler [Deduplicate] returns.
type deduper struct {
	store DedupeStore
	cfg   DedupeConfig
	next  Handler
	names []string // next's sinks, nil when it does not name them

	// pending holds, by event id, what the sinks wrote but the store
	// failed to record as done: a retry records it rather than writing
	// the event again.
	mu      sync.Mutex
	pending map[string]pendingDone
}

// pendingDone is what the retry of an event whose done record failed
// records before anything else.
type pendingDone struct {
	marks []string // store ids to record done
	full  bool     // every sink holds the event: the retry drops it
	skip  []string // otherwise, the sinks that hold it
}

// sinkMark is the store id of the done mark of event id in the sink named
// name.
func sinkMark(id, name string) string { return id + "\x00" + name }

func (d *deduper) handle(ctx context.Context, batch []sink.Event) error {
	batch, err := d.recordPending(ctx, batch)
	if err != nil || len(batch) == 0 {
		return err
	}
	ids := make([]string, len(batch))
	for i := range batch {
		ids[i] = batch[i].ID
	}
	states, err := d.store.Claim(ctx, ids, d.cfg.Lease)
	if err != nil {
		if !dedupe.IsRetryable(err) {
			return fmt.Errorf("consumer: dedupe claim: %w", err)
		}
		if !d.cfg.FailOpen {
			return fmt.Errorf("%w: claim: %w", ErrDedupeUnavailable, err)
		}
		d.failOpen(ctx, len(batch), err)
		return d.next.Handle(ctx, batch)
	}
	keep := make([]sink.Event, 0, len(batch))
	claimed := make([]string, 0, len(batch))
	var done []sink.Event // the events whose id is done already
	heldID, nHeld := "", 0
	for i, st := range states {
		switch st {
		case dedupe.Fresh:
			keep = append(keep, batch[i])
			claimed = append(claimed, ids[i])
		case dedupe.Held:
			if nHeld == 0 {
				heldID = ids[i]
			}
			nHeld++
		case dedupe.Duplicate:
			if len(d.names) > 0 {
				done = append(done, batch[i])
			}
		}
	}
	if nHeld > 0 {
		metricsOf(ctx).held.WithLabelValues(d.cfg.Group).Add(float64(nHeld))
		return errors.Join(fmt.Errorf("%w: %d of %d events, first %s", ErrClaimHeld, nHeld, len(batch), heldID),
			d.release(ctx, claimed))
	}
	leases, err := d.claimMarks(ctx, keep, false)
	if err != nil {
		return errors.Join(err, d.release(ctx, claimed))
	}
	owned := len(keep) // keep[:owned] hold a claim on their id
	if len(done) > 0 {
		// An id done with per-sink marks was written by some sinks and
		// refused by others: the sinks without a mark still lack it.
		partly, pleases, err := d.partlyWritten(ctx, done)
		if err != nil {
			return errors.Join(err, d.release(ctx, slices.Concat(claimed, slices.Concat(leases...))))
		}
		if len(partly) > 0 {
			if leases == nil {
				leases = make([][]string, len(keep))
			}
			keep = append(keep, partly...)
			leases = append(leases, pleases...)
		}
	}
	if n := len(batch) - len(keep); n > 0 {
		metricsOf(ctx).duplicates.WithLabelValues(d.cfg.Group).Add(float64(n))
		if d.cfg.OnDuplicates != nil {
			d.cfg.OnDuplicates(n)
		}
	}
	if len(keep) == 0 {
		return nil
	}
	return d.settle(ctx, keep, owned, leases, d.next.Handle(ctx, keep))
}

// partlyWritten returns the events of done (their ids are done) that some
// sink refused: those with a per-sink mark of at least one sink and none
// of another. It sets their SkipSinks to the sinks that hold them, and
// returns per event the marks it claimed; the claims of the events that
// every sink or no sink marked (a plain duplicate) are released.
func (d *deduper) partlyWritten(ctx context.Context, done []sink.Event) ([]sink.Event, [][]string, error) {
	leases, err := d.claimMarks(ctx, done, true)
	if err != nil || leases == nil {
		return nil, nil, err
	}
	var out []sink.Event
	var outLeases [][]string
	var free []string
	for i := range done {
		if len(done[i].SkipSinks) > 0 && len(leases[i]) > 0 {
			out = append(out, done[i])
			outLeases = append(outLeases, leases[i])
			continue
		}
		free = append(free, leases[i]...)
	}
	return out, outLeases, d.release(ctx, free)
}

func (d *deduper) failOpen(ctx context.Context, events int, err error) {
	metricsOf(ctx).failOpen.WithLabelValues(d.cfg.Group).Inc()
	d.cfg.Logger.Warn("dedupe store unavailable, writing without dedupe", "group", d.cfg.Group, "events", events, "err", err)
}

// release gives claims back with a fresh context: it must happen even when
// ctx was cancelled, or the ids stay blocked until the lease ends.
func (d *deduper) release(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return d.store.Release(rctx, ids)
}

// done records ids as done with a fresh context, as release does: the
// sinks wrote them, and a stop that cancels ctx between the write and its
// record would otherwise make a restart claim and write them again.
func (d *deduper) done(ctx context.Context, ids []string) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	return d.store.Done(dctx, ids, d.cfg.TTL)
}

// recordPending records as done what an earlier call wrote but could not
// record, and returns batch without the events every sink holds and with
// the sinks to skip set on the others.
func (d *deduper) recordPending(ctx context.Context, batch []sink.Event) ([]sink.Event, error) {
	d.mu.Lock()
	if len(d.pending) == 0 {
		d.mu.Unlock()
		return batch, nil
	}
	var marks, found []string
	rest := make([]sink.Event, 0, len(batch))
	for _, ev := range batch {
		p, ok := d.pending[ev.ID]
		if !ok {
			rest = append(rest, ev)
			continue
		}
		marks = append(marks, p.marks...)
		found = append(found, ev.ID)
		if !p.full {
			ev.SkipSinks = p.skip
			rest = append(rest, ev)
		}
	}
	d.mu.Unlock()
	if len(found) == 0 {
		return batch, nil
	}
	if err := d.done(ctx, marks); err != nil {
		return nil, fmt.Errorf("%w: %d written events: %w", ErrDedupeDone, len(found), err)
	}
	d.mu.Lock()
	for _, id := range found {
		delete(d.pending, id)
	}
	d.mu.Unlock()
	return rest, nil
}

// claimMarks claims the per-sink done marks of the replayed events of keep
// (of every event with all) and adds to their SkipSinks the sinks whose mark is done. It returns, per
// event of keep, the marks it now holds a lease on; nil when there are
// none to look up.
func (d *deduper) claimMarks(ctx context.Context, keep []sink.Event, all bool) ([][]string, error) {
	if len(d.names) == 0 {
		return nil, nil
	}
	var marks []string
	var of []int // of[j]: the event of keep that marks[j] belongs to
	for i := range keep {
		if keep[i].ReplayedFrom == "" && !all {
			continue
		}
		for _, n := range d.names {
			marks = append(marks, sinkMark(keep[i].ID, n))
			of = append(of, i)
		}
	}
	if len(marks) == 0 {
		return nil, nil
	}
	states, err := d.store.Claim(ctx, marks, d.cfg.Lease)
	if err != nil {
		switch {
		case !dedupe.IsRetryable(err):
			return nil, fmt.Errorf("consumer: dedupe claim of per-sink marks: %w", err)
		case !d.cfg.FailOpen:
			return nil, fmt.Errorf("%w: claim of per-sink marks: %w", ErrDedupeUnavailable, err)
		}
		d.failOpen(ctx, len(keep), err)
		return nil, nil
	}
	leases := make([][]string, len(keep))
	for j, st := range states {
		i, name := of[j], d.names[j%len(d.names)]
		switch st {
		case dedupe.Duplicate:
			if !slices.Contains(keep[i].SkipSinks, name) {
				keep[i].SkipSinks = append(slices.Clip(keep[i].SkipSinks), name)
			}
		case dedupe.Fresh:
			leases[i] = append(leases[i], marks[j])
		}
	}
	return leases, nil
}

// settle records what next did with keep: every event it wrote to every
// sink is done, an event some sink refused is released and gets a done
// mark for each sink that wrote it, and on any other failure everything is
// released for the retry. leases holds, per event, the per-sink marks
// claimed for it.
func (d *deduper) settle(ctx context.Context, keep []sink.Event, owned int, leases [][]string, err error) error {
	leased := func(i int) []string {
		if leases == nil {
			return nil
		}
		return leases[i]
	}
	// own returns the claim on event i's id, if this call holds one.
	own := func(i int) []string {
		if i < owned {
			return []string{keep[i].ID}
		}
		return nil
	}
	rs, rejectedOnly := sink.Rejections(err)
	if err != nil && !rejectedOnly {
		free := make([]string, 0, len(keep))
		for i := range keep {
			free = append(append(free, own(i)...), leased(i)...)
		}
		return errors.Join(err, d.release(ctx, free))
	}
	// refusers[id]: the sinks that refused the event, "" for one unknown.
	refusers := make(map[string][]string, len(rs))
	for _, r := range rs {
		refusers[r.Event.ID] = append(refusers[r.Event.ID], r.Sink)
	}
	done := make([]string, 0, len(keep))
	var free []string
	partial := map[string]pendingDone{}
	for i, ev := range keep {
		by, refused := refusers[ev.ID]
		if !refused {
			done = append(append(done, own(i)...), leased(i)...)
			continue
		}
		marks, ok := d.writerMarks(&ev, by)
		for _, m := range leased(i) {
			if !slices.Contains(marks, m) {
				free = append(free, m)
			}
		}
		if !ok || len(marks) == 0 && len(ev.SkipSinks) == 0 {
			// No sink holds it, or which one cannot be told: released, so
			// that a retry or a replay meets it again instead of dropping it
			// as a duplicate.
			free = append(free, own(i)...)
			continue
		}
		// Done, with a mark per sink that holds it: a redelivery of it
		// (a replay, a copy at another offset, the same offset after a
		// crash before its dead letter was written) reaches only the
		// sinks without a mark.
		marks = append(own(i), marks...)
		done = append(done, marks...)
		partial[ev.ID] = pendingDone{marks: marks, skip: append(slices.Clip(ev.SkipSinks), d.writers(&ev, by)...)}
	}
	if rerr := d.release(ctx, free); rerr != nil {
		return errors.Join(err, rerr)
	}
	if len(done) == 0 {
		return err
	}
	derr := d.done(ctx, done)
	if derr == nil {
		return err
	}
	if d.cfg.FailOpen && dedupe.IsRetryable(derr) {
		// The writes happened; the leases expire and a redelivery is
		// absorbed by the sinks' own idempotency.
		d.cfg.Logger.Warn("dedupe store unavailable, done markers not recorded", "group", d.cfg.Group, "events", len(keep), "err", derr)
		return err
	}
	// The sinks wrote these events; only the bookkeeping failed. The retry
	// records them as done without writing them again.
	d.mu.Lock()
	for i, ev := range keep {
		if p, ok := partial[ev.ID]; ok {
			d.pending[ev.ID] = p
		} else if _, refused := refusers[ev.ID]; !refused {
			d.pending[ev.ID] = pendingDone{marks: append([]string{ev.ID}, leased(i)...), full: true}
		}
	}
	d.mu.Unlock()
	return errors.Join(err, fmt.Errorf("%w: %d events: %w", ErrDedupeDone, len(keep)-len(refusers)+len(partial), derr))
}

// writers returns the sinks that wrote ev in this call: those of next not
// skipped and not among the refusers.
func (d *deduper) writers(ev *sink.Event, refusers []string) []string {
	var out []string
	for _, n := range d.names {
		if !slices.Contains(ev.SkipSinks, n) && !slices.Contains(refusers, n) {
			out = append(out, n)
		}
	}
	return out
}

// writerMarks returns the per-sink done marks of the sinks that wrote ev
// although others refused it. ok is false when the refusing sinks are not
// known by name, and per-sink marks cannot be kept.
func (d *deduper) writerMarks(ev *sink.Event, refusers []string) (marks []string, ok bool) {
	if len(d.names) == 0 {
		return nil, false
	}
	for _, r := range refusers {
		if !slices.Contains(d.names, r) {
			return nil, false
		}
	}
	for _, n := range d.writers(ev, refusers) {
		marks = append(marks, sinkMark(ev.ID, n))
	}
	return marks, true
}
