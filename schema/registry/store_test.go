package registry_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/slatehq/slate/schema/registry"
)

func TestRecordJSON(t *testing.T) {
	tests := []struct {
		name       string
		rec        registry.Record
		key, value string
	}{
		{
			"schema",
			registry.Record{
				Key:   registry.Key{KeyType: registry.KeySchema, Subject: "s", Version: 2, Magic: 1},
				Value: &registry.Value{Subject: "s", Version: 2, ID: 7, Schema: `"int"`},
			},
			`{"keytype":"SCHEMA","subject":"s","version":2,"magic":1}`,
			`{"subject":"s","version":2,"id":7,"schema":"\"int\"","deleted":false}`,
		},
		{
			"schema tombstone",
			registry.Record{Key: registry.Key{KeyType: registry.KeySchema, Subject: "s", Version: 2, Magic: 1}},
			`{"keytype":"SCHEMA","subject":"s","version":2,"magic":1}`,
			``,
		},
		{
			"global config",
			registry.Record{Key: registry.Key{KeyType: registry.KeyConfig}, Value: &registry.Value{CompatibilityLevel: registry.Full}},
			`{"keytype":"CONFIG","subject":null,"magic":0}`,
			`{"compatibilityLevel":"FULL"}`,
		},
		{
			"subject config",
			registry.Record{Key: registry.Key{KeyType: registry.KeyConfig, Subject: "s"}, Value: &registry.Value{CompatibilityLevel: registry.None}},
			`{"keytype":"CONFIG","subject":"s","magic":0}`,
			`{"compatibilityLevel":"NONE"}`,
		},
		{
			"delete subject",
			registry.Record{Key: registry.Key{KeyType: registry.KeyDeleteSubject, Subject: "s"}, Value: &registry.Value{Subject: "s", Version: 3}},
			`{"keytype":"DELETE_SUBJECT","subject":"s","magic":0}`,
			`{"subject":"s","version":3}`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k, v, err := tt.rec.MarshalKeyValue()
			if err != nil {
				t.Fatal(err)
			}
			if string(k) != tt.key || string(v) != tt.value {
				t.Fatalf("got\n%s\n%s\nwant\n%s\n%s", k, v, tt.key, tt.value)
			}
			back, err := registry.UnmarshalRecord(k, v)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, tt.rec) {
				t.Fatalf("round trip = %+v %+v, want %+v %+v", back.Key, back.Value, tt.rec.Key, tt.rec.Value)
			}
		})
	}

	t.Run("confluent value with extra fields", func(t *testing.T) {
		r, err := registry.UnmarshalRecord(
			[]byte(`{"keytype":"SCHEMA","subject":"orders-value","version":1,"magic":1}`),
			[]byte(`{"subject":"orders-value","version":1,"id":1,"metadata":null,"ruleSet":null,"schema":"\"string\"","deleted":false}`))
		if err != nil {
			t.Fatal(err)
		}
		if r.Value == nil || r.Value.ID != 1 || r.Value.Schema != `"string"` {
			t.Fatalf("decoded %+v", r.Value)
		}
	})
}

// TestReplay checks that a second server over the same store sees what the
// first one wrote, and that replay keeps ids stable.
func TestReplay(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemoryStore()
	first := newTestRegistry(t, registry.WithStore(store))
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

	second := newTestRegistry(t, registry.WithStore(store))
	for _, path := range []string{
		"/subjects", "/subjects?deleted=true",
		"/subjects/a/versions", "/subjects/a/versions?deleted=true", "/subjects/a/versions/1?deleted=true",
		"/subjects/a/versions/latest", "/subjects/b/versions/1",
		"/schemas/ids/1", "/schemas/ids/2", "/schemas/ids/3", "/schemas/ids/2/versions",
		"/config", "/config/b",
	} {
		s1, b1 := first.do(t, http.MethodGet, path, nil)
		s2, b2 := second.do(t, http.MethodGet, path, nil)
		if s1 != s2 || string(b1) != string(b2) {
			t.Errorf("GET %s: first %d %s, replayed %d %s", path, s1, b1, s2, b2)
		}
	}
	// A new schema after replay gets the next id, not a used one.
	id, _, err := second.client.CreateSchema(ctx, "c", record(`{"name":"new","type":"int"}`))
	if err != nil || id != 4 {
		t.Fatalf("id after replay = %d, %v; want 4", id, err)
	}
}

// TestMemoryStoreForgetsHardDeletedSchemas permanently deletes a large
// schema, by version and by subject: the store must no longer hold its
// text, while a server replaying the store still sees the registry as it
// was and never hands the deleted schema's id to another schema.
func TestMemoryStoreForgetsHardDeletedSchemas(t *testing.T) {
	ctx := context.Background()
	store := registry.NewMemoryStore()
	first := newTestRegistry(t, registry.WithStore(store))
	if _, _, err := first.client.CreateSchema(ctx, "keep", schemaA); err != nil {
		t.Fatal(err)
	}
	marker := strings.Repeat("q", 100_000)
	big := record(`{"name":"a","type":"string","doc":"` + marker + `"}`)
	var bigID int
	for _, deletes := range [][]string{
		{"/subjects/big/versions/1", "/subjects/big/versions/1?permanent=true"},
		{"/subjects/big", "/subjects/big?permanent=true"},
	} {
		var got struct{ ID int }
		first.doJSON(t, http.MethodPost, "/subjects/big/versions", map[string]string{"schema": big}, &got)
		bigID = got.ID
		for _, path := range deletes {
			first.doJSON(t, http.MethodDelete, path, nil, nil)
		}
	}
	for i, r := range store.Records() {
		if r.Value != nil && strings.Contains(r.Value.Schema, marker) {
			t.Fatalf("record %d (%s %s/%d) still holds the text of the hard-deleted schema", i, r.Key.KeyType, r.Key.Subject, r.Key.Version)
		}
	}

	var logs syncBuffer
	second := newTestRegistry(t, registry.WithStore(store), registry.WithLogger(slog.New(slog.NewTextHandler(&logs, nil))))
	if strings.Contains(logs.String(), "skipped") {
		t.Fatalf("replay of the compacted store skipped records: %s", logs.String())
	}
	for _, path := range []string{
		"/subjects?deleted=true", "/subjects/keep/versions?deleted=true", "/subjects/big/versions?deleted=true",
		"/schemas/ids/1", fmt.Sprintf("/schemas/ids/%d", bigID),
	} {
		s1, b1 := first.do(t, http.MethodGet, path, nil)
		s2, b2 := second.do(t, http.MethodGet, path, nil)
		if s1 != s2 || string(b1) != string(b2) {
			t.Errorf("GET %s: first %d %s, replayed %d %s", path, s1, b1, s2, b2)
		}
	}
	id, _, err := second.client.CreateSchema(ctx, "c", record(`{"name":"new","type":"int"}`))
	if err != nil || id != bigID+1 {
		t.Fatalf("id after replay = %d, %v; want %d: the hard-deleted schema's id stays taken", id, err, bigID+1)
	}
}

type failingStore struct {
	registry.MemoryStore
	fail bool
}

func (f *failingStore) Append(ctx context.Context, r registry.Record) error {
	if f.fail {
		return errors.New("disk full")
	}
	return f.MemoryStore.Append(ctx, r)
}

func TestStoreFailure(t *testing.T) {
	ctx := context.Background()
	store := &failingStore{fail: true}
	tr := newTestRegistry(t, registry.WithStore(store))
	_, _, err := tr.client.CreateSchema(ctx, "s", schemaA)
	wantCode(t, err, registry.CodeStoreError)
	// Nothing was applied: the change was not stored.
	_, err = tr.client.GetVersions(ctx, "s")
	wantCode(t, err, registry.CodeSubjectNotFound)
	store.fail = false
	id, _, err := tr.client.CreateSchema(ctx, "s", schemaA)
	if err != nil || id != 1 {
		t.Fatalf("after recovery = %d, %v", id, err)
	}
}

// emptyUnionWithDefault panics hamba/avro's parser (an index out of range
// while it checks the default against the union's first branch).
const emptyUnionWithDefault = `{"type":"record","name":"A","fields":[{"name":"f","type":[],"default":null}]}`

// TestReplayInvalid checks that a record that cannot be applied is skipped
// with a warning, as Confluent's registry skips it, and that the records
// around it still replay: one bad _schemas record must not keep the
// registry from starting, restart after restart.
func TestReplayInvalid(t *testing.T) {
	schemaKey := registry.Key{KeyType: registry.KeySchema, Subject: "s", Version: 1, Magic: 1}
	tests := []struct {
		name string
		rec  registry.Record
	}{
		{"schema without id", registry.Record{
			Key:   schemaKey,
			Value: &registry.Value{Subject: "s", Version: 1, Schema: `"int"`},
		}},
		{"unparseable schema", registry.Record{
			Key:   schemaKey,
			Value: &registry.Value{Subject: "s", Version: 1, ID: 1, Schema: `{"type":"nope"}`},
		}},
		{"schema that panics the parser", registry.Record{
			Key:   schemaKey,
			Value: &registry.Value{Subject: "s", Version: 1, ID: 1, Schema: emptyUnionWithDefault},
		}},
		{"key and value disagree", registry.Record{
			Key:   schemaKey,
			Value: &registry.Value{Subject: "t", Version: 1, ID: 1, Schema: `"int"`},
		}},
		{"bad level", registry.Record{
			Key:   registry.Key{KeyType: registry.KeyConfig},
			Value: &registry.Value{CompatibilityLevel: "SIDEWAYS"},
		}},
	}
	good := registry.Record{
		Key:   registry.Key{KeyType: registry.KeySchema, Subject: "good", Version: 1, Magic: 1},
		Value: &registry.Value{Subject: "good", Version: 1, ID: 2, Schema: `"string"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs syncBuffer
			log := slog.New(slog.NewTextHandler(&logs, nil))
			store := registry.NewMemoryStore(tt.rec, good)
			for restart := range 2 {
				tr := newTestRegistry(t, registry.WithStore(store), registry.WithLogger(log))
				if !strings.Contains(logs.String(), "registry record skipped") || !strings.Contains(logs.String(), registry.ErrInvalidRecord.Error()) {
					t.Fatalf("start %d: no warning about the skipped record in %q", restart, logs.String())
				}
				var got struct{ Schema string }
				tr.doJSON(t, http.MethodGet, "/schemas/ids/2", nil, &got)
				if got.Schema != `"string"` {
					t.Fatalf("start %d: schema 2 = %q after a bad record", restart, got.Schema)
				}
				// A skipped schema record's id stays taken.
				id, _, err := tr.client.CreateSchema(context.Background(), fmt.Sprintf("new%d", restart), record(fmt.Sprintf(`{"name":"n%d","type":"int"}`, restart)))
				if err != nil || id != 3+restart {
					t.Fatalf("start %d: next id = %d, %v; want %d", restart, id, err, 3+restart)
				}
			}
		})
	}

	t.Run("unknown key types are skipped", func(t *testing.T) {
		store := registry.NewMemoryStore(
			registry.Record{Key: registry.Key{KeyType: "NOOP"}},
			registry.Record{Key: registry.Key{KeyType: registry.KeySchema, Subject: "p", Version: 1, Magic: 1},
				Value: &registry.Value{Subject: "p", Version: 1, ID: 5, SchemaType: "PROTOBUF", Schema: `syntax = "proto3";`}},
		)
		tr := newTestRegistry(t, registry.WithStore(store))
		// The Protobuf id is taken though not served.
		id, _, err := tr.client.CreateSchema(context.Background(), "s", schemaA)
		if err != nil || id != 6 {
			t.Fatalf("id = %d, %v; want 6", id, err)
		}
		status, _ := tr.do(t, http.MethodGet, fmt.Sprintf("/schemas/ids/%d", 5), nil)
		if status != http.StatusNotFound {
			t.Fatalf("Protobuf schema served: %d", status)
		}
	})

	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := registry.New(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
	})
}
