package consumer_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/registry"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

// A record whose schema id the registry does not know (404, error code
// 40403) is poison: it goes to <topic>.dlq with stage "decode" and the
// records after it are handled, instead of the batch being retried forever
// with every partition paused.
func TestUnknownSchemaIDGoesToDeadLetterTopic(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	topic := "studio.title.changes"
	if err := f.pub.PublishChange(ctx, "title", "a", schema.OpCreate, 1); err != nil {
		t.Fatal(err)
	}
	unknown := schema.Frame(nil, 987654, []byte{0x02, 0x04})
	if err := f.pub.PublishRaw(ctx, topic, []byte("a"), unknown, nil); err != nil {
		t.Fatal(err)
	}
	if err := f.pub.PublishChange(ctx, "title", "a", schema.OpUpdate, 2); err != nil {
		t.Fatal(err)
	}
	var c collector
	run(t, f, &c, topic)
	testenv.WaitFor(t, 20*time.Second, "both good events", func() bool { return c.count() == 2 })
	dls := waitDeadLetters(t, f.brokers, topic)
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
	d := dls[0]
	if d.Stage != "decode" || d.OriginOffset != 1 || string(d.Value) != string(unknown) {
		t.Errorf("dead letter stage %q offset %d value %x, want stage decode, offset 1, the original bytes", d.Stage, d.OriginOffset, d.Value)
	}
	if !strings.Contains(d.Error, "987654") {
		t.Errorf("dead letter error %q does not name the schema id", d.Error)
	}
}

// flakyRegistry answers schema lookups with a 503 the first fails times,
// then asks the real registry.
type flakyRegistry struct {
	schema.Registry
	fails atomic.Int32
}

func (r *flakyRegistry) SchemaByID(ctx context.Context, id int) (avro.Schema, error) {
	if r.fails.Add(-1) >= 0 {
		return nil, registry.Error{StatusCode: 503, Message: "registry overloaded"}
	}
	return r.Registry.SchemaByID(ctx, id)
}

// A registry that fails with a 5xx is temporary: the batch is retried and
// applied once the registry answers, nothing is dead-lettered.
func TestRegistryServerErrorIsRetried(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	topic := "studio.title.changes"
	if err := f.pub.PublishChange(ctx, "title", "a", schema.OpCreate, 1); err != nil {
		t.Fatal(err)
	}
	reg := &flakyRegistry{Registry: f.reg}
	reg.fails.Store(3)
	var c collector
	cons, err := consumer.New(&c, consumer.WithBrokers(f.brokers), consumer.WithGroup("g-flaky-registry"), consumer.WithTopics(topic),
		consumer.WithRegistry(reg), consumer.WithDeadLetter(f.pub), consumer.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	runConsumer(t, cons)
	testenv.WaitFor(t, 20*time.Second, "the event", func() bool { return c.count() == 1 })
	if reg.fails.Load() >= 0 {
		t.Errorf("registry failures left %d, want all used", reg.fails.Load()+1)
	}
	var n int
	err = consumer.ReadDeadLetters(ctx, f.brokers, schema.DLQTopic(topic), func(consumer.DeadLetter) error { n++; return nil })
	if err != nil || n != 0 {
		t.Errorf("%d dead letters (err %v), want none", n, err)
	}
}
