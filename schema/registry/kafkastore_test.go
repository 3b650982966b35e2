package registry_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/schema/registry"
)

func kafkaStore(t *testing.T, addr string, opts ...registry.KafkaStoreOption) *registry.KafkaStore {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := registry.NewKafkaStore(ctx, []string{addr}, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// TestKafkaStore runs a registry over the _schemas topic of the embedded
// broker, then starts a second server over the same topic (a second
// instance) and a third after the broker itself restarted from its data
// directory: each answers every read exactly as the first did, and the
// next id is the next one.
func TestKafkaStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	b, err := broker.Start(broker.WithDataDir(dir))
	if err != nil {
		t.Fatal(err)
	}
	addr := b.Addr()

	first := newTestRegistry(t, registry.WithStore(kafkaStore(t, addr)))
	c := first.client
	for _, step := range []func() error{
		func() error { _, _, err := c.CreateSchema(ctx, "a", schemaA); return err },
		func() error { _, _, err := c.CreateSchema(ctx, "a", schemaAB); return err },
		func() error { _, _, err := c.CreateSchema(ctx, "b", schemaAB); return err },
		func() error {
			_, _, err := c.CreateSchema(ctx, "gone", record(`{"name":"g","type":"int"}`))
			return err
		},
		func() error { return c.SetGlobalCompatibilityLevel(ctx, "FULL") },
		func() error { return c.SetCompatibilityLevel(ctx, "b", "NONE") },
		func() error { _, err := c.DeleteSubject(ctx, "gone"); return err },
	} {
		if err := step(); err != nil {
			t.Fatal(err)
		}
	}
	first.doJSON(t, http.MethodDelete, "/subjects/a/versions/1", nil, nil)
	first.doJSON(t, http.MethodDelete, "/subjects/gone?permanent=true", nil, nil)

	paths := []string{
		"/subjects", "/subjects?deleted=true",
		"/subjects/a/versions", "/subjects/a/versions?deleted=true", "/subjects/a/versions/1?deleted=true",
		"/subjects/a/versions/latest", "/subjects/b/versions/1",
		"/schemas/ids/1", "/schemas/ids/2", "/schemas/ids/3", "/schemas/ids/2/versions",
		"/config", "/config/b",
	}
	same := func(t *testing.T, other *testRegistry) {
		t.Helper()
		for _, path := range paths {
			s1, b1 := first.do(t, http.MethodGet, path, nil)
			s2, b2 := other.do(t, http.MethodGet, path, nil)
			if s1 != s2 || string(b1) != string(b2) {
				t.Errorf("GET %s: first %d %s, other %d %s", path, s1, b1, s2, b2)
			}
		}
	}

	t.Run("second instance", func(t *testing.T) {
		second := newTestRegistry(t, registry.WithStore(kafkaStore(t, addr)))
		same(t, second)
	})

	t.Run("broker restart", func(t *testing.T) {
		b.Close()
		b2, err := broker.Start(broker.WithDataDir(dir))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b2.Close)
		third := newTestRegistry(t, registry.WithStore(kafkaStore(t, b2.Addr())))
		same(t, third)
		id, _, err := third.client.CreateSchema(ctx, "c", record(`{"name":"new","type":"int"}`))
		if err != nil || id != 4 {
			t.Fatalf("id after restart = %d, %v; want 4", id, err)
		}
		// And what the restarted one wrote survives another restart.
		fourth := newTestRegistry(t, registry.WithStore(kafkaStore(t, b2.Addr())))
		if got, err := fourth.client.GetLatestSchemaInfo(ctx, "c"); err != nil || got.ID != 4 {
			t.Fatalf("subject c after replay = %+v, %v; want id 4", got, err)
		}
	})
}

// TestKafkaStoreRecordsAreConfluentShaped reads the topic with a plain
// Kafka client: keys and values are the JSON of Confluent's _schemas topic.
func TestKafkaStoreRecordsAreConfluentShaped(t *testing.T) {
	b, err := broker.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	tr := newTestRegistry(t, registry.WithStore(kafkaStore(t, b.Addr(), registry.KafkaTopic("_schemas_test"))))
	if _, _, err := tr.client.CreateSchema(context.Background(), "orders-value", schemaA); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics("_schemas_test"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) == 0 && ctx.Err() == nil {
		recs = cl.PollFetches(ctx).Records()
	}
	if len(recs) != 1 {
		t.Fatalf("%d records, want 1", len(recs))
	}
	wantKey := `{"keytype":"SCHEMA","subject":"orders-value","version":1,"magic":1}`
	wantValue := `{"subject":"orders-value","version":1,"id":1,"schema":` + jsonString(schemaA) + `,"deleted":false}`
	if string(recs[0].Key) != wantKey || string(recs[0].Value) != wantValue {
		t.Fatalf("record\n%s\n%s\nwant\n%s\n%s", recs[0].Key, recs[0].Value, wantKey, wantValue)
	}
}

func TestKafkaStoreFailsClearly(t *testing.T) {
	b, err := broker.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	if err := b.CreateTopic("_schemas_wide", 3, map[string]string{"cleanup.policy": "compact"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	tests := []struct {
		name    string
		brokers []string
		opts    []registry.KafkaStoreOption
	}{
		{"no brokers", nil, nil},
		{"topic with three partitions", []string{b.Addr()}, []registry.KafkaStoreOption{registry.KafkaTopic("_schemas_wide")}},
		{"unreachable broker", []string{"127.0.0.1:1"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := registry.NewKafkaStore(ctx, tt.brokers, tt.opts...)
			if !errors.Is(err, registry.ErrKafkaStore) {
				t.Fatalf("err = %v, want ErrKafkaStore", err)
			}
			t.Logf("error: %v", err)
		})
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestKafkaStoreFollow runs two servers over one topic at the same time:
// what the writer changes, the replica serves moments later, and the
// writer, which skips its own records when it reads the topic, ends as it
// was.
func TestKafkaStoreFollow(t *testing.T) {
	ctx := context.Background()
	b, err := broker.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	writer := newTestRegistry(t, registry.WithStore(kafkaStore(t, b.Addr())))
	replica := newTestRegistry(t, registry.WithStore(kafkaStore(t, b.Addr())))

	id, _, err := writer.client.CreateSchema(ctx, "a", schemaA)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := writer.client.CreateSchema(ctx, "a", schemaAB); err != nil {
		t.Fatal(err)
	}
	// Register, soft delete and permanently delete version 2, so the
	// replica has to apply tombstones too.
	writer.doJSON(t, http.MethodDelete, "/subjects/a/versions/2", nil, nil)
	writer.doJSON(t, http.MethodDelete, "/subjects/a/versions/2?permanent=true", nil, nil)
	if err := writer.client.SetCompatibilityLevel(ctx, "a", "FULL"); err != nil {
		t.Fatal(err)
	}

	paths := []string{"/subjects", "/subjects/a/versions?deleted=true", "/schemas/ids/1", "/schemas/ids/2", "/config/a"}
	deadline := time.Now().Add(10 * time.Second)
	for {
		diff := ""
		for _, path := range paths {
			s1, b1 := writer.do(t, http.MethodGet, path, nil)
			s2, b2 := replica.do(t, http.MethodGet, path, nil)
			if s1 != s2 || string(b1) != string(b2) {
				diff = fmt.Sprintf("GET %s: writer %d %s, replica %d %s", path, s1, b1, s2, b2)
				break
			}
		}
		if diff == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal(diff)
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(300 * time.Millisecond) // let the writer read its own records back
	if _, body := writer.do(t, http.MethodGet, "/subjects/a/versions?deleted=true", nil); string(body) != "[1]" {
		t.Fatalf("writer's versions of a = %s after reading its own records back, want [1]", body)
	}
	got, _, err := replica.client.IsRegistered(ctx, "a", schemaA)
	if err != nil || got != id {
		t.Fatalf("replica lookup = %d, %v; want %d", got, err, id)
	}
}
