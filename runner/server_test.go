package runner_test

import (
	"context"
	"sync"
	"testing"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/slatehq/slate/internal/dynserve"
)

// descriptorSet holds studio.test.v1.Assets, a service slate has no
// generated code for (see testdata/README.md).
const descriptorSet = "testdata/assets.pb"

// assetServer serves BatchGetAssets of studio.test.v1.Assets through
// internal/dynserve, with dynamic messages; the other methods answer
// UNIMPLEMENTED.
type assetServer struct {
	srv    *dynserve.Server
	mu     sync.Mutex
	assets map[string]*dynamicpb.Message
}

func (s *assetServer) msg(t testing.TB, name protoreflect.FullName) *dynamicpb.Message {
	m, err := s.srv.NewMessage(name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// put stores an asset given as protojson.
func (s *assetServer) put(t testing.TB, js string) {
	t.Helper()
	a := s.msg(t, "studio.test.v1.Asset")
	if err := protojson.Unmarshal([]byte(js), a); err != nil {
		t.Fatalf("asset %s: %v", js, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.assets[a.Get(dynserve.Field(a, "id")).String()] = a
}

func (s *assetServer) batchGet(_ context.Context, req *dynamicpb.Message) (proto.Message, error) {
	ids := req.Get(dynserve.Field(req, "ids")).List()
	resp, err := s.srv.NewMessage("studio.test.v1.BatchGetAssetsResponse")
	if err != nil {
		return nil, err
	}
	recs := resp.Mutable(dynserve.Field(resp, "assets")).List()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range ids.Len() {
		if a, ok := s.assets[ids.Get(i).String()]; ok {
			recs.Append(protoreflect.ValueOfMessage(a))
		}
	}
	return resp, nil
}

// startServer serves the assets on a loopback port, with server
// reflection (grpc.reflection.v1) when reflect is true, and returns its
// address.
func startServer(t testing.TB, reflect bool) (string, *assetServer) {
	t.Helper()
	files, err := dynserve.ReadDescriptorSet(descriptorSet)
	if err != nil {
		t.Fatal(err)
	}
	s := &assetServer{assets: map[string]*dynamicpb.Message{}}
	refl := dynserve.NoReflection
	if reflect {
		refl = dynserve.ReflectionV1
	}
	s.srv, err = dynserve.Start(files, map[string]dynserve.Handler{"studio.test.v1.Assets/BatchGetAssets": s.batchGet},
		dynserve.WithReflection(refl))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.srv.Stop)
	return s.srv.Addr(), s
}
