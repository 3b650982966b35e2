package consumer_test

import (
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/dedupe"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

// A replayed dead letter reaches the group that dead-lettered it and no
// other group of the same topic, and the topic itself gets nothing
// appended: a compacted topic's last record per key stays the newest, not
// the old record that was replayed.
func TestReplayReachesOnlyItsGroupAndLeavesTheTopic(t *testing.T) {
	f := setup(t)
	topic := "studio.title.materialized.replaygroup"
	envs := titleEvents(6, "replaygroup")
	bad := envs[2].ID
	start := func(group string, s *refusingSink) {
		h := consumer.Deduplicate(dedupe.NewMemory(), consumer.DedupeConfig{}, consumer.ToSinks(s))
		c, err := consumer.New(h, consumer.WithBrokers(f.brokers), consumer.WithGroup(group), consumer.WithTopics(topic),
			consumer.WithRegistry(f.reg), consumer.WithDeadLetter(f.pub), consumer.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		runConsumer(t, c)
	}
	failing := &refusingSink{namedSeen: namedSeen{seenIDs: seenIDs{ids: map[string]int{}}, name: "index"}, refuse: bad}
	failing.refusing.Store(true)
	other := &refusingSink{namedSeen: namedSeen{seenIDs: seenIDs{ids: map[string]int{}}, name: "index"}, refuse: bad}
	start("replaygroup-a", failing)
	start("replaygroup-b", other)
	if err := f.pub.Publish(t.Context(), topic, envs...); err != nil {
		t.Fatal(err)
	}
	dls := waitDeadLetters(t, f.brokers, topic)
	testenv.WaitFor(t, 20*time.Second, "the other group handling every event", func() bool {
		for _, e := range envs {
			if !other.has(e.ID) {
				return false
			}
		}
		return true
	})
	cl, err := kafka.NewConsumer(&kafka.ConfigMap{"bootstrap.servers": f.brokers, "group.id": "replaygroup-probe"})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	end := func() (n int64) {
		for p := range int32(2) {
			_, high, err := cl.QueryWatermarkOffsets(topic, p, 5000)
			if err != nil {
				t.Fatal(err)
			}
			n += high
		}
		return n
	}
	before := end()
	failing.refusing.Store(false)
	if err := consumer.Replay(t.Context(), f.pub, dls[0]); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "the replay in the failing group's sink", func() bool { return failing.has(bad) })
	time.Sleep(500 * time.Millisecond) // the other group would have had it by now
	if n := other.count(bad); n != 1 {
		t.Errorf("the other group handled the replayed event %d times, want once (before the replay)", n)
	}
	if after := end(); after != before {
		t.Errorf("the topic grew from %d to %d records: the replay was appended to it", before, after)
	}
	if got := schema.ReplayTopic(topic); got != topic+".dlq.replay" || schema.DLQTopic(got) != topic+".dlq" {
		t.Errorf("replay topic %q, its dead-letter topic %q", got, schema.DLQTopic(got))
	}
}

// A copy at another offset of an event that one sink refused and another
// wrote (a producer retry, an enricher re-publishing after a crash) does
// not reach the sink that holds it: the audit sink holds it once, and the
// refusing sink gets the copy, refuses it again, and it is dead-lettered
// again rather than lost.
func TestCopyOfPartlyWrittenEventReachesOnlyTheRefusingSink(t *testing.T) {
	f := setup(t)
	topic := "studio.title.materialized.partlycopy"
	envs := titleEvents(6, "partlycopy")
	bad := envs[3]
	audit := &namedSeen{seenIDs: seenIDs{ids: map[string]int{}}, name: "audit"}
	index := &refusingSink{namedSeen: namedSeen{seenIDs: seenIDs{ids: map[string]int{}}, name: "index"}, refuse: bad.ID}
	index.refusing.Store(true)
	h := consumer.Deduplicate(dedupe.NewMemory(), consumer.DedupeConfig{}, consumer.ToSinks(audit, index))
	c, err := consumer.New(h, consumer.WithBrokers(f.brokers), consumer.WithGroup("partlycopy"), consumer.WithTopics(topic),
		consumer.WithRegistry(f.reg), consumer.WithDeadLetter(f.pub), consumer.WithBackoff(10*time.Millisecond, 50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	runConsumer(t, c)
	if err := f.pub.Publish(t.Context(), topic, envs...); err != nil {
		t.Fatal(err)
	}
	waitDeadLetters(t, f.brokers, topic)
	if err := f.pub.Publish(t.Context(), topic, bad, envs[5]); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "the copy dead-lettered again", func() bool {
		return len(waitDeadLetters(t, f.brokers, topic)) == 2
	})
	if n := audit.count(bad.ID); n != 1 {
		t.Errorf("the audit sink holds the refused event %d times, want once", n)
	}
	if n := audit.count(envs[5].ID); n != 1 {
		t.Errorf("the audit sink holds a plain duplicate %d times, want once", n)
	}
}
