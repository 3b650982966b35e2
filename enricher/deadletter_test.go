package enricher_test

import (
	"context"
	"crypto/rand"
	"strconv"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

// An event too large for the dead-letter publisher (a 1,000,400-byte
// payload, over librdkafka's default message.max.bytes) is dead-lettered
// as a truncated copy naming its origin, so Handle returns nil and the
// partition moves on instead of retrying the batch forever.
func TestOversizedEventIsDeadLetteredTruncated(t *testing.T) {
	env := testenv.Start(t, "//test")
	ctx := context.Background()
	bad := enricher.ResolverFunc(func(context.Context, string, []string) (map[string]enricher.Record, error) {
		return nil, status.Error(codes.InvalidArgument, "ids[0]: malformed")
	})
	e, err := enricher.New("title", bad, &capture{}, env.Registry, enricher.WithDeadLetter(env.Producer), enricher.WithDeadLetterAfter(1))
	if err != nil {
		t.Fatal(err)
	}
	ev := change("title", "huge", schema.OpUpdate, 1, 42)
	ev.Data = make([]byte, 1_000_400)
	_, _ = rand.Read(ev.Data)
	ev.DataContentType = schema.ContentTypeJSON
	if err := e.Handle(ctx, []sink.Event{ev}); err != nil {
		t.Fatalf("Handle: %v, want nil after dead-lettering", err)
	}
	var dls []consumer.DeadLetter
	if err := consumer.ReadDeadLetters(ctx, env.Brokers, "studio.title.changes.dlq", func(d consumer.DeadLetter) error {
		dls = append(dls, d)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
	d := dls[0]
	if d.Truncated <= int64(len(ev.Data)) || len(d.Value) != schema.DeadLetterTruncateBytes {
		t.Errorf("dead letter of %d bytes, truncated from %d; want %d bytes cut from the whole encoded event",
			len(d.Value), d.Truncated, schema.DeadLetterTruncateBytes)
	}
	if d.OriginTopic != "studio.title.changes" || d.OriginOffset != 42 || d.Stage != enricher.DeadLetterStage ||
		string(d.Key) != "huge" {
		t.Errorf("dead letter origin %s@%d stage %q key %q", d.OriginTopic, d.OriginOffset, d.Stage, d.Key)
	}
	if id, _ := schema.HeaderValue(d.Headers, schema.HeaderID); id != ev.ID {
		t.Errorf("ce_id = %q, want %q", id, ev.ID)
	}
	if v, _ := schema.HeaderValue(d.Headers, schema.HeaderDLQTruncated); v != strconv.FormatInt(d.Truncated, 10) {
		t.Errorf("%s = %q", schema.HeaderDLQTruncated, v)
	}
}
