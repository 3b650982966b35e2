package grpcresolver_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/slatehq/slate/internal/dynserve"
)

const descriptorSet = "testdata/assets.pb"

// testFiles loads the test descriptor set.
func testFiles(t testing.TB) *protoregistry.Files {
	t.Helper()
	files, err := dynserve.ReadDescriptorSet(descriptorSet)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// The assets the test server holds, as protojson.
var testAssets = []string{
	`{"id": "a1", "revision": "7", "name": "Pilot", "format": "FORMAT_HD",
	  "updated_at": "2027-03-04T05:06:07.123456789Z",
	  "budget": {"currency": "EUR", "units": "1200"},
	  "tags": ["drama", "pilot"], "counts": {"views": "10", "likes": "3"},
	  "note": "first cut", "url": "https://example.test/a1", "email": "a@example.test",
	  "rating": 0, "payments": [{"currency": "EUR", "units": "100"}, {"currency": "USD", "units": "50"}],
	  "labels": {"1": "one", "-2": "minus two"},
	  "parts": [{"name": "cold open", "seconds": 90}],
	  "thumbnail": "AQID", "score": 8.5, "weight": 0.25, "delta": "-4", "checksum": "18446744073709551",
	  "views": "42", "airings": ["2027-04-01T20:00:00Z", "2027-04-08T20:00:00.5Z"],
	  "chapters": {"c1": {"name": "intro", "seconds": 30}}}`,
	`{"id": "a2", "revision": "2"}`,
	`{"id": "a3", "revision": "9", "deleted": true, "name": "gone"}`,
	`{"id": "a4", "revision": "3", "purchase": {"currency": "GBP", "units": "5"}, "phone": "+44 20",
	  "format": 99}`,
	`{"id": "big", "revision": "18446744073709551615"}`,
}

// assetServer serves studio.test.v1.Assets through internal/dynserve: its
// handlers take and answer dynamic messages of the descriptor set, so no
// generated code is involved.
type assetServer struct {
	files  *protoregistry.Files
	assets map[string]*dynamicpb.Message
	deps   map[string][]string
	fail   atomic.Int32 // a codes.Code every call fails with, 0 for none
	calls  atomic.Int64
	mu     sync.Mutex
	asked  [][]string // ids of each batch call
}

func (s *assetServer) msg(name protoreflect.FullName) *dynamicpb.Message {
	d, err := s.files.FindDescriptorByName(name)
	if err != nil {
		panic(err)
	}
	return dynamicpb.NewMessage(d.(protoreflect.MessageDescriptor))
}

func (s *assetServer) field(m protoreflect.Message, name string) protoreflect.FieldDescriptor {
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
	if fd == nil {
		panic("no field " + name)
	}
	return fd
}

func (s *assetServer) strings(m protoreflect.Message, name string) []string {
	l := m.Get(s.field(m, name)).List()
	out := make([]string, l.Len())
	for i := range out {
		out[i] = l.Get(i).String()
	}
	return out
}

func (s *assetServer) batchGet(req *dynamicpb.Message, recordsName, name protoreflect.FullName) proto.Message {
	ids := s.strings(req, "ids")
	s.mu.Lock()
	s.asked = append(s.asked, ids)
	s.mu.Unlock()
	resp := s.msg(name)
	recs := resp.Mutable(s.field(resp, string(recordsName))).List()
	if recordsName == "assets" {
		missing := resp.Mutable(s.field(resp, "missing_ids")).List()
		for _, id := range ids {
			if a, ok := s.assets[id]; ok {
				recs.Append(protoreflect.ValueOfMessage(a))
			} else {
				missing.Append(protoreflect.ValueOfString(id))
			}
		}
	}
	return resp
}

func (s *assetServer) handlers() map[string]func(ctx context.Context, req *dynamicpb.Message) (proto.Message, error) {
	return map[string]func(ctx context.Context, req *dynamicpb.Message) (proto.Message, error){
		"BatchGetAssets": func(_ context.Context, req *dynamicpb.Message) (proto.Message, error) {
			return s.batchGet(req, "assets", "studio.test.v1.BatchGetAssetsResponse"), nil
		},
		"BatchGetNodes": func(_ context.Context, req *dynamicpb.Message) (proto.Message, error) {
			return s.batchGet(req, "nodes", "studio.test.v1.BatchGetNodesResponse"), nil
		},
		"GetAsset": func(_ context.Context, req *dynamicpb.Message) (proto.Message, error) {
			id := req.Get(s.field(req, "asset_id")).String()
			a, ok := s.assets[id]
			if !ok {
				return nil, status.Errorf(codes.NotFound, "asset %q not found", id)
			}
			resp := s.msg("studio.test.v1.GetAssetResponse")
			resp.Set(s.field(resp, "asset"), protoreflect.ValueOfMessage(a))
			return resp, nil
		},
		"GetAssetDirect": func(_ context.Context, req *dynamicpb.Message) (proto.Message, error) {
			// An unknown id answers an empty asset.
			if a, ok := s.assets[req.Get(s.field(req, "asset_id")).String()]; ok {
				return a, nil
			}
			return s.msg("studio.test.v1.Asset"), nil
		},
		"AssetDependents": func(_ context.Context, req *dynamicpb.Message) (proto.Message, error) {
			resp := s.msg("studio.test.v1.AssetDependentsResponse")
			titles := resp.Mutable(s.field(resp, "titles")).Map()
			for _, id := range s.strings(req, "asset_ids") {
				deps, ok := s.deps[id]
				if !ok {
					continue
				}
				v := s.msg("studio.test.v1.Ids")
				l := v.Mutable(s.field(v, "ids")).List()
				for _, d := range deps {
					l.Append(protoreflect.ValueOfString(d))
				}
				titles.Set(protoreflect.ValueOfString(id).MapKey(), protoreflect.ValueOfMessage(v))
			}
			return resp, nil
		},
		"AssetEdges": func(_ context.Context, req *dynamicpb.Message) (proto.Message, error) {
			resp := s.msg("studio.test.v1.AssetEdgesResponse")
			edges := resp.Mutable(s.field(resp, "edges")).List()
			for _, id := range s.strings(req, "asset_ids") {
				// One edge per dependent: the resolver adds them up.
				for _, d := range s.deps[id] {
					e := s.msg("studio.test.v1.Edge")
					e.Set(s.field(e, "asset_id"), protoreflect.ValueOfString(id))
					e.Mutable(s.field(e, "title_ids")).List().Append(protoreflect.ValueOfString(d))
					edges.Append(protoreflect.ValueOfMessage(e))
				}
			}
			return resp, nil
		},
	}
}

// startServer serves the assets on a loopback port with server
// reflection of api ("v1", "v1alpha" or "" for none) and returns its
// address.
func startServer(t testing.TB, api string) (string, *assetServer) {
	t.Helper()
	s := &assetServer{files: testFiles(t), assets: map[string]*dynamicpb.Message{},
		deps: map[string][]string{"a1": {"t1", "t2"}, "a2": {"t3"}}}
	for _, js := range testAssets {
		a := s.msg("studio.test.v1.Asset")
		if err := protojson.Unmarshal([]byte(js), a); err != nil {
			t.Fatalf("test asset %s: %v", js, err)
		}
		s.assets[a.Get(s.field(a, "id")).String()] = a
	}
	handlers := map[string]dynserve.Handler{}
	for name, h := range s.handlers() {
		handlers["studio.test.v1.Assets/"+name] = func(ctx context.Context, req *dynamicpb.Message) (proto.Message, error) {
			s.calls.Add(1)
			if c := codes.Code(s.fail.Load()); c != codes.OK {
				return nil, status.Errorf(c, "injected %s", c)
			}
			return h(ctx, req)
		}
	}
	refl := map[string]dynserve.Reflection{"": dynserve.NoReflection, "v1": dynserve.ReflectionV1, "v1alpha": dynserve.ReflectionV1Alpha}[api]
	srv, err := dynserve.Start(s.files, handlers, dynserve.WithReflection(refl))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Stop)
	return srv.Addr(), s
}
