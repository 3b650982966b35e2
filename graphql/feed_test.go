package graphql_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/graphql"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

var titleSchema = avro.MustParse(`{"type": "record", "name": "Title", "namespace": "test.feed", "fields": [
	{"name": "id", "type": "string"}, {"name": "name", "type": "string"},
	{"name": "release_date", "type": ["null", "string"], "default": null}, {"name": "version", "type": "long"}]}`)

// The Kafka feed starts at the end of the topics, decodes each
// materialized envelope and its Avro data into the document a store
// would return, publishes deletions as deleted changes, and skips
// TRUNCATE events and records that are not envelopes.
func TestKafkaFeed(t *testing.T) {
	env := testenv.Start(t, "//studio/enricher")
	const topic = "studio.title.materialized"
	testenv.CreateTopics(t, env.Brokers, 2, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	update := func(id string, seq int64, release string) schema.Envelope {
		t.Helper()
		e := schema.NewEnvelope("//studio/enricher", schema.OpUpdate, "title", id)
		e.Sequence = seq
		var err error
		e.Data, e.DataSchema, err = schema.EncodeData(ctx, env.Registry, "test.feed.Title", titleSchema,
			map[string]any{"id": id, "name": "Heat", "release_date": release, "version": seq})
		if err != nil {
			t.Fatal(err)
		}
		e.DataContentType = schema.ContentTypeAvro
		return e
	}
	// Before the feed starts: not published.
	if err := env.Producer.Publish(ctx, topic, update("t-1", 1, "2027-01-01")); err != nil {
		t.Fatal(err)
	}

	feed, err := graphql.NewKafkaFeed(graphql.KafkaFeedConfig{Topics: []string{topic}, Registry: env.Registry,
		Client: []kgo.Opt{kgo.SeedBrokers(env.Brokers)}})
	if err != nil {
		t.Fatal(err)
	}
	hub, err := graphql.NewHub(16, nil)
	if err != nil {
		t.Fatal(err)
	}
	sub, err := hub.Subscribe("title", "t-1")
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- feed.Run(runCtx, hub) }()
	select {
	case <-hub.Started():
	case <-ctx.Done():
		t.Fatal("the feed never went live")
	}

	raw, err := kgo.NewClient(kgo.SeedBrokers(env.Brokers), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.ProduceSync(ctx, &kgo.Record{Key: []byte("t-1"), Value: []byte("not an envelope")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	truncate := schema.NewEnvelope("//studio/enricher", schema.OpTruncate, "title", "")
	del := schema.NewEnvelope("//studio/enricher", schema.OpDelete, "title", "t-1")
	del.Sequence = 7
	if err := env.Producer.Publish(ctx, topic, update("t-2", 4, "2027-02-02"), update("t-1", 5, "2027-06-10"), truncate, del); err != nil {
		t.Fatal(err)
	}
	next := func() graphql.Change {
		t.Helper()
		select {
		case c := <-sub.Changes():
			return c
		case <-ctx.Done():
			t.Fatal("no change")
		}
		return graphql.Change{}
	}
	c := next()
	if c.Version != 5 || c.Deleted || c.Doc["release_date"] != "2027-06-10" || c.Doc["name"] != "Heat" || c.Produced.IsZero() {
		t.Fatalf("first change %+v, want t-1 at version 5 released in June", c)
	}
	if e, _ := c.Doc["slate"].(map[string]any); e["sequence"] != float64(5) || e["topic"] != topic {
		t.Errorf("envelope of the document: %v", c.Doc["slate"])
	}
	if c = next(); c.Version != 7 || !c.Deleted || c.Doc != nil {
		t.Fatalf("second change %+v, want the deletion at 7", c)
	}
	select {
	case c := <-sub.Changes():
		t.Fatalf("a change past the deletion: %+v", c)
	case <-time.After(300 * time.Millisecond):
	}
	stop()
	if err := <-done; err != nil {
		t.Errorf("Run after its context ended: %v", err)
	}
}

func TestNewKafkaFeedRefusesBadConfig(t *testing.T) {
	_, reg := testenv.Registry(t)
	seed := []kgo.Opt{kgo.SeedBrokers("127.0.0.1:9")}
	for name, cfg := range map[string]graphql.KafkaFeedConfig{
		"no topics":   {Registry: reg, Client: seed},
		"empty topic": {Topics: []string{""}, Registry: reg, Client: seed},
		"no registry": {Topics: []string{"t"}, Client: seed},
		"no client":   {Topics: []string{"t"}, Registry: reg},
	} {
		if _, err := graphql.NewKafkaFeed(cfg); !errors.Is(err, graphql.ErrConfig) {
			t.Errorf("%s: %v, want ErrConfig", name, err)
		}
	}
}

// With the groups of the pipelines that fill the stores, the feed starts
// where they are: a record they have not committed yet, written before
// the feed started, still reaches a subscriber.
func TestKafkaFeedStartsWhereTheSinksAre(t *testing.T) {
	env := testenv.Start(t, "//studio/enricher")
	const topic = "studio.title.materialized"
	testenv.CreateTopics(t, env.Brokers, 1, topic)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	publish := func(id string, seq int64) {
		t.Helper()
		e := schema.NewEnvelope("//studio/enricher", schema.OpUpdate, "title", id)
		e.Sequence = seq
		var err error
		if e.Data, e.DataSchema, err = schema.EncodeData(ctx, env.Registry, "test.feed.Title", titleSchema,
			map[string]any{"id": id, "name": "Heat", "release_date": nil, "version": seq}); err != nil {
			t.Fatal(err)
		}
		e.DataContentType = schema.ContentTypeAvro
		if err := env.Producer.Publish(ctx, topic, e); err != nil {
			t.Fatal(err)
		}
	}
	publish("t-0", 1) // applied and committed by the sink
	publish("t-1", 1) // not yet
	sinkGroup, err := kgo.NewClient(kgo.SeedBrokers(env.Brokers), kgo.ConsumerGroup("title-sink"), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.DisableAutoCommit())
	if err != nil {
		t.Fatal(err)
	}
	fs := sinkGroup.PollRecords(ctx, 1)
	if fs.NumRecords() != 1 {
		t.Fatalf("the sink group read %d records: %v", fs.NumRecords(), fs.Errors())
	}
	if err := sinkGroup.CommitRecords(ctx, fs.Records()...); err != nil {
		t.Fatal(err)
	}
	sinkGroup.Close()

	feed, err := graphql.NewKafkaFeed(graphql.KafkaFeedConfig{Topics: []string{topic}, Registry: env.Registry,
		Groups: []string{"title-sink", "a-group-that-never-committed"}, Client: []kgo.Opt{kgo.SeedBrokers(env.Brokers)}})
	if err != nil {
		t.Fatal(err)
	}
	hub, _ := graphql.NewHub(16, nil)
	t0, _ := hub.Subscribe("title", "t-0")
	t1, _ := hub.Subscribe("title", "t-1")
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	go func() { _ = feed.Run(runCtx, hub) }()
	select {
	case c := <-t1.Changes():
		if c.Version != 1 || c.Doc["id"] != "t-1" {
			t.Errorf("t-1: %+v", c)
		}
	case <-ctx.Done():
		t.Fatal("the record the sink had not committed never came")
	}
	select {
	case c := <-t0.Changes():
		t.Errorf("t-0, which the sink committed, came again: %+v", c)
	case <-time.After(300 * time.Millisecond):
	}
}
