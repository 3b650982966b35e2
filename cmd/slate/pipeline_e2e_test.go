package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"github.com/hamba/avro/v2/registry"
	"github.com/parquet-go/parquet-go"

	"github.com/slatehq/slate/consumer/sink/bleve"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

// hiveRow is the part of a row of the hive sink's table the test reads.
type hiveRow struct {
	Type     string  `parquet:"type"`
	Subject  string  `parquet:"subject"`
	Sequence int64   `parquet:"sequence"`
	Data     *string `parquet:"data,optional"`
}

// readHive reads every row of the Parquet files of a hive table directory.
// A running sink may replace a file while it is read (a file listed is
// gone when opened); the read then starts over.
func readHive(t testing.TB, dir string) []hiveRow {
	t.Helper()
	var rows []hiveRow
	var err error
	for range 10 {
		rows = nil
		err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasPrefix(d.Name(), "part-") || !strings.HasSuffix(d.Name(), ".parquet") {
				return err
			}
			rs, err := parquet.ReadFile[hiveRow](path)
			if err != nil {
				return fmt.Errorf("%s: %w", path, err)
			}
			rows = append(rows, rs...)
			return nil
		})
		if !errors.Is(err, fs.ErrNotExist) || !dirExists(dir) {
			break
		}
	}
	if err != nil && !(errors.Is(err, fs.ErrNotExist) && !dirExists(dir)) {
		t.Fatal(err)
	}
	slices.SortFunc(rows, func(a, b hiveRow) int {
		if c := strings.Compare(a.Subject, b.Subject); c != 0 {
			return c
		}
		return int(a.Sequence - b.Sequence)
	})
	return rows
}

func dirExists(dir string) bool {
	_, err := os.Stat(dir)
	return err == nil
}

// TestPipelineE2E runs `slate enrich` and `slate sink` as child processes
// from one slate.yaml against a schedules service slate has no code for:
// ID-only change events become full shoots in a Hive table and a Kafka
// topic (every event) and a bleve index (the current state), tombstones
// delete, and the Avro
// schema the enricher registered decodes a materialized record, field
// types included. Once with server reflection, once with a descriptor set.
func TestPipelineE2E(t *testing.T) {
	for _, tt := range []struct {
		name    string
		reflect bool
	}{{"reflection", true}, {"descriptor_set", false}} {
		t.Run(tt.name, func(t *testing.T) {
			if testing.Short() {
				t.Skip("runs a broker, a registry and two slate processes")
			}
			start := time.Now()
			env := testenv.Start(t, "//test/schedules")
			srv := startShoots(t, tt.reflect)
			et := fmt.Sprintf("shoot%d", time.Now().UnixNano()%1_000_000_000)
			descriptors := ""
			if !tt.reflect {
				abs, err := filepath.Abs(schedulesSet)
				if err != nil {
					t.Fatal(err)
				}
				descriptors = "descriptor_set: " + abs
			}
			hiveRoot, index := t.TempDir(), filepath.Join(t.TempDir(), "search")
			cfg := writeFile(t, "slate.yaml", fmt.Sprintf(`
kafka:
  brokers: %[1]s
registry:
  url: %[2]s
enrich:
  - name: %[3]s-enricher
    entity_type: %[3]s
    resolvers:
      %[3]s:
        target: %[4]s
        rpc: studio.schedules.v1.Schedules/BatchGetShoots
        records_field: shoots
        version_field: version
        deleted_field: deleted
        %[5]s
sink:
  - name: %[3]s-sink
    inputs: [studio.%[3]s.materialized]
    sinks:
      - {type: hive, root: %[6]s, table: shoots}
      - {type: bleve, path: %[7]s}
      - {type: kafka, topic: studio.%[3]s.feed}
`, env.Brokers, env.RegistryURL, et, srv.srv.Addr(), descriptors, hiveRoot, index))
			// Topics first, as a deployment creates them: a pipeline is
			// ready once it joined its group, which takes its inputs to exist.
			testenv.CreateTopics(t, env.Brokers, 1, "studio."+et+".changes", "studio."+et+".materialized")
			enrich := startSlate(t, "slate enrich", "enrich", "--config", cfg)
			sinks := startSlate(t, "slate sink", "sink", "--config", cfg)
			enrich.waitReady(t, "enrich")
			sinks.waitReady(t, "sink")
			t.Logf("both processes ready after %s", time.Since(start).Round(time.Millisecond))

			ctx := context.Background()
			publish := func(id string, op schema.Op, seq int64) {
				t.Helper()
				if err := env.Producer.PublishChange(ctx, et, id, op, seq); err != nil {
					t.Fatal(err)
				}
			}
			table := filepath.Join(hiveRoot, "shoots")
			waitRows := func(n int) {
				t.Helper()
				testenv.WaitFor(t, 60*time.Second, fmt.Sprintf("%d rows in the hive table", n), func() bool {
					enrich.running(t)
					sinks.running(t)
					return len(readHive(t, table)) >= n
				})
			}
			srv.put(t, `{"id": "sh1", "version": "1", "title": "Day 1", "status": "STATUS_PLANNED",
				"call_time": "2027-03-04T06:30:00.123456Z", "location": {"stage": "Stage 4", "floor": 2},
				"crew": ["gaffer", "grip"], "budget": {"catering": "120000", "lighting": "450000"}}`)
			srv.put(t, `{"id": "sh2", "version": "1", "title": "Day 2", "status": "STATUS_CONFIRMED"}`)
			srv.put(t, `{"id": "sh3", "version": "1", "title": "Day 3"}`)
			for _, id := range []string{"sh1", "sh2", "sh3"} {
				publish(id, schema.OpCreate, 1)
			}
			waitRows(3)
			srv.put(t, `{"id": "sh1", "version": "2", "title": "Day 1 (moved)", "status": "STATUS_CONFIRMED",
				"call_time": "2027-03-05T07:00:00Z", "location": {"stage": "Backlot", "floor": -1},
				"crew": ["gaffer", "grip", "best boy"], "budget": {"catering": "130000"}}`)
			srv.put(t, `{"id": "sh3", "version": "2", "deleted": true}`)
			publish("sh1", schema.OpUpdate, 2)
			publish("sh3", schema.OpDelete, 2)
			waitRows(5)
			enrich.stop(t)
			sinks.stop(t)

			rows := readHive(t, table)
			var got []string
			for _, r := range rows {
				got = append(got, fmt.Sprintf("%s@%d %s", r.Subject, r.Sequence, r.Type))
			}
			want := []string{"sh1@1 CREATE", "sh1@2 UPDATE", "sh2@1 CREATE", "sh3@1 CREATE", "sh3@2 DELETE"}
			if !slices.Equal(got, want) {
				t.Errorf("hive table holds %v, want %v", got, want)
			}
			if len(rows) == 5 {
				var doc map[string]any
				if rows[1].Data == nil || json.Unmarshal([]byte(*rows[1].Data), &doc) != nil || doc["title"] != "Day 1 (moved)" {
					t.Errorf("hive row of sh1@2 has data %v, want the shoot titled \"Day 1 (moved)\"", rows[1].Data)
				}
			}

			got = nil
			for _, r := range testenv.ReadTopic(t, env.Brokers, env.Registry, "studio."+et+".feed") {
				got = append(got, fmt.Sprintf("%s@%d %s", r.Key, r.Env.Sequence, r.Env.Type))
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("kafka sink topic holds %v, want %v", got, want)
			}

			ix, err := bleve.New(index, bleve.WithRegistry(env.Registry))
			if err != nil {
				t.Fatal(err)
			}
			defer ix.Close(ctx)
			for _, w := range []struct {
				id, title, status string
				version           int64
			}{{"sh1", "Day 1 (moved)", "STATUS_CONFIRMED", 2}, {"sh2", "Day 2", "STATUS_CONFIRMED", 1}} {
				doc, v, found, err := ix.Get(ctx, et, w.id)
				if err != nil || !found || v != w.version || doc["title"] != w.title || doc["status"] != w.status {
					t.Errorf("index: %s found %v at version %d, doc %v, err %v; want %q (%s) at version %d",
						w.id, found, v, doc, err, w.title, w.status, w.version)
				}
			}
			if doc, v, found, err := ix.Get(ctx, et, "sh3"); err != nil || found || v != 2 {
				t.Errorf("index: sh3 (deleted at 2) found %v at version %d, doc %v, err %v; want deleted at 2", found, v, doc, err)
			}

			checkAvro(t, env, "studio."+et+".materialized")
		})
	}
}

// checkAvro decodes the materialized record of sh1 at version 2 with the
// schema registered for it, read with hamba's registry client.
func checkAvro(t *testing.T, env testenv.Env, topic string) {
	t.Helper()
	var data []byte
	for _, r := range testenv.ReadTopic(t, env.Brokers, env.Registry, topic) {
		if r.Key == "sh1" && r.Env.Sequence == 2 {
			data = r.Env.Data
			if r.Env.DataContentType != schema.ContentTypeAvro {
				t.Errorf("sh1@2: datacontenttype %q, want %q", r.Env.DataContentType, schema.ContentTypeAvro)
			}
		}
	}
	if data == nil {
		t.Fatalf("%s has no record of sh1 at version 2", topic)
	}
	rc, err := registry.NewClient(env.RegistryURL)
	if err != nil {
		t.Fatal(err)
	}
	info, err := rc.GetLatestSchemaInfo(context.Background(), "studio.schedules.v1.Shoot")
	if err != nil {
		t.Fatalf("latest schema of studio.schedules.v1.Shoot: %v", err)
	}
	id, payload, err := schema.Unframe(data)
	if err != nil {
		t.Fatal(err)
	}
	if id != info.ID {
		t.Errorf("sh1@2 is written with schema %d, the latest of studio.schedules.v1.Shoot is %d", id, info.ID)
	}
	var got map[string]any
	if err := avro.Unmarshal(info.Schema, payload, &got); err != nil {
		t.Fatalf("decode sh1@2 with the registered schema: %v", err)
	}
	if !isTimestampMicros(info.Schema, "call_time") {
		t.Errorf("call_time of the registered schema is not a timestamp-micros long: %s", info.Schema)
	}
	for field, want := range map[string]any{
		"id":        "sh1",
		"version":   int64(2),
		"deleted":   false,
		"title":     "Day 1 (moved)",
		"status":    "STATUS_CONFIRMED",
		"call_time": time.Date(2027, 3, 5, 7, 0, 0, 0, time.UTC),
		"location":  map[string]any{"studio.schedules.v1.Shoot.Location": map[string]any{"stage": "Backlot", "floor": -1}},
		"crew":      []any{"gaffer", "grip", "best boy"},
		"budget":    map[string]any{"catering": int64(130000)},
	} {
		if g := normalize(got[field]); !reflect.DeepEqual(g, want) {
			t.Errorf("sh1@2 field %s decodes to %#v (%[2]T), want %#v (%[3]T)", field, g, want)
		}
	}
}

// isTimestampMicros reports whether field of the record schema s is a
// long of logical type timestamp-micros, or a union of null and one.
func isTimestampMicros(s avro.Schema, field string) bool {
	rs, ok := s.(*avro.RecordSchema)
	if !ok {
		return false
	}
	for _, f := range rs.Fields() {
		if f.Name() != field {
			continue
		}
		types := []avro.Schema{f.Type()}
		if u, ok := f.Type().(*avro.UnionSchema); ok {
			types = u.Types()
		}
		for _, ty := range types {
			if p, ok := ty.(*avro.PrimitiveSchema); ok && p.Logical() != nil && p.Logical().Type() == avro.TimestampMicros {
				return true
			}
		}
	}
	return false
}

// normalize puts the times of a decoded value in UTC.
func normalize(v any) any {
	switch v := v.(type) {
	case time.Time:
		return v.UTC()
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = normalize(e)
		}
		return out
	}
	return v
}
