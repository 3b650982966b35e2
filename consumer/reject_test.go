package consumer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/dedupe"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

// seenIDs is a sink that records the ids it was handed.
type seenIDs struct {
	mu  sync.Mutex
	ids map[string]int
}

func (s *seenIDs) Write(_ context.Context, batch []sink.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ev := range batch {
		s.ids[ev.ID]++
	}
	return nil
}

func (s *seenIDs) Close(context.Context) error { return nil }

func (s *seenIDs) has(id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id] > 0
}

// waitDeadLetters waits until topic's dead-letter topic holds records and
// returns them.
func waitDeadLetters(t *testing.T, brokers, topic string) []consumer.DeadLetter {
	t.Helper()
	var dls []consumer.DeadLetter
	testenv.WaitFor(t, 20*time.Second, "dead letters of "+topic, func() bool {
		dls = dls[:0]
		err := consumer.ReadDeadLetters(t.Context(), brokers, schema.DLQTopic(topic), func(d consumer.DeadLetter) error {
			dls = append(dls, d)
			return nil
		})
		return err == nil && len(dls) > 0
	})
	return dls
}

// A document Elasticsearch refuses for good (a value that does not fit the
// index mapping) goes to <topic>.dlq with stage "sink" and the reason,
// while the rest of its batch is applied and the partition moves on; the
// other sinks still get it, and it is marked done with a per-sink mark of
// the sinks that wrote it, so a replay of it reaches only the refusing
// sink.
func TestRefusedEventGoesToDeadLetterTopic(t *testing.T) {
	f := setup(t)
	e := newES(t)
	topic := "studio.title.materialized.refused"
	store := dedupe.NewMemory()
	defer store.Close()
	audit := &seenIDs{ids: map[string]int{}}
	h := consumer.Deduplicate(store, consumer.DedupeConfig{Group: "refused"}, consumer.ToSinks(e.sink, audit))
	c, err := consumer.New(h, consumer.WithBrokers(f.brokers), consumer.WithGroup("refused"), consumer.WithTopics(topic),
		consumer.WithRegistry(f.reg), consumer.WithDeadLetter(f.pub), consumer.WithConcurrency(2))
	if err != nil {
		t.Fatal(err)
	}
	runConsumer(t, c)

	// The first events map the index's "n" field as a number.
	envs := titleEvents(30, "refused")
	if err := f.pub.Publish(t.Context(), topic, envs[:10]...); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "the first 10 documents", func() bool { return e.double.Count(e.sink.Index("title")) == 10 })
	bad := &envs[15]
	bad.Data, _ = json.Marshal(map[string]any{"name": "Title 15", "n": "fifteen"})
	if err := f.pub.Publish(t.Context(), topic, envs[10:]...); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "the other 19 documents", func() bool { return e.double.Count(e.sink.Index("title")) == 29 })
	if _, _, ok := e.double.Doc(e.sink.Index("title"), bad.Subject); ok {
		t.Fatalf("refused document %s is in the index", bad.Subject)
	}

	dls := waitDeadLetters(t, f.brokers, topic)
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
	d := dls[0]
	if d.Stage != "sink" || d.OriginTopic != topic || d.Group != "refused" || d.OriginOffset < 0 {
		t.Errorf("dead letter stage %q origin %s@%d group %q, want stage sink from %s", d.Stage, d.OriginTopic, d.OriginOffset, d.Group, topic)
	}
	for _, want := range []string{"mapper_parsing_exception", "fifteen", bad.Subject} {
		if !strings.Contains(d.Error, want) {
			t.Errorf("dead letter error %q does not name %q", d.Error, want)
		}
	}
	codec, err := schema.NewCodec(f.reg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := codec.Decode(t.Context(), d.Value)
	if err != nil || got.ID != bad.ID {
		t.Errorf("dead letter holds %v (err %v), want the original envelope %s", got.ID, err, bad.ID)
	}
	if !audit.has(bad.ID) {
		t.Errorf("the audit sink did not get the refused event")
	}
	// The refused event is done, with a mark for the sink that wrote it
	// and none for the one that refused it: a redelivery reaches only the
	// refusing sink.
	marks := []string{bad.ID, bad.ID + "\x00*consumer_test.seenIDs", bad.ID + "\x00es", envs[16].ID}
	st, err := store.Claim(t.Context(), marks, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if st[0] != dedupe.Duplicate || st[1] != dedupe.Duplicate || st[2] != dedupe.Fresh || st[3] != dedupe.Duplicate {
		t.Errorf("after the batch: refused id %s (want duplicate), its audit mark %s (want duplicate), its es mark %s (want fresh), written id %s (want duplicate)",
			st[0], st[1], st[2], st[3])
	}
	if v := metric(t, "slate_consumer_dead_letters_total", map[string]string{"group": "refused", "stage": "sink"}); v != 1 {
		t.Errorf("slate_consumer_dead_letters_total{stage=sink} = %v, want 1", v)
	}
}

// Without a dead-letter topic a refused event is not dropped: the batch is
// retried, and the partition does not move past it.
func TestRefusedEventWithoutDeadLetterTopicIsRetried(t *testing.T) {
	f := setup(t)
	e := newES(t)
	topic := "studio.title.materialized.refusednodlq"
	c, err := consumer.New(consumer.ToSinks(e.sink), consumer.WithBrokers(f.brokers), consumer.WithGroup("refused-nodlq"),
		consumer.WithTopics(topic), consumer.WithRegistry(f.reg), consumer.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	runConsumer(t, c)
	envs := titleEvents(2, "refusednodlq")
	for i := range envs {
		envs[i].Subject = "same" // one partition, in order
	}
	if err := f.pub.Publish(t.Context(), topic, envs[0]); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "the first document", func() bool { return e.double.Count(e.sink.Index("title")) == 1 })
	envs[1].Data, _ = json.Marshal(map[string]any{"n": map[string]any{"nested": true}})
	if err := f.pub.Publish(t.Context(), topic, envs[1]); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "several retries", func() bool {
		return metric(t, "slate_consumer_handler_retries_total", map[string]string{"group": "refused-nodlq"}) >= 3
	})
	if _, v, _ := e.double.Doc(e.sink.Index("title"), "same"); v != envs[0].Sequence {
		t.Errorf("document version %d, want %d (the refused update not applied)", v, envs[0].Sequence)
	}
}

// With WithMaxAttempts, an event the handler keeps failing on is
// dead-lettered (stage "handler") once it failed that many times on its
// own; the rest of its batch, before and after it, is applied in order.
// Temporary failures (a store unavailable) do not count.
func TestEventExhaustingAttemptsGoesToDeadLetterTopic(t *testing.T) {
	f := setup(t)
	topic := "studio.title.materialized.exhausted"
	envs := titleEvents(40, "exhausted")
	for i := range envs {
		envs[i].Subject = fmt.Sprintf("k%d", i%4) // several events per key
	}
	bad := envs[21].ID
	var (
		mu       sync.Mutex
		applied  []string
		badTries int
		outage   = 3 // the first calls find the store unavailable
	)
	h := consumer.HandlerFunc(func(_ context.Context, batch []sink.Event) error {
		mu.Lock()
		defer mu.Unlock()
		if outage > 0 {
			outage--
			return fmt.Errorf("index busy: %w", sink.ErrUnavailable)
		}
		for _, ev := range batch {
			if ev.ID == bad {
				badTries++
				return errors.New("title budget is negative")
			}
		}
		for _, ev := range batch {
			applied = append(applied, ev.ID)
		}
		return nil
	})
	c, err := consumer.New(h, consumer.WithBrokers(f.brokers), consumer.WithGroup("exhausted"), consumer.WithTopics(topic),
		consumer.WithRegistry(f.reg), consumer.WithDeadLetter(f.pub), consumer.WithMaxAttempts(3), consumer.WithConcurrency(2),
		consumer.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := f.pub.Publish(t.Context(), topic, envs...); err != nil {
		t.Fatal(err)
	}
	runConsumer(t, c)
	testenv.WaitFor(t, 30*time.Second, "every other event applied", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(slices.Compact(slices.Sorted(slices.Values(applied)))) == len(envs)-1
	})
	dls := waitDeadLetters(t, f.brokers, topic)
	if len(dls) != 1 || dls[0].Stage != "handler" || !strings.Contains(dls[0].Error, "title budget is negative") {
		t.Fatalf("dead letters %+v, want one with stage handler and the handler's error", dls)
	}
	mu.Lock()
	defer mu.Unlock()
	if slices.Contains(applied, bad) {
		t.Errorf("the bad event was applied")
	}
	// Per key, the applied events keep their order.
	pos := map[string]int{}
	for i, id := range applied {
		if _, seen := pos[id]; !seen {
			pos[id] = i
		}
	}
	for i := 4; i < len(envs); i++ {
		a, b := envs[i-4].ID, envs[i].ID
		if a == bad || b == bad {
			continue
		}
		if pos[a] > pos[b] {
			t.Errorf("key %s: event %d applied before event %d", envs[i].Subject, i, i-4)
		}
	}
	// 3 failures with the batch, 3 on its own.
	if badTries != 6 {
		t.Errorf("the bad event was tried %d times, want 6 (3 in its lane, 3 alone)", badTries)
	}
}

// namedSeen is a [seenIDs] with a name of its own.
type namedSeen struct {
	seenIDs
	name string
}

func (s *namedSeen) Name() string { return s.name }

func (s *namedSeen) count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ids[id]
}

// refusingSink refuses the event with id refuse for good, as long as
// refusing is set, and counts the events it wrote.
type refusingSink struct {
	namedSeen
	refuse   string
	refusing atomic.Bool
}

func (s *refusingSink) Write(ctx context.Context, batch []sink.Event) error {
	var rs []sink.Rejection
	ok := make([]sink.Event, 0, len(batch))
	for _, ev := range batch {
		if ev.ID == s.refuse && s.refusing.Load() {
			rs = append(rs, sink.Rejection{Event: ev, Err: errors.New("value does not fit the mapping")})
		} else {
			ok = append(ok, ev)
		}
	}
	_ = s.namedSeen.Write(ctx, ok)
	return sink.Reject(rs...)
}

// An event one sink refused and the other wrote is dead-lettered; once the
// cause is fixed and the dead letter replayed, the replay reaches only the
// sink that refused it, so each sink holds every event exactly once, with
// the memory and the Redis dedupe store alike.
func TestReplayedRefusalReachesOnlyTheRefusingSink(t *testing.T) {
	stores := []struct {
		name  string
		store func(t *testing.T) consumer.DedupeStore
	}{
		{"memory", func(t *testing.T) consumer.DedupeStore {
			m := dedupe.NewMemory()
			t.Cleanup(func() { m.Close() })
			return m
		}},
		{"redis", func(t *testing.T) consumer.DedupeStore { return redisStore(t) }},
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			f := setup(t)
			topic := "studio.title.materialized.replayed-" + st.name
			group := "replayed-" + st.name
			envs := titleEvents(10, "replayed-"+st.name)
			bad := envs[4].ID
			audit := &namedSeen{seenIDs: seenIDs{ids: map[string]int{}}, name: "audit"}
			index := &refusingSink{namedSeen: namedSeen{seenIDs: seenIDs{ids: map[string]int{}}, name: "index"}, refuse: bad}
			index.refusing.Store(true)
			h := consumer.Deduplicate(st.store(t), consumer.DedupeConfig{Group: group}, consumer.ToSinks(audit, index))
			c, err := consumer.New(h, consumer.WithBrokers(f.brokers), consumer.WithGroup(group), consumer.WithTopics(topic),
				consumer.WithRegistry(f.reg), consumer.WithDeadLetter(f.pub), consumer.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
			if err != nil {
				t.Fatal(err)
			}
			runConsumer(t, c)
			if err := f.pub.Publish(t.Context(), topic, envs...); err != nil {
				t.Fatal(err)
			}
			dls := waitDeadLetters(t, f.brokers, topic)
			if len(dls) != 1 || dls[0].Stage != "sink" || !strings.Contains(dls[0].Error, "sink index") {
				t.Fatalf("dead letters %+v, want one of stage sink naming the index sink", dls)
			}
			index.refusing.Store(false) // the cause is fixed
			if err := consumer.Replay(t.Context(), f.pub, dls[0]); err != nil {
				t.Fatal(err)
			}
			testenv.WaitFor(t, 20*time.Second, "the replay in the index sink", func() bool { return index.has(bad) })
			// ToSinks writes the audit sink first: by now it got the replay too,
			// if it was going to.
			for _, env := range envs {
				if n := audit.count(env.ID); n != 1 {
					t.Errorf("audit sink holds event %s %d times, want once", env.ID, n)
				}
				if n := index.count(env.ID); n != 1 {
					t.Errorf("index sink holds event %s %d times, want once", env.ID, n)
				}
			}
		})
	}
}

// memDoneFailing is a memory dedupe store whose Done fails, as an
// unreachable store does, the first fails times.
type memDoneFailing struct {
	*dedupe.Memory
	fails atomic.Int32
}

func (s *memDoneFailing) Done(ctx context.Context, ids []string, ttl time.Duration) error {
	if s.fails.Add(-1) >= 0 {
		return fmt.Errorf("%w: connection refused", dedupe.ErrUnavailable)
	}
	return s.Memory.Done(ctx, ids, ttl)
}

// When the done record of a partly written batch fails, the retry records
// the per-sink marks and writes the refused event only to the sink that
// refused it; its replay later reaches that sink alone too.
func TestPartialWriteKeepsSinkMarksThroughFailedDone(t *testing.T) {
	store := &memDoneFailing{Memory: dedupe.NewMemory()}
	defer store.Close()
	store.fails.Store(1)
	a := sink.Event{Envelope: schema.NewEnvelope("//t", schema.OpCreate, "title", "a")}
	b := sink.Event{Envelope: schema.NewEnvelope("//t", schema.OpCreate, "title", "b")}
	audit := &namedSeen{seenIDs: seenIDs{ids: map[string]int{}}, name: "audit"}
	index := &refusingSink{namedSeen: namedSeen{seenIDs: seenIDs{ids: map[string]int{}}, name: "index"}, refuse: b.ID}
	index.refusing.Store(true)
	h := consumer.Deduplicate(store, consumer.DedupeConfig{}, consumer.ToSinks(audit, index))

	err := h.Handle(t.Context(), []sink.Event{a, b})
	if !errors.Is(err, consumer.ErrDedupeDone) {
		t.Fatalf("first call: err = %v, want ErrDedupeDone", err)
	}
	err = h.Handle(t.Context(), []sink.Event{a, b})
	rs, ok := sink.Rejections(err)
	if !ok || len(rs) != 1 || rs[0].Event.ID != b.ID || rs[0].Sink != "index" {
		t.Fatalf("retry: err = %v, want the index sink's refusal of b alone", err)
	}
	index.refusing.Store(false)
	b.ReplayedFrom = "studio.title.changes.dlq/0/0"
	b.Offset = 7
	if err := h.Handle(t.Context(), []sink.Event{b}); err != nil {
		t.Fatalf("replay: %v", err)
	}
	if err := h.Handle(t.Context(), []sink.Event{b}); err != nil {
		t.Fatalf("second replay: %v", err)
	}
	for _, ev := range []sink.Event{a, b} {
		if n := audit.count(ev.ID); n != 1 {
			t.Errorf("audit sink got %s %d times, want once", ev.Subject, n)
		}
		if n := index.count(ev.ID); n != 1 {
			t.Errorf("index sink wrote %s %d times, want once", ev.Subject, n)
		}
	}
	st, err := store.Claim(t.Context(), []string{a.ID, b.ID}, time.Minute)
	if err != nil || st[0] != dedupe.Duplicate || st[1] != dedupe.Duplicate {
		t.Errorf("after the replay: states %v (err %v), want both done", st, err)
	}
}

// Sinks sharing a name are told apart by a suffix, and an event is not
// written to the sinks its SkipSinks names.
func TestToSinksSkipsNamedSinks(t *testing.T) {
	x := &seenIDs{ids: map[string]int{}}
	y := &seenIDs{ids: map[string]int{}}
	h := consumer.ToSinks(x, y)
	names := h.(consumer.SinkNamer).SinkNames()
	if len(names) != 2 || names[0] != "*consumer_test.seenIDs" || names[1] != "*consumer_test.seenIDs#2" {
		t.Fatalf("names %q, want the type name and the type name with #2", names)
	}
	a := sink.Event{Envelope: schema.NewEnvelope("//t", schema.OpCreate, "title", "a"), SkipSinks: names[1:]}
	b := sink.Event{Envelope: schema.NewEnvelope("//t", schema.OpCreate, "title", "b")}
	if err := h.Handle(t.Context(), []sink.Event{a, b}); err != nil {
		t.Fatal(err)
	}
	if !x.has(a.ID) || !x.has(b.ID) || y.has(a.ID) || !y.has(b.ID) {
		t.Errorf("first sink %v, second %v; want a and b in the first, only b in the second", x.ids, y.ids)
	}
}
