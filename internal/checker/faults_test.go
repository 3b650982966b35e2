package checker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/dedupe"
	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/schema"
)

// faults is what the run's fault operations arm; the wrappers below act on
// it at their next call.
type faults struct {
	mu        sync.Mutex
	refuse    int             // refuse the first event of this many next writes
	downUntil time.Time       // the search sinks are unavailable until then
	killSink  bool            // the next sink write dies after the audit sink wrote
	killEnr   bool            // the next enricher publish dies after half of it
	refused   map[string]bool // ids the search sink refused
	accepted  map[string]bool // ids the search sink wrote

	jmu     sync.Mutex
	journal []string // what the sinks, the dedupe store and the consumers did, for a failure's report
}

// note adds a line to the journal.
func (f *faults) note(format string, args ...any) {
	line := time.Now().Format("15:04:05.000000 ") + fmt.Sprintf(format, args...)
	f.jmu.Lock()
	f.journal = append(f.journal, line)
	f.jmu.Unlock()
}

// about returns the journal's lines that name id or are of the kinds
// every story needs (restarts, rebalances, dead letters).
func (f *faults) about(id string) []string {
	f.jmu.Lock()
	defer f.jmu.Unlock()
	var out []string
	for _, l := range f.journal {
		if strings.Contains(l, id) || strings.Contains(l, "consumer:") || strings.Contains(l, "op:") {
			out = append(out, l)
		}
	}
	return out
}

// journalHandler writes the consumers' log records to the journal.
type journalHandler struct {
	f     *faults
	attrs []slog.Attr
}

func (h journalHandler) Enabled(context.Context, slog.Level) bool { return true }

func (h journalHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "consumer: %s %s", r.Level, r.Message)
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s=%v", a.Key, a.Value)
	}
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s=%v", a.Key, a.Value); return true })
	h.f.note("%s", b.String())
	return nil
}

func (h journalHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return journalHandler{f: h.f, attrs: append(slices.Clip(h.attrs), as...)}
}

func (h journalHandler) WithGroup(string) slog.Handler { return h }

func (f *faults) down() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Now().Before(f.downUntil)
}

// faulty wraps a search sink: it is unavailable during an outage, and
// refuses for good the first event of an armed write (unless the event was
// replayed from its dead letter, which it then accepts).
type faulty struct {
	sink.Sink
	name string
	f    *faults
}

func (s *faulty) Name() string { return s.name }

func (s *faulty) Write(ctx context.Context, batch []sink.Event) error {
	if s.f.down() {
		return sink.NewUnavailable(s.name + ": outage")
	}
	for i := range batch {
		s.f.note("%s write[%d] %s %s/%d@%d replayed=%q skip=%v", s.name, i, batch[i].ID, batch[i].Topic, batch[i].Partition, batch[i].Offset, batch[i].ReplayedFrom, batch[i].SkipSinks)
	}
	s.f.mu.Lock()
	var refused []sink.Rejection
	if s.f.refuse > 0 && len(batch) > 0 && batch[0].ReplayedFrom == "" {
		s.f.refuse--
		s.f.refused[batch[0].ID] = true
		refused = append(refused, sink.Rejection{Event: batch[0], Err: errors.New(s.name + ": refused by the checker")})
		batch = batch[1:]
	}
	s.f.mu.Unlock()
	if len(refused) > 0 {
		s.f.note("%s refused %s", s.name, refused[0].Event.ID)
	}
	if err := s.Sink.Write(ctx, batch); err != nil {
		s.f.note("%s write failed: %v", s.name, err)
		return err
	}
	s.f.mu.Lock()
	for i := range batch {
		s.f.accepted[batch[i].ID] = true
	}
	s.f.mu.Unlock()
	return sink.Reject(refused...)
}

// killer sits between the audit sink and the search sinks: an armed kill
// makes the sink consumer die there, after the audit sink wrote the batch
// and before the others did: its context is cancelled and its dedupe store
// stops answering, so nothing is committed, released or marked done, as
// when a process is killed.
type killer struct {
	name  string
	f     *faults
	inc   *incarnation
	kills *atomic.Int64
}

func (k *killer) Name() string { return k.name }

func (k *killer) Write(ctx context.Context, _ []sink.Event) error {
	k.f.mu.Lock()
	kill := k.f.killSink
	k.f.killSink = false
	k.f.mu.Unlock()
	if kill {
		k.kills.Add(1)
		k.inc.kill()
		return context.Canceled
	}
	return nil
}

func (*killer) Close(context.Context) error { return nil }

// incarnation is one run of a consumer process.
type incarnation struct {
	cancel context.CancelFunc
	dead   atomic.Bool
}

func (i *incarnation) kill() { i.dead.Store(true); i.cancel() }

// mortalStore is an incarnation's view of the shared dedupe store: once the
// incarnation is dead, it answers nothing.
type mortalStore struct {
	consumer.DedupeStore
	inc *incarnation
	f   *faults
}

var errDead = errors.New("checker: the process was killed")

func (s mortalStore) Claim(ctx context.Context, ids []string, lease time.Duration) ([]dedupe.Status, error) {
	if s.inc.dead.Load() {
		return nil, errDead
	}
	st, err := s.DedupeStore.Claim(ctx, ids, lease)
	for i := range st {
		s.f.note("store claim %q %v", ids[i], st[i])
	}
	if err != nil {
		s.f.note("store claim failed: %v", err)
	}
	return st, err
}

func (s mortalStore) Done(ctx context.Context, ids []string, ttl time.Duration) error {
	if s.inc.dead.Load() {
		return errDead
	}
	err := s.DedupeStore.Done(ctx, ids, ttl)
	s.f.note("store done %q err=%v", ids, err)
	return err
}

func (s mortalStore) Release(ctx context.Context, ids []string) error {
	if s.inc.dead.Load() {
		return errDead
	}
	err := s.DedupeStore.Release(ctx, ids)
	s.f.note("store release %q err=%v", ids, err)
	return err
}

// mortalPublisher is the enricher's publisher: an armed kill publishes half
// of the next call's envelopes, then kills the enricher that called it.
type mortalPublisher struct {
	enricher.Publisher
	f     *faults
	mu    sync.Mutex
	inc   *incarnation // the enricher incarnation publishing now
	kills *atomic.Int64
}

func (p *mortalPublisher) set(inc *incarnation) { p.mu.Lock(); p.inc = inc; p.mu.Unlock() }

func (p *mortalPublisher) Publish(ctx context.Context, topic string, envs ...schema.Envelope) error {
	p.f.mu.Lock()
	kill := p.f.killEnr && len(envs) > 0
	if kill {
		p.f.killEnr = false
	}
	p.f.mu.Unlock()
	if !kill {
		return p.Publisher.Publish(ctx, topic, envs...)
	}
	if err := p.Publisher.Publish(ctx, topic, envs[:len(envs)/2]...); err != nil {
		return err
	}
	p.kills.Add(1)
	p.mu.Lock()
	inc := p.inc
	p.mu.Unlock()
	if inc != nil {
		inc.kill()
	}
	return context.Canceled
}
