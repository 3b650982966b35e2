// Package sinktest is the contract suite every [sink.Sink] passes: the
// Elasticsearch, Bleve, Hive and Kafka sinks run the same cases, each with a
// [Reader] that looks into its store.
//
//	func TestContract(t *testing.T) {
//		sinktest.Run(t, func(t *testing.T) (sink.Sink, sinktest.Reader) {
//			s := newMySink(t)
//			return s, myReader{s}
//		})
//	}
package sinktest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

// Reader reads back what a sink applied, for the suite's checks.
type Reader interface {
	// Count returns how many applied records the store holds for the
	// events written so far. An event stored twice counts twice, so a
	// doubled replay shows. Every event the suite writes has its own
	// subject, so a store that keeps one document per entity counts one
	// per event too.
	Count(ctx context.Context) (int, error)
	// Has reports whether the event with this envelope id was applied.
	Has(ctx context.Context, id string) (bool, error)
}

// Topic is the topic of the events [Events] builds.
const Topic = "studio.sinktest.materialized"

// Events returns n valid events of one topic partition at consecutive
// offsets from first. Each has a fresh id, its own subject, sequence 1,
// the same event time (now, whole microseconds, UTC) and JSON data.
func Events(partition int32, first int64, n int) []sink.Event {
	now := time.Now().UTC().Truncate(time.Microsecond)
	evs := make([]sink.Event, n)
	for i := range evs {
		off := first + int64(i)
		e := schema.NewEnvelope("//studio/sinktest", schema.OpUpdate, "title", fmt.Sprintf("title-%d-%d-%s", partition, off, schema.NewID()))
		e.Time = now
		e.Sequence = 1
		e.TraceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
		e.DataContentType = schema.ContentTypeJSON
		e.Data, _ = json.Marshal(map[string]any{"subject": e.Subject, "name": fmt.Sprintf("Title %d", off), "budget": off * 1000})
		evs[i] = sink.Event{Envelope: e, Topic: Topic, Partition: partition, Offset: off}
	}
	return evs
}

// Run runs the contract suite. newSink returns a sink over an empty store
// and a Reader of that store; the Reader must keep working after the sink is
// closed. Run closes the sink at the end of each case.
func Run(t *testing.T, newSink func(t *testing.T) (sink.Sink, Reader)) {
	t.Helper()
	cases := []struct {
		name string
		run  func(t *testing.T, s sink.Sink, r Reader)
	}{
		{"batch applied", testBatchApplied},
		{"batches add up", testBatchesAddUp},
		{"replay does not double", testReplay},
		{"partial replay does not double", testPartialReplay},
		{"empty batch", testEmptyBatch},
		{"cancelled context", testCancelled},
		{"write after close", testWriteAfterClose},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, r := newSink(t)
			t.Cleanup(func() {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				if err := s.Close(ctx); err != nil && !errors.Is(err, sink.ErrClosed) {
					t.Errorf("Close: %v", err)
				}
			})
			c.run(t, s, r)
		})
	}
}

func write(t *testing.T, s sink.Sink, batch []sink.Event) {
	t.Helper()
	if err := s.Write(t.Context(), batch); err != nil {
		t.Fatalf("Write(%d events): %v", len(batch), err)
	}
}

func wantCount(t *testing.T, r Reader, want int) {
	t.Helper()
	got, err := r.Count(t.Context())
	if err != nil {
		t.Fatalf("Count: %v", err)
	}
	if got != want {
		t.Fatalf("Count = %d, want %d", got, want)
	}
}

func wantHas(t *testing.T, r Reader, evs []sink.Event) {
	t.Helper()
	for _, ev := range evs {
		ok, err := r.Has(t.Context(), ev.ID)
		if err != nil {
			t.Fatalf("Has(%s): %v", ev.ID, err)
		}
		if !ok {
			t.Fatalf("event %s (offset %d) was not applied", ev.ID, ev.Offset)
		}
	}
}

func testBatchApplied(t *testing.T, s sink.Sink, r Reader) {
	evs := Events(0, 0, 5)
	write(t, s, evs)
	wantCount(t, r, len(evs))
	wantHas(t, r, evs)
	if ok, err := r.Has(t.Context(), schema.NewID()); err != nil || ok {
		t.Fatalf("Has(unknown id) = %v, %v; want false, nil", ok, err)
	}
}

func testBatchesAddUp(t *testing.T, s sink.Sink, r Reader) {
	a := Events(0, 0, 4)
	b := Events(0, 4, 3)
	c := Events(1, 0, 2)
	for _, batch := range [][]sink.Event{a, b, c} {
		write(t, s, batch)
	}
	wantCount(t, r, len(a)+len(b)+len(c))
	wantHas(t, r, append(append(a, b...), c...))
}

func testReplay(t *testing.T, s sink.Sink, r Reader) {
	evs := Events(0, 10, 6)
	write(t, s, evs)
	write(t, s, evs)
	wantCount(t, r, len(evs))
	wantHas(t, r, evs)
}

// testPartialReplay replays what a consumer replays after a crash: part of
// a batch (the rest was marked done and is filtered out), then a batch that
// overlaps the first one and runs past it.
func testPartialReplay(t *testing.T, s sink.Sink, r Reader) {
	evs := Events(0, 100, 15)
	write(t, s, evs[:10])
	write(t, s, []sink.Event{evs[2], evs[5], evs[7]})
	write(t, s, evs[5:])
	wantCount(t, r, len(evs))
	wantHas(t, r, evs)
}

func testEmptyBatch(t *testing.T, s sink.Sink, r Reader) {
	write(t, s, nil)
	write(t, s, []sink.Event{})
	wantCount(t, r, 0)
}

func testCancelled(t *testing.T, s sink.Sink, r Reader) {
	evs := Events(0, 0, 3)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := s.Write(ctx, evs); !errors.Is(err, context.Canceled) {
		t.Fatalf("Write with cancelled ctx: err = %v, want context.Canceled", err)
	}
	// The retry of a failed batch applies it once.
	write(t, s, evs)
	wantCount(t, r, len(evs))
}

func testWriteAfterClose(t *testing.T, s sink.Sink, r Reader) {
	if err := s.Close(t.Context()); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Write(t.Context(), Events(0, 0, 1)); !errors.Is(err, sink.ErrClosed) {
		t.Fatalf("Write after Close: err = %v, want sink.ErrClosed", err)
	}
	wantCount(t, r, 0)
}

// Event returns an event of entity type "title" on
// studio.title.materialized, with data as JSON when it is not nil.
func Event(op schema.Op, subject string, seq int64, data map[string]any) sink.Event {
	e := schema.NewEnvelope("//test", op, "title", subject)
	e.Sequence = seq
	if data != nil {
		e.DataContentType = schema.ContentTypeJSON
		e.Data, _ = json.Marshal(data)
	}
	return sink.Event{Envelope: e, Topic: "studio.title.materialized"}
}

// AvroEvent starts a registry server and returns a client of it and a
// CREATE of title "t9" whose data is Avro in the Confluent wire format
// ({"id":"t9","name":"Heat","budget":42}, record test.v1.Title), with
// its dataschema reference.
func AvroEvent(t *testing.T) (*schema.RegistryClient, sink.Event) {
	t.Helper()
	ctx := t.Context()
	_, reg := testenv.Registry(t)
	sch := avro.MustParse(`{"type":"record","name":"Title","namespace":"test.v1","fields":[
		{"name":"id","type":"string"},{"name":"name","type":"string"},{"name":"budget","type":"long"}]}`)
	type title struct {
		ID     string `avro:"id"`
		Name   string `avro:"name"`
		Budget int64  `avro:"budget"`
	}
	data, ref, err := schema.EncodeData(ctx, reg, "test.v1.Title", sch, title{"t9", "Heat", 42})
	if err != nil {
		t.Fatal(err)
	}
	ev := Event(schema.OpCreate, "t9", 1, nil)
	ev.Data, ev.DataContentType, ev.DataSchema = data, schema.ContentTypeAvro, ref
	return reg, ev
}

// VersionCase is one case of the external-version semantics that the
// versioned stores (Elasticsearch, Bleve) follow for entity "t1": the
// envelope's sequence decides, not the order of arrival. They are
// Elasticsearch's with version_type=external: an index or a delete is
// applied only when its version is greater than the stored one; an equal
// or lower version is refused (409, which the sinks count as success: that
// state or a newer one is already applied). A delete leaves its version
// behind as a tombstone, so a later create or update with a lower or
// equal version is refused while the tombstone lives.
type VersionCase struct {
	Name    string
	Batches [][]sink.Event
	Found   bool   // whether t1 is there after the batches
	Data    string // its "name" field, when found
	Version int64  // its version, or the version of the delete (the tombstone) when not found
}

// VersionCases returns the cases, each with events of its own.
func VersionCases() []VersionCase {
	name := func(n string) map[string]any { return map[string]any{"name": n} }
	return []VersionCase{
		{"newer wins", [][]sink.Event{{Event(schema.OpCreate, "t1", 1, name("A"))},
			{Event(schema.OpUpdate, "t1", 2, name("B"))}}, true, "B", 2},
		{"older update arrives last", [][]sink.Event{{Event(schema.OpUpdate, "t1", 5, name("July"))},
			{Event(schema.OpUpdate, "t1", 4, name("June"))}}, true, "July", 5},
		{"same version replayed", [][]sink.Event{{Event(schema.OpUpdate, "t1", 3, name("A"))},
			{Event(schema.OpUpdate, "t1", 3, name("other"))}}, true, "A", 3},
		{"out of order in one batch", [][]sink.Event{{Event(schema.OpUpdate, "t1", 7, name("new")),
			Event(schema.OpUpdate, "t1", 6, name("old"))}}, true, "new", 7},
		{"delete", [][]sink.Event{{Event(schema.OpCreate, "t1", 1, name("A"))},
			{Event(schema.OpDelete, "t1", 2, nil)}}, false, "", 2},
		{"older delete is ignored", [][]sink.Event{{Event(schema.OpUpdate, "t1", 5, name("A"))},
			{Event(schema.OpDelete, "t1", 4, nil)}}, true, "A", 5},
		{"delete then older update", [][]sink.Event{{Event(schema.OpCreate, "t1", 1, name("A"))},
			{Event(schema.OpDelete, "t1", 3, nil)}, {Event(schema.OpUpdate, "t1", 2, name("B"))}}, false, "", 3},
		{"delete then same-version update", [][]sink.Event{{Event(schema.OpDelete, "t1", 3, nil)},
			{Event(schema.OpUpdate, "t1", 3, name("B"))}}, false, "", 3},
		{"delete then newer create", [][]sink.Event{{Event(schema.OpCreate, "t1", 1, name("A"))},
			{Event(schema.OpDelete, "t1", 2, nil)}, {Event(schema.OpCreate, "t1", 3, name("C"))}}, true, "C", 3},
		{"delete and older update in one batch", [][]sink.Event{{Event(schema.OpCreate, "t1", 1, name("A")),
			Event(schema.OpDelete, "t1", 3, nil), Event(schema.OpUpdate, "t1", 2, name("B"))}}, false, "", 3},
		{"delete of a missing document", [][]sink.Event{{Event(schema.OpDelete, "t1", 1, nil)}}, false, "", 1},
		{"whole history replayed", [][]sink.Event{{Event(schema.OpCreate, "t1", 1, name("A")),
			Event(schema.OpUpdate, "t1", 2, name("B")), Event(schema.OpDelete, "t1", 3, nil)},
			{Event(schema.OpCreate, "t1", 1, name("A")), Event(schema.OpUpdate, "t1", 2, name("B"))}}, false, "", 3},
		{"create", [][]sink.Event{{Event(schema.OpCreate, "t1", 1, name("A"))}}, true, "A", 1},
		{"update of a missing document", [][]sink.Event{{Event(schema.OpUpdate, "t1", 4, name("U"))}}, true, "U", 4},
		{"equal-version update is refused", [][]sink.Event{{Event(schema.OpCreate, "t1", 2, name("A"))},
			{Event(schema.OpUpdate, "t1", 2, name("B"))}}, true, "A", 2},
		{"delete at an equal version is refused", [][]sink.Event{{Event(schema.OpCreate, "t1", 2, name("A"))},
			{Event(schema.OpDelete, "t1", 2, nil)}}, true, "A", 2},
		{"delete at a higher version", [][]sink.Event{{Event(schema.OpCreate, "t1", 2, name("A"))},
			{Event(schema.OpDelete, "t1", 3, nil)}}, false, "", 3},
		{"re-create after a delete, at a lower version", [][]sink.Event{{Event(schema.OpCreate, "t1", 1, name("A"))},
			{Event(schema.OpDelete, "t1", 3, nil)}, {Event(schema.OpCreate, "t1", 2, name("C"))}}, false, "", 3},
		{"re-create after a delete, at an equal version", [][]sink.Event{{Event(schema.OpCreate, "t1", 1, name("A"))},
			{Event(schema.OpDelete, "t1", 3, nil)}, {Event(schema.OpCreate, "t1", 3, name("C"))}}, false, "", 3},
		{"delete replayed at an equal version", [][]sink.Event{{Event(schema.OpDelete, "t1", 3, nil)},
			{Event(schema.OpDelete, "t1", 3, nil)}}, false, "", 3},
		{"snapshot indexes", [][]sink.Event{{Event(schema.OpSnapshot, "t1", 1, name("S"))}}, true, "S", 1},
		{"truncate is skipped", [][]sink.Event{{Event(schema.OpCreate, "t1", 1, name("A"))},
			{Event(schema.OpTruncate, "", 2, nil)}}, true, "A", 1},
	}
}

// UnchangedCase is one case of an UPDATE that names unchanged fields
// ([sink.Event.Unchanged]) for entity "t1": the fields it left out keep
// their stored values.
type UnchangedCase struct {
	Name    string
	Batches [][]sink.Event
	Want    map[string]any // fields of t1's document afterwards (absent: nil)
}

// UnchangedCases returns the cases, each with events of its own.
func UnchangedCases() []UnchangedCase {
	unchanged := func(ev sink.Event, fields ...string) sink.Event { ev.Unchanged = fields; return ev }
	full := map[string]any{"name": "A", "synopsis": "a long text", "notes": "n1"}
	return []UnchangedCase{
		{"unchanged fields are kept", [][]sink.Event{{Event(schema.OpCreate, "t1", 1, full)},
			{unchanged(Event(schema.OpUpdate, "t1", 2, map[string]any{"name": "B", "notes": "n2"}), "synopsis")}},
			map[string]any{"name": "B", "synopsis": "a long text", "notes": "n2"}},
		{"in one batch", [][]sink.Event{{Event(schema.OpCreate, "t1", 1, full),
			unchanged(Event(schema.OpUpdate, "t1", 2, map[string]any{"name": "B"}), "synopsis", "notes")}},
			map[string]any{"name": "B", "synopsis": "a long text", "notes": "n1"}},
		{"without the list the document is replaced", [][]sink.Event{{Event(schema.OpCreate, "t1", 1, full)},
			{Event(schema.OpUpdate, "t1", 2, map[string]any{"name": "B"})}},
			map[string]any{"name": "B", "synopsis": nil, "notes": nil}},
		{"nothing stored to keep", [][]sink.Event{{unchanged(Event(schema.OpUpdate, "t1", 2, map[string]any{"name": "B"}), "synopsis")}},
			map[string]any{"name": "B", "synopsis": nil}},
		{"a field sent wins over the stored one", [][]sink.Event{{Event(schema.OpCreate, "t1", 1, full)},
			{unchanged(Event(schema.OpUpdate, "t1", 2, map[string]any{"name": "B", "synopsis": "new"}), "synopsis")}},
			map[string]any{"name": "B", "synopsis": "new", "notes": nil}},
	}
}
