package grpcresolver_test

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hamba/avro/v2"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"
	"gopkg.in/yaml.v3"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/enricher/grpcresolver"
	"github.com/slatehq/slate/internal/testenv"
	"github.com/slatehq/slate/schema"
)

// batchSpec reads assets with BatchGetAssets.
func batchSpec(target string) grpcresolver.Spec {
	return grpcresolver.Spec{
		Target:       target,
		RPC:          "studio.test.v1.Assets/BatchGetAssets",
		RecordsField: "assets",
		VersionField: "revision",
		DeletedField: "deleted",
	}
}

func newResolver(t *testing.T, spec grpcresolver.Spec, opts ...grpcresolver.Option) *grpcresolver.Resolver {
	t.Helper()
	r, err := grpcresolver.New(context.Background(), spec, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t.UTC()
}

type m = map[string]any

// wantA1 is asset a1 as its Avro value.
var wantA1 = m{
	"id": "a1", "revision": int64(7), "deleted": false, "name": "Pilot", "format": "FORMAT_HD",
	"updated_at": m{"long.timestamp-micros": ts("2027-03-04T05:06:07.123456Z")},
	"budget":     m{"studio.test.v1.Money": m{"currency": "EUR", "units": int64(1200)}},
	"tags":       []any{"drama", "pilot"},
	"counts":     m{"views": int64(10), "likes": int64(3)},
	"note":       m{"string": "first cut"},
	"source":     m{"string": "https://example.test/a1"},
	"contact":    m{"studio.test.v1.Asset.contact.email": m{"value": "a@example.test"}},
	"rating":     m{"int": int32(0)},
	"payments":   []any{m{"currency": "EUR", "units": int64(100)}, m{"currency": "USD", "units": int64(50)}},
	"labels":     m{"1": "one", "-2": "minus two"},
	"parts":      []any{m{"name": "cold open", "seconds": int64(90)}},
	"thumbnail":  []byte{1, 2, 3},
	"score":      8.5, "weight": float32(0.25), "delta": int64(-4), "checksum": int64(18446744073709551),
	"views":    m{"long": int64(42)},
	"airings":  []any{ts("2027-04-01T20:00:00Z"), ts("2027-04-08T20:00:00.5Z")},
	"chapters": m{"c1": m{"name": "intro", "seconds": int64(30)}},
}

// checkRecords checks what BatchGetAssets of a1..a4 and an unknown id
// resolves to, and that every value encodes under the schema and
// round-trips.
func checkRecords(t *testing.T, r *grpcresolver.Resolver, got map[string]enricher.Record) {
	t.Helper()
	if _, ok := got["nope"]; ok {
		t.Error("an unknown id resolved; want it left out (deleted at the source)")
	}
	if len(got) != 4 {
		t.Fatalf("resolved %d records, want 4 (a1..a4)", len(got))
	}
	versions := map[string]int64{"a1": 7, "a2": 2, "a3": 9, "a4": 3}
	for id, v := range versions {
		if got[id].Version != v {
			t.Errorf("%s version %d, want %d", id, got[id].Version, v)
		}
	}
	if a3 := got["a3"]; !a3.Deleted || a3.Value != nil {
		t.Errorf("a3 = %+v, want a tombstone without a value", a3)
	}
	if !reflect.DeepEqual(got["a1"].Value, map[string]any(wantA1)) {
		t.Errorf("a1 value\n got %#v\nwant %#v", got["a1"].Value, wantA1)
	}
	a2 := got["a2"].Value.(map[string]any)
	for _, f := range []string{"updated_at", "budget", "note", "source", "contact", "rating", "views"} {
		if a2[f] != nil {
			t.Errorf("a2 %s = %v, want null (unset)", f, a2[f])
		}
	}
	if a2["format"] != "FORMAT_UNSPECIFIED" || a2["name"] != "" || len(a2["tags"].([]any)) != 0 {
		t.Errorf("a2 zero values: format %v, name %q, tags %v", a2["format"], a2["name"], a2["tags"])
	}
	a4 := got["a4"].Value.(map[string]any)
	if a4["format"] != "FORMAT_UNSPECIFIED" {
		t.Errorf("a4 format (unknown number 99) = %v, want the first value FORMAT_UNSPECIFIED", a4["format"])
	}
	if want := (m{"studio.test.v1.Money": m{"currency": "GBP", "units": int64(5)}}); !reflect.DeepEqual(a4["source"], want) {
		t.Errorf("a4 source = %v, want %v", a4["source"], want)
	}
	if want := (m{"studio.test.v1.Asset.contact.phone": m{"value": "+44 20"}}); !reflect.DeepEqual(a4["contact"], want) {
		t.Errorf("a4 contact = %v, want %v", a4["contact"], want)
	}

	s := r.Schema()
	if s == nil || s.FullName() != "studio.test.v1.Asset" {
		t.Fatalf("schema %v, want the record studio.test.v1.Asset", s)
	}
	// The schema parses from both its canonical form and its full JSON
	// (with defaults), and every value round-trips under each.
	full, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for form, text := range map[string]string{"canonical": s.String(), "json": string(full)} {
		parsed, err := avro.Parse(text)
		if err != nil {
			t.Fatalf("%s schema does not parse: %v\n%s", form, err, text)
		}
		for id, rec := range got {
			if rec.Deleted {
				continue
			}
			if rec.Schema != s {
				t.Errorf("%s schema is not Schema()", id)
			}
			b, err := avro.Marshal(parsed, rec.Value)
			if err != nil {
				t.Fatalf("%s: avro.Marshal under the %s schema: %v", id, form, err)
			}
			var back any
			if err := avro.Unmarshal(parsed, b, &back); err != nil {
				t.Fatalf("%s: avro.Unmarshal: %v", id, err)
			}
			// Maps encode in Go's random order, so compare decoded values.
			again, err := avro.Marshal(parsed, back)
			if err != nil {
				t.Fatalf("%s: avro.Marshal of the decoded value: %v", id, err)
			}
			var back2 any
			if err := avro.Unmarshal(parsed, again, &back2); err != nil {
				t.Fatalf("%s: avro.Unmarshal: %v", id, err)
			}
			if !reflect.DeepEqual(back, back2) {
				t.Errorf("%s does not round-trip under the %s schema:\n%#v\n%#v", id, form, back, back2)
			}
			if id == "a1" {
				checkDecodedA1(t, back.(map[string]any))
			}
		}
	}
}

// checkDecodedA1 checks a1 as Avro decodes it again.
func checkDecodedA1(t *testing.T, got map[string]any) {
	t.Helper()
	for field, want := range map[string]any{
		"name":       "Pilot",
		"revision":   int64(7),
		"format":     "FORMAT_HD",
		"updated_at": ts("2027-03-04T05:06:07.123456Z"),
		"tags":       []any{"drama", "pilot"},
		"counts":     m{"views": int64(10), "likes": int64(3)},
		"labels":     m{"1": "one", "-2": "minus two"},
		"thumbnail":  []byte{1, 2, 3},
		"airings":    []any{ts("2027-04-01T20:00:00Z"), ts("2027-04-08T20:00:00.5Z")},
		"note":       "first cut",
		"weight":     float32(0.25),
		"contact":    m{"studio.test.v1.Asset.contact.email": m{"value": "a@example.test"}},
	} {
		if !reflect.DeepEqual(got[field], want) {
			t.Errorf("a1 decoded %s = %#v, want %#v", field, got[field], want)
		}
	}
}

func TestBatchGet(t *testing.T) {
	ids := []string{"a1", "a2", "a3", "a4", "nope"}
	t.Run("reflection v1", func(t *testing.T) {
		addr, srv := startServer(t, "v1")
		r := newResolver(t, batchSpec(addr))
		got, err := r.Resolve(context.Background(), "asset", ids)
		if err != nil {
			t.Fatal(err)
		}
		checkRecords(t, r, got)
		if len(srv.asked) != 1 || !slices.Equal(srv.asked[0], ids) {
			t.Errorf("server was asked %v, want one call with %v", srv.asked, ids)
		}
	})
	t.Run("reflection v1alpha only", func(t *testing.T) {
		addr, _ := startServer(t, "v1alpha")
		r := newResolver(t, batchSpec(addr))
		got, err := r.Resolve(context.Background(), "asset", ids)
		if err != nil {
			t.Fatal(err)
		}
		checkRecords(t, r, got)
	})
	t.Run("descriptor set, no reflection", func(t *testing.T) {
		addr, _ := startServer(t, "")
		spec := batchSpec(addr)
		spec.DescriptorSet = descriptorSet
		r := newResolver(t, spec)
		got, err := r.Resolve(context.Background(), "asset", ids)
		if err != nil {
			t.Fatal(err)
		}
		checkRecords(t, r, got)
	})
	t.Run("no version field", func(t *testing.T) {
		addr, _ := startServer(t, "v1")
		spec := batchSpec(addr)
		spec.VersionField, spec.DeletedField = "", ""
		got, err := newResolver(t, spec).Resolve(context.Background(), "asset", []string{"a1", "a3"})
		if err != nil {
			t.Fatal(err)
		}
		if got["a1"].Version != 0 || got["a3"].Deleted || got["a3"].Value == nil {
			t.Errorf("without version and deleted fields: a1 %+v, a3 %+v; want version 0 and a3 live", got["a1"], got["a3"])
		}
	})
	t.Run("uint64 version above int64", func(t *testing.T) {
		addr, _ := startServer(t, "v1")
		_, err := newResolver(t, batchSpec(addr)).Resolve(context.Background(), "asset", []string{"big"})
		if err == nil || !strings.Contains(err.Error(), "revision 18446744073709551615 is above the int64 range") {
			t.Errorf("err = %v, want the version overflow named", err)
		}
		if enricher.IsRetryable(err) {
			t.Error("a record that cannot be converted is retryable")
		}
	})
}

// TestSchema pins the Avro form of each protobuf construct.
func TestSchema(t *testing.T) {
	addr, _ := startServer(t, "v1")
	r := newResolver(t, batchSpec(addr))
	want := map[string]string{
		"id":         `"string"`,
		"name":       `"string"`,
		"revision":   `"long"`,
		"deleted":    `"boolean"`,
		"format":     `{"name":"studio.test.v1.Format","type":"enum","symbols":["FORMAT_UNSPECIFIED","FORMAT_HD","FORMAT_UHD"]}`,
		"updated_at": `["null",{"type":"long","logicalType":"timestamp-micros"}]`,
		"budget":     `["null",{"name":"studio.test.v1.Money","type":"record","fields":[{"name":"currency","type":"string"},{"name":"units","type":"long"}]}]`,
		"tags":       `{"type":"array","items":"string"}`,
		"counts":     `{"type":"map","values":"long"}`,
		"note":       `["null","string"]`,
		"source":     `["null","string","studio.test.v1.Money"]`,
		"contact": `["null",{"name":"studio.test.v1.Asset.contact.email","type":"record","fields":[{"name":"value","type":"string"}]},` +
			`{"name":"studio.test.v1.Asset.contact.phone","type":"record","fields":[{"name":"value","type":"string"}]}]`,
		"rating":    `["null","int"]`,
		"payments":  `{"type":"array","items":"studio.test.v1.Money"}`,
		"labels":    `{"type":"map","values":"string"}`,
		"parts":     `{"type":"array","items":{"name":"studio.test.v1.Asset.Part","type":"record","fields":[{"name":"name","type":"string"},{"name":"seconds","type":"long"}]}}`,
		"thumbnail": `"bytes"`,
		"score":     `"double"`,
		"weight":    `"float"`,
		"delta":     `"long"`,
		"checksum":  `"long"`,
		"views":     `["null","long"]`,
		"airings":   `{"type":"array","items":{"type":"long","logicalType":"timestamp-micros"}}`,
		"chapters":  `{"type":"map","values":"studio.test.v1.Asset.Part"}`,
	}
	rec := r.Schema().(*avro.RecordSchema)
	var names []string
	for _, f := range rec.Fields() {
		names = append(names, f.Name())
		if w, ok := want[f.Name()]; !ok {
			t.Errorf("unexpected field %s", f.Name())
		} else if got := f.Type().String(); got != w {
			t.Errorf("field %s\n got %s\nwant %s", f.Name(), got, w)
		}
	}
	wantOrder := []string{"id", "revision", "deleted", "name", "format", "updated_at", "budget", "tags", "counts",
		"note", "source", "contact", "rating", "payments", "labels", "parts", "thumbnail", "score", "weight",
		"delta", "checksum", "views", "airings", "chapters"}
	if !slices.Equal(names, wantOrder) {
		t.Errorf("fields %v\nwant     %v", names, wantOrder)
	}
	defaults := map[string]any{"id": "", "revision": int64(0), "format": "FORMAT_UNSPECIFIED", "budget": nil,
		"tags": []any{}, "counts": map[string]any{}, "source": nil, "rating": nil, "score": float64(0)}
	for _, f := range rec.Fields() {
		if d, ok := defaults[f.Name()]; ok {
			if !f.HasDefault() || !reflect.DeepEqual(f.Default(), d) {
				t.Errorf("field %s default %#v (has %v), want %#v", f.Name(), f.Default(), f.HasDefault(), d)
			}
		}
	}
}

func TestGet(t *testing.T) {
	addr, srv := startServer(t, "v1")
	for _, tt := range []struct {
		name    string
		rpc     string
		records string
	}{
		{"records field", "studio.test.v1.Assets/GetAsset", "asset"},
		{"response is the record", "/studio.test.v1.Assets/GetAssetDirect", ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := newResolver(t, grpcresolver.Spec{Target: addr, Method: enricher.MethodGet, RPC: tt.rpc,
				IDsField: "asset_id", RecordsField: tt.records, VersionField: "revision", DeletedField: "deleted"},
				grpcresolver.WithParallel(2))
			got, err := r.Resolve(context.Background(), "asset", []string{"a1", "a2", "a3", "a4", "nope"})
			if err != nil {
				t.Fatal(err)
			}
			checkRecords(t, r, got)
		})
	}
	t.Run("unavailable", func(t *testing.T) {
		r := newResolver(t, grpcresolver.Spec{Target: addr, Method: enricher.MethodGet,
			RPC: "studio.test.v1.Assets/GetAsset", IDsField: "asset_id", RecordsField: "asset"})
		srv.fail.Store(int32(codes.Unavailable))
		defer srv.fail.Store(0)
		_, err := r.Resolve(context.Background(), "asset", []string{"a1", "a2"})
		if status.Code(err) != codes.Unavailable || !enricher.IsRetryable(err) {
			t.Errorf("err = %v (code %v), want a retryable UNAVAILABLE", err, status.Code(err))
		}
	})
}

func TestDependents(t *testing.T) {
	addr, _ := startServer(t, "v1")
	want := map[string][]string{"a1": {"t1", "t2"}, "a2": {"t3"}}
	for _, tt := range []struct {
		name string
		spec grpcresolver.Spec
	}{
		{"map", grpcresolver.Spec{RPC: "studio.test.v1.Assets/AssetDependents",
			IDsField: "asset_ids", DependentsField: "titles"}},
		{"repeated", grpcresolver.Spec{RPC: "studio.test.v1.Assets/AssetEdges",
			IDsField: "asset_ids", DependentsField: "edges", DependentsKeyField: "asset_id", DependentsIDsField: "title_ids"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spec := tt.spec
			spec.Target, spec.Method = addr, enricher.MethodDependents
			r := newResolver(t, spec)
			got, err := r.Dependents(context.Background(), []string{"a1", "a2", "a4"})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("dependents %v, want %v", got, want)
			}
			if r.Schema() != nil {
				t.Error("a dependents resolver has a schema")
			}
			if _, err := r.Resolve(context.Background(), "asset", []string{"a1"}); err == nil {
				t.Error("Resolve of a dependents resolver succeeded")
			}
		})
	}
}

// noImports writes the test descriptor set without the well-known types'
// files but with a made-up import, so that one cannot be found.
func noImports(t *testing.T) string {
	b, err := os.ReadFile(descriptorSet)
	if err != nil {
		t.Fatal(err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	var kept []*descriptorpb.FileDescriptorProto
	for _, f := range set.File {
		if f.GetName() == "assets.proto" {
			f.Dependency = append(f.Dependency, "studio/other.proto")
			kept = append(kept, f)
		}
	}
	set.File = kept
	out, err := proto.Marshal(&set)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "noimports.pb")
	if err := os.WriteFile(path, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestNewRejectsBadSpec(t *testing.T) {
	addr, _ := startServer(t, "v1")
	bare, _ := startServer(t, "")
	tests := []struct {
		name string
		edit func(*grpcresolver.Spec)
		want []string
	}{
		{"no target", func(s *grpcresolver.Spec) { s.Target = "" }, []string{"target: is required"}},
		{"unknown kind", func(s *grpcresolver.Spec) { s.Method = "scan" }, []string{"method:", `"scan"`, "batch_get, get or dependents"}},
		{"no rpc", func(s *grpcresolver.Spec) { s.RPC = "" }, []string{"rpc: is required"}},
		{"rpc not a full name", func(s *grpcresolver.Spec) { s.RPC = "BatchGetAssets" }, []string{"rpc:", "not a full method name"}},
		{"unknown service", func(s *grpcresolver.Spec) { s.RPC = "studio.test.v1.Nope/BatchGetAssets" },
			[]string{"rpc:", "no service studio.test.v1.Nope"}},
		{"unknown method", func(s *grpcresolver.Spec) { s.RPC = "studio.test.v1.Assets/ListAssets" },
			[]string{"rpc:", "service studio.test.v1.Assets has no method ListAssets", "BatchGetAssets"}},
		{"streaming method", func(s *grpcresolver.Spec) { s.RPC = "studio.test.v1.Assets/WatchAssets" },
			[]string{"rpc:", "streaming"}},
		{"ids field missing", func(s *grpcresolver.Spec) { s.IDsField = "asset_ids" },
			[]string{"ids_field:", `studio.test.v1.BatchGetAssetsRequest has no field "asset_ids"`}},
		{"ids field not repeated", func(s *grpcresolver.Spec) { s.RPC, s.IDsField = "studio.test.v1.Assets/GetAsset", "asset_id" },
			[]string{"ids_field:", "field asset_id of studio.test.v1.GetAssetRequest is string, need a repeated string"}},
		{"get ids field repeated", func(s *grpcresolver.Spec) { s.Method, s.IDsField = enricher.MethodGet, "ids" },
			[]string{"ids_field:", "is repeated string, need a string"}},
		{"records field missing", func(s *grpcresolver.Spec) { s.RecordsField = "titles" },
			[]string{"records_field:", `has no field "titles"`}},
		{"records field not a message", func(s *grpcresolver.Spec) { s.RecordsField = "missing_ids" },
			[]string{"records_field:", "is repeated string, need a repeated message"}},
		{"batch get without records field", func(s *grpcresolver.Spec) { s.RecordsField = "" },
			[]string{"records_field: is required"}},
		{"id field not a string", func(s *grpcresolver.Spec) { s.IDField = "revision" },
			[]string{"id_field:", "field revision of studio.test.v1.Asset is uint64, need a string"}},
		{"id field missing", func(s *grpcresolver.Spec) { s.IDField = "asset_id" },
			[]string{"id_field:", `studio.test.v1.Asset has no field "asset_id"`}},
		{"version field not an integer", func(s *grpcresolver.Spec) { s.VersionField = "name" },
			[]string{"version_field:", "field name of studio.test.v1.Asset is string, need an integer"}},
		{"version field a timestamp", func(s *grpcresolver.Spec) { s.VersionField = "updated_at" },
			[]string{"version_field:", "is google.protobuf.Timestamp, need an integer"}},
		{"deleted field not a bool", func(s *grpcresolver.Spec) { s.DeletedField = "name" },
			[]string{"deleted_field:", "need a bool"}},
		{"recursive record", func(s *grpcresolver.Spec) {
			s.RPC, s.RecordsField, s.VersionField, s.DeletedField = "studio.test.v1.Assets/BatchGetNodes", "nodes", "", ""
		}, []string{"records_field:", "message studio.test.v1.Node is recursive", "field children"}},
		{"dependents setting on batch_get", func(s *grpcresolver.Spec) { s.DependentsField = "titles" },
			[]string{"dependents_field:", "only method dependents uses it"}},
		{"dependents without dependents field", func(s *grpcresolver.Spec) {
			s.Method, s.RecordsField, s.VersionField, s.DeletedField = enricher.MethodDependents, "", "", ""
		}, []string{"dependents_field: is required"}},
		{"dependents field not a map or list", func(s *grpcresolver.Spec) {
			*s = grpcresolver.Spec{Target: s.Target, Method: enricher.MethodDependents, RPC: "studio.test.v1.Assets/GetAsset",
				IDsField: "asset_id", DependentsField: "asset"}
		}, []string{"ids_field:", "need a repeated string"}},
		{"dependents ids field wrong", func(s *grpcresolver.Spec) {
			*s = grpcresolver.Spec{Target: s.Target, Method: enricher.MethodDependents, RPC: "studio.test.v1.Assets/AssetEdges",
				IDsField: "asset_ids", DependentsField: "edges", DependentsKeyField: "asset_id"}
		}, []string{"dependents_ids_field:", `studio.test.v1.Edge has no field "ids"`}},
		{"negative timeout", func(s *grpcresolver.Spec) { s.Timeout = -time.Second }, []string{"timeout:", "negative"}},
		{"descriptor set missing", func(s *grpcresolver.Spec) { s.DescriptorSet = "testdata/nope.pb" },
			[]string{"descriptor_set:", "nope.pb"}},
		{"descriptor set not a set", func(s *grpcresolver.Spec) { s.DescriptorSet = "testdata/assets.proto" },
			[]string{"descriptor_set:", "not a file descriptor set"}},
		{"descriptor set without imports", func(s *grpcresolver.Spec) { s.DescriptorSet = noImports(t) },
			[]string{"descriptor_set:", "assets.proto imports studio/other.proto, which is missing", "--include_imports"}},
		{"no reflection, no descriptor set", func(s *grpcresolver.Spec) { s.Target = bare },
			[]string{"neither grpc.reflection.v1 nor v1alpha", "set descriptor_set"}},
		{"descriptor set, unknown method", func(s *grpcresolver.Spec) {
			s.Target, s.DescriptorSet, s.RPC = bare, descriptorSet, "studio.test.v1.Assets/Nope"
		}, []string{"rpc:", "has no method Nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := batchSpec(addr)
			tt.edit(&spec)
			r, err := grpcresolver.New(context.Background(), spec)
			if err == nil {
				r.Close()
				t.Fatal("New succeeded")
			}
			if !errors.Is(err, grpcresolver.ErrSpec) || !errors.Is(err, enricher.ErrConfig) {
				t.Errorf("err %v does not wrap ErrSpec and enricher.ErrConfig", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("err %q does not say %q", err, w)
				}
			}
			if enricher.IsRetryable(err) {
				t.Errorf("a bad spec is retryable: %v", err)
			}
		})
	}
}

func TestUnreachableTarget(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close()
	for _, set := range []string{"", descriptorSet} {
		spec := batchSpec(addr)
		spec.DescriptorSet = set
		_, err := grpcresolver.New(context.Background(), spec)
		if err == nil {
			t.Fatalf("descriptor set %q: New succeeded", set)
		}
		if !strings.Contains(err.Error(), `target "`+addr+`": unreachable`) || !strings.Contains(err.Error(), "connection refused") {
			t.Errorf("descriptor set %q: err %q does not say the target is unreachable and why", set, err)
		}
		if !enricher.IsRetryable(err) || errors.Is(err, grpcresolver.ErrSpec) {
			t.Errorf("descriptor set %q: unreachable target: retryable %v, spec error %v; want retryable, not a spec error",
				set, enricher.IsRetryable(err), errors.Is(err, grpcresolver.ErrSpec))
		}
	}
}

func TestCallErrorsRetryable(t *testing.T) {
	addr, srv := startServer(t, "v1")
	r := newResolver(t, batchSpec(addr))
	for _, tt := range []struct {
		code      codes.Code
		retryable bool
	}{
		{codes.Unavailable, true},
		{codes.ResourceExhausted, true},
		{codes.InvalidArgument, false},
		{codes.Internal, false},
	} {
		srv.fail.Store(int32(tt.code))
		_, err := r.Resolve(context.Background(), "asset", []string{"a1"})
		if status.Code(err) != tt.code || enricher.IsRetryable(err) != tt.retryable {
			t.Errorf("%v: err %v (code %v), retryable %v; want retryable %v", tt.code, err, status.Code(err),
				enricher.IsRetryable(err), tt.retryable)
		}
	}
	srv.fail.Store(0)

	// A call past the spec's timeout is retryable.
	spec := batchSpec(addr)
	spec.Timeout = time.Nanosecond
	if _, err := newResolver(t, spec).Resolve(context.Background(), "asset", []string{"a1"}); !enricher.IsRetryable(err) {
		t.Errorf("a call past its timeout: err %v is not retryable", err)
	}
}

// TestEnricher runs the resolver under an enricher: the derived schema
// registers and the records publish.
func TestEnricher(t *testing.T) {
	addr, _ := startServer(t, "v1")
	r := newResolver(t, batchSpec(addr))
	_, reg := testenv.Registry(t)
	pub := &capture{}
	e, err := enricher.New("asset", r, pub, reg)
	if err != nil {
		t.Fatal(err)
	}
	var batch []sink.Event
	for i, id := range []string{"a1", "a2", "a3", "nope", "a1"} {
		env := schema.NewEnvelope("//test/assets", schema.OpUpdate, "asset", id)
		batch = append(batch, sink.Event{Envelope: env, Topic: schema.ChangesTopic("asset"), Offset: int64(i)})
	}
	ctx := context.Background()
	if err := e.Handle(ctx, batch); err != nil {
		t.Fatal(err)
	}
	byID := map[string]schema.Envelope{}
	for _, env := range pub.envs {
		byID[env.Subject] = env
	}
	if len(pub.envs) != 4 {
		t.Fatalf("published %d envelopes, want 4 (a1 coalesced)", len(pub.envs))
	}
	if a3, nope := byID["a3"], byID["nope"]; a3.Type != schema.OpDelete || a3.Sequence != 9 || nope.Type != schema.OpDelete {
		t.Errorf("a3 %s seq %d, nope %s; want DELETE seq 9 and DELETE", a3.Type, a3.Sequence, nope.Type)
	}
	a1 := byID["a1"]
	if a1.Type != schema.OpUpdate || a1.Sequence != 7 || !strings.Contains(a1.DataSchema, "studio.test.v1.Asset") {
		t.Fatalf("a1 %s seq %d schema %q, want UPDATE seq 7 of studio.test.v1.Asset", a1.Type, a1.Sequence, a1.DataSchema)
	}
	var got map[string]any
	if err := schema.DecodeData(ctx, reg, a1.Data, &got); err != nil {
		t.Fatal(err)
	}
	if got["name"] != "Pilot" || got["updated_at"] != ts("2027-03-04T05:06:07.123456Z") {
		t.Errorf("a1 as published: name %v, updated_at %v", got["name"], got["updated_at"])
	}
}

// capture is an enricher.Publisher that keeps what it got.
type capture struct {
	mu   sync.Mutex
	envs []schema.Envelope
}

func (c *capture) Publish(_ context.Context, _ string, envs ...schema.Envelope) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.envs = append(c.envs, envs...)
	return nil
}

// TestSpecYAML reads a spec as a pipeline's resolver entry spells it.
func TestSpecYAML(t *testing.T) {
	const doc = `
target: "assets:9090"
method: get
rpc: studio.test.v1.Assets/GetAsset
ids_field: asset_id
records_field: asset
version_field: revision
deleted_field: deleted
descriptor_set: testdata/assets.pb
timeout: 2s
`
	dec := yaml.NewDecoder(strings.NewReader(doc))
	dec.KnownFields(true)
	var got grpcresolver.Spec
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := grpcresolver.Spec{Target: "assets:9090", Method: enricher.MethodGet, RPC: "studio.test.v1.Assets/GetAsset",
		IDsField: "asset_id", RecordsField: "asset", VersionField: "revision", DeletedField: "deleted",
		DescriptorSet: "testdata/assets.pb", Timeout: 2 * time.Second}
	if got != want {
		t.Errorf("spec\n got %+v\nwant %+v", got, want)
	}
}
