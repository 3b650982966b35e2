package main

import (
	"bytes"
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/schema/registry"
)

func runDLQ(t *testing.T, args ...string) string {
	t.Helper()
	root := &cobra.Command{Use: "slate", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().String("log-level", "error", "")
	root.AddCommand(dlqCmd())
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(append([]string{"dlq"}, args...))
	if err := root.ExecuteContext(t.Context()); err != nil {
		t.Fatalf("slate dlq %v: %v\n%s", args, err, out.String())
	}
	return out.String()
}

func TestDLQListAndReplay(t *testing.T) {
	b, err := broker.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srv, err := registry.New(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	reg, err := schema.NewRegistryClient(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := producer.New(producer.WithBrokers(b.Addr()), producer.WithRegistry(reg), producer.WithSource("//test"))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(context.Background())
	topic := "studio.title.changes"
	err = pub.PublishRaw(t.Context(), schema.DLQTopic(topic), []byte("k1"), []byte("garbage"), []schema.Header{
		{Key: consumer.HeaderDLQError, Value: []byte("schema: decode: bad magic byte")},
		{Key: consumer.HeaderDLQStage, Value: []byte("decode")},
		{Key: consumer.HeaderDLQTopic, Value: []byte(topic)},
		{Key: consumer.HeaderDLQPartition, Value: []byte("0")},
		{Key: consumer.HeaderDLQOffset, Value: []byte("41")},
		{Key: consumer.HeaderDLQGroup, Value: []byte("search")},
	})
	if err != nil {
		t.Fatal(err)
	}
	common := []string{"--topic", topic, "--brokers", b.Addr(), "--registry-url", hs.URL}

	out := runDLQ(t, append([]string{"list"}, common...)...)
	for _, want := range []string{topic + "/0/41", "decode", "search", `"k1"`, "undecodable", "bad magic byte", "1 dead letters"} {
		if !strings.Contains(out, want) {
			t.Errorf("list output lacks %q:\n%s", want, out)
		}
	}

	out = runDLQ(t, append([]string{"replay"}, common...)...)
	if !strings.Contains(out, "1 dead letters replayed") {
		t.Errorf("replay output: %s", out)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics(schema.ReplayTopic(topic)), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	var got *kgo.Record
	for got == nil && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { got = r })
	}
	if got == nil || string(got.Value) != "garbage" || string(got.Key) != "k1" {
		t.Fatalf("replayed record = %v", got)
	}
}

// A truncated dead letter is listed as such and not replayed: replay
// re-drives the whole ones, names the truncated one's origin and fails.
func TestDLQReplaySkipsTruncated(t *testing.T) {
	b, err := broker.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	srv, err := registry.New(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	defer hs.Close()
	reg, err := schema.NewRegistryClient(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := producer.New(producer.WithBrokers(b.Addr()), producer.WithRegistry(reg), producer.WithSource("//test"))
	if err != nil {
		t.Fatal(err)
	}
	defer pub.Close(context.Background())
	topic := "studio.poster.changes"
	origin := func(offset string) []schema.Header {
		return []schema.Header{{Key: consumer.HeaderDLQStage, Value: []byte("decode")},
			{Key: consumer.HeaderDLQTopic, Value: []byte(topic)}, {Key: consumer.HeaderDLQPartition, Value: []byte("0")},
			{Key: consumer.HeaderDLQOffset, Value: []byte(offset)}}
	}
	value, trunc := schema.TruncateDeadLetter(bytes.Repeat([]byte("x"), 2_000_000), origin("7"))
	if err := pub.PublishRaw(t.Context(), schema.DLQTopic(topic), []byte("big"), value, trunc); err != nil {
		t.Fatal(err)
	}
	if err := pub.PublishRaw(t.Context(), schema.DLQTopic(topic), []byte("small"), []byte("garbage"), origin("8")); err != nil {
		t.Fatal(err)
	}
	common := []string{"--topic", topic, "--brokers", b.Addr(), "--registry-url", hs.URL}

	out := runDLQ(t, append([]string{"list"}, common...)...)
	if want := "truncated: 65536 of 2000000 bytes"; !strings.Contains(out, want) {
		t.Errorf("list output lacks %q:\n%s", want, out)
	}

	root := &cobra.Command{Use: "slate", SilenceUsage: true, SilenceErrors: true}
	root.PersistentFlags().String("log-level", "error", "")
	root.AddCommand(dlqCmd())
	var buf bytes.Buffer
	root.SetOut(&buf)
	root.SetErr(&buf)
	root.SetArgs(append([]string{"dlq", "replay"}, common...))
	err = root.ExecuteContext(t.Context())
	if !errors.Is(err, consumer.ErrTruncated) || !strings.Contains(buf.String(), "1 dead letters replayed") {
		t.Fatalf("replay: err %v, output %q; want the small one replayed and ErrTruncated", err, buf.String())
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics(schema.ReplayTopic(topic)), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	var keys []string
	for ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { keys = append(keys, string(r.Key)) })
	}
	if len(keys) != 1 || keys[0] != "small" {
		t.Errorf("replayed keys = %q, want only the whole dead letter", keys)
	}
}
