package consumer_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

// Dead letters are listed with their origin, and a replay puts the original
// bytes back on the origin topic.
func TestDeadLettersListAndReplay(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	topic := "studio.budget.changes"
	poison := [][]byte{[]byte("bad one"), []byte("bad two")}
	for _, p := range poison {
		if err := f.pub.PublishRaw(ctx, topic, []byte("k"), p, []schema.Header{{Key: "origin", Value: []byte("test")}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.pub.PublishChange(ctx, "budget", "b1", schema.OpCreate, 1); err != nil {
		t.Fatal(err)
	}
	var c collector
	run(t, f, &c, topic)
	testenv.WaitFor(t, 20*time.Second, "the good event", func() bool { return c.count() == 1 })

	var dls []consumer.DeadLetter
	testenv.WaitFor(t, 20*time.Second, "two dead letters", func() bool {
		dls = dls[:0]
		err := consumer.ReadDeadLetters(ctx, f.brokers, schema.DLQTopic(topic), func(d consumer.DeadLetter) error {
			dls = append(dls, d)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return len(dls) == 2
	})
	for i, d := range dls {
		if string(d.Value) != string(poison[i]) || d.OriginTopic != topic || d.OriginOffset != int64(i) ||
			d.Stage != "decode" || d.Group != "g-"+topic || d.Error == "" {
			t.Errorf("dead letter %d = %+v", i, d)
		}
		if hs := d.OriginalHeaders(); len(hs) != 1 || hs[0].Key != "origin" {
			t.Errorf("original headers = %v", hs)
		}
	}

	for _, d := range dls {
		if err := consumer.Replay(ctx, f.pub, d); err != nil {
			t.Fatal(err)
		}
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.brokers), kgo.ConsumeTopics(schema.ReplayTopic(topic)), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var replayed []*kgo.Record
	for len(replayed) < 2 && pctx.Err() == nil {
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			for _, h := range r.Headers {
				if h.Key == consumer.HeaderDLQReplayed {
					replayed = append(replayed, r)
				}
			}
		})
	}
	if len(replayed) != 2 || string(replayed[0].Value) != "bad one" || string(replayed[1].Value) != "bad two" {
		t.Fatalf("replayed records = %v", replayed)
	}

	if err := consumer.Replay(ctx, f.pub, consumer.DeadLetter{Topic: "nowhere"}); !errors.Is(err, consumer.ErrNoOrigin) {
		t.Errorf("Replay without an origin: err = %v", err)
	}
	n := 0
	if err := consumer.ReadDeadLetters(ctx, f.brokers, "studio.none.dlq", func(consumer.DeadLetter) error { n++; return nil }); err != nil || n != 0 {
		t.Errorf("ReadDeadLetters of a missing topic: %d records, err %v", n, err)
	}
}
