package schema_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/schema/registry"
)

const (
	titleV1 = `{"type":"record","name":"Title","namespace":"studio","fields":[
		{"name":"id","type":"string"},
		{"name":"name","type":"string"}]}`
	// v2 adds an optional field: a reader on v2 gives it its default for
	// v1 data, a reader on v1 skips it.
	titleV2 = `{"type":"record","name":"Title","namespace":"studio","fields":[
		{"name":"id","type":"string"},
		{"name":"name","type":"string"},
		{"name":"genre","type":["null","string"],"default":null}]}`
	// An incompatible change: id becomes a long.
	titleBad = `{"type":"record","name":"Title","namespace":"studio","fields":[
		{"name":"id","type":"long"},
		{"name":"name","type":"string"}]}`
)

type titleV1Rec struct {
	ID   string `avro:"id"`
	Name string `avro:"name"`
}

type titleV2Rec struct {
	ID    string  `avro:"id"`
	Name  string  `avro:"name"`
	Genre *string `avro:"genre"`
}

func newRegistry(t *testing.T, opts ...registry.Option) *schema.RegistryClient {
	t.Helper()
	srv, err := registry.New(context.Background(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	reg, err := schema.NewRegistryClient(hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

func newSerde(t *testing.T, reg schema.Registry, s string, opts ...schema.SerdeOption) *schema.Serde {
	t.Helper()
	sd, err := schema.NewSerde(reg, s, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return sd
}

func TestNameStrategy(t *testing.T) {
	rec := avro.MustParse(titleV1)
	tests := []struct {
		strategy schema.NameStrategy
		s        avro.Schema
		key      bool
		want     string
		wantErr  bool
	}{
		{schema.TopicNameStrategy, rec, false, "studio.title.materialized-value", false},
		{schema.TopicNameStrategy, rec, true, "studio.title.materialized-key", false},
		{schema.TopicNameStrategy, avro.MustParse(`"string"`), false, "studio.title.materialized-value", false},
		{schema.RecordNameStrategy, rec, false, "studio.Title", false},
		{schema.TopicRecordNameStrategy, rec, false, "studio.title.materialized-studio.Title", false},
		{schema.RecordNameStrategy, avro.MustParse(`"string"`), false, "", true},
		{schema.NameStrategy(9), rec, false, "", true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s key=%v %s", tt.strategy, tt.key, tt.s.Type()), func(t *testing.T) {
			got, err := tt.strategy.Subject("studio.title.materialized", tt.s, tt.key)
			if tt.wantErr {
				if !errors.Is(err, schema.ErrNameStrategy) {
					t.Fatalf("err = %v, want ErrNameStrategy", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("Subject = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

func TestSerdeResolution(t *testing.T) {
	ctx := context.Background()
	reg := newRegistry(t)
	const topic = "studio.title.materialized"
	v1, v2 := newSerde(t, reg, titleV1), newSerde(t, reg, titleV2)
	drama := "drama"

	t.Run("v1 data, v2 reader", func(t *testing.T) {
		b, err := v1.Encode(ctx, nil, topic, titleV1Rec{ID: "t-1", Name: "Dune"})
		if err != nil {
			t.Fatal(err)
		}
		got := titleV2Rec{Genre: &drama} // the default must overwrite it
		if err := v2.Decode(ctx, b, &got); err != nil {
			t.Fatal(err)
		}
		if got.ID != "t-1" || got.Name != "Dune" || got.Genre != nil {
			t.Fatalf("decoded %+v, want t-1 Dune with no genre", got)
		}
	})
	t.Run("v2 data, v1 reader", func(t *testing.T) {
		b, err := v2.Encode(ctx, nil, topic, titleV2Rec{ID: "t-2", Name: "Heat", Genre: &drama})
		if err != nil {
			t.Fatal(err)
		}
		var got titleV1Rec
		if err := v1.Decode(ctx, b, &got); err != nil {
			t.Fatal(err)
		}
		if got != (titleV1Rec{ID: "t-2", Name: "Heat"}) {
			t.Fatalf("decoded %+v", got)
		}
		var generic map[string]any
		if err := v2.Decode(ctx, b, &generic); err != nil {
			t.Fatal(err)
		}
		if generic["genre"] != "drama" {
			t.Fatalf("generic decode = %v", generic)
		}
	})
	t.Run("same subject, two versions", func(t *testing.T) {
		id1, err := v1.SchemaID(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		id2, err := v2.SchemaID(ctx, topic)
		if err != nil {
			t.Fatal(err)
		}
		if id1 == id2 || v1.Subject(topic) != "studio.Title" || v2.Subject(topic) != "studio.Title" {
			t.Fatalf("ids %d %d subjects %s %s", id1, id2, v1.Subject(topic), v2.Subject(topic))
		}
	})
	t.Run("incompatible writer", func(t *testing.T) {
		// Registered under another subject, so the registry lets it in.
		bad := newSerde(t, reg, titleBad, schema.WithNameStrategy(schema.TopicRecordNameStrategy))
		b, err := bad.Encode(ctx, nil, "other", map[string]any{"id": int64(7), "name": "x"})
		if err != nil {
			t.Fatal(err)
		}
		var got titleV2Rec
		if err := v2.Decode(ctx, b, &got); !errors.Is(err, schema.ErrDecode) {
			t.Fatalf("err = %v, want ErrDecode", err)
		}
	})
	t.Run("not framed", func(t *testing.T) {
		var got titleV2Rec
		if err := v2.Decode(ctx, []byte("{}"), &got); !errors.Is(err, schema.ErrDecode) {
			t.Fatalf("err = %v, want ErrDecode", err)
		}
	})
	t.Run("envelope without data", func(t *testing.T) {
		e := schema.NewEnvelope("//s", schema.OpUpdate, "title", "t-1")
		var got titleV2Rec
		if err := v2.Data(ctx, &e, &got); !errors.Is(err, schema.ErrDecode) {
			t.Fatalf("err = %v, want ErrDecode", err)
		}
	})
}

func TestNewSerdeFails(t *testing.T) {
	reg := newRegistry(t)
	tests := []struct {
		name string
		reg  schema.Registry
		s    string
		opts []schema.SerdeOption
	}{
		{"no registry", nil, titleV1, nil},
		{"bad schema", reg, `{"type":"nope"}`, nil},
		{"record strategy, primitive schema", reg, `"string"`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := schema.NewSerde(tt.reg, tt.s, tt.opts...); err == nil {
				t.Fatal("NewSerde succeeded")
			}
		})
	}
}

// TestEvolutionThroughKafka has a producer on Title v1 and one on Title v2
// (v2 adds an optional field) publish materialized title events to the
// embedded broker; readers on v1 and on v2 each read both.
func TestEvolutionThroughKafka(t *testing.T) {
	ctx := context.Background()
	b, err := broker.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	reg := newRegistry(t)
	topic := schema.MaterializedTopic("title")
	drama := "drama"

	publish := func(source, s string, v any, id string) {
		t.Helper()
		p, err := producer.New(producer.WithBrokers(b.Addr()), producer.WithRegistry(reg), producer.WithSource(source))
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close(ctx)
		e := schema.NewEnvelope(source, schema.OpUpdate, "title", id)
		if err := newSerde(t, reg, s).SetData(ctx, &e, topic, v); err != nil {
			t.Fatal(err)
		}
		if err := p.Publish(ctx, topic, e); err != nil {
			t.Fatal(err)
		}
	}
	publish("//studio/titles-v1", titleV1, titleV1Rec{ID: "t-1", Name: "Dune"}, "t-1")
	publish("//studio/titles-v2", titleV2, titleV2Rec{ID: "t-2", Name: "Heat", Genre: &drama}, "t-2")

	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addr()), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	codec, err := schema.NewCodec(reg)
	if err != nil {
		t.Fatal(err)
	}
	envs := map[string]schema.Envelope{}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for len(envs) < 2 && pctx.Err() == nil {
		for _, r := range cl.PollFetches(pctx).Records() {
			e, err := codec.Decode(ctx, r.Value)
			if err != nil {
				t.Fatal(err)
			}
			envs[e.Subject] = e
		}
	}
	if len(envs) != 2 {
		t.Fatalf("read %d events, want 2", len(envs))
	}
	for id, e := range envs {
		if e.DataSchema == "" || e.DataContentType != schema.ContentTypeAvro {
			t.Errorf("%s: dataschema %q content type %q", id, e.DataSchema, e.DataContentType)
		}
	}

	r1, r2 := newSerde(t, reg, titleV1), newSerde(t, reg, titleV2)
	tests := []struct {
		name   string
		reader *schema.Serde
		id     string
		into   func() any
		want   any
	}{
		{"v1 reads v1", r1, "t-1", func() any { return &titleV1Rec{} }, &titleV1Rec{ID: "t-1", Name: "Dune"}},
		{"v1 reads v2", r1, "t-2", func() any { return &titleV1Rec{} }, &titleV1Rec{ID: "t-2", Name: "Heat"}},
		{"v2 reads v1", r2, "t-1", func() any { return &titleV2Rec{} }, &titleV2Rec{ID: "t-1", Name: "Dune"}},
		{"v2 reads v2", r2, "t-2", func() any { return &titleV2Rec{} }, &titleV2Rec{ID: "t-2", Name: "Heat", Genre: &drama}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := envs[tt.id]
			got := tt.into()
			if err := tt.reader.Data(ctx, &e, got); err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(deref(got)) != fmt.Sprint(deref(tt.want)) {
				t.Fatalf("decoded %+v, want %+v", deref(got), deref(tt.want))
			}
		})
	}
}

// deref prints a record with its optional genre spelled out.
func deref(v any) string {
	switch r := v.(type) {
	case *titleV1Rec:
		return fmt.Sprintf("%s %s", r.ID, r.Name)
	case *titleV2Rec:
		g := "<none>"
		if r.Genre != nil {
			g = *r.Genre
		}
		return fmt.Sprintf("%s %s %s", r.ID, r.Name, g)
	}
	return fmt.Sprint(v)
}

func ExampleNameStrategy_Subject() {
	s := avro.MustParse(`{"type":"record","name":"Title","namespace":"studio","fields":[{"name":"id","type":"string"}]}`)
	for _, n := range []schema.NameStrategy{schema.TopicNameStrategy, schema.RecordNameStrategy, schema.TopicRecordNameStrategy} {
		subject, _ := n.Subject("studio.title.materialized", s, false)
		fmt.Println(n, subject)
	}
	// Output:
	// TopicNameStrategy studio.title.materialized-value
	// RecordNameStrategy studio.Title
	// TopicRecordNameStrategy studio.title.materialized-studio.Title
}

func ExampleNewSerde() {
	ctx := context.Background()
	srv, _ := registry.New(ctx)
	hs := httptest.NewServer(srv)
	defer hs.Close()
	reg, _ := schema.NewRegistryClient(hs.URL)

	v1, _ := schema.NewSerde(reg, `{"type":"record","name":"Title","namespace":"studio","fields":[
		{"name":"id","type":"string"}]}`)
	v2, _ := schema.NewSerde(reg, `{"type":"record","name":"Title","namespace":"studio","fields":[
		{"name":"id","type":"string"},
		{"name":"genre","type":"string","default":"unknown"}]}`)

	e := schema.NewEnvelope("//studio/titles", schema.OpUpdate, "title", "t-1")
	if err := v1.SetData(ctx, &e, schema.MaterializedTopic("title"), map[string]any{"id": "t-1"}); err != nil {
		fmt.Println(err)
		return
	}
	var got map[string]any
	if err := v2.Data(ctx, &e, &got); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(e.DataSchema, got["id"], got["genre"])
	// Output: studio.Title/1 t-1 unknown
}
