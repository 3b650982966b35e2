package runner_test

import (
	"context"
	"net"
	"os"
	"sync"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/reflection"
	rpbv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// descriptorSet holds studio.test.v1.Assets, a service slate has no
// generated code for (see testdata/README.md).
const descriptorSet = "testdata/assets.pb"

func testFiles(t testing.TB) *protoregistry.Files {
	t.Helper()
	b, err := os.ReadFile(descriptorSet)
	if err != nil {
		t.Fatal(err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		t.Fatal(err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// assetServer serves BatchGetAssets of studio.test.v1.Assets from a
// grpc.ServiceDesc built from the descriptors, with dynamic messages; the
// other methods answer UNIMPLEMENTED.
type assetServer struct {
	files  *protoregistry.Files
	mu     sync.Mutex
	assets map[string]*dynamicpb.Message
}

func (s *assetServer) msg(name protoreflect.FullName) *dynamicpb.Message {
	d, err := s.files.FindDescriptorByName(name)
	if err != nil {
		panic(err)
	}
	return dynamicpb.NewMessage(d.(protoreflect.MessageDescriptor))
}

func field(m protoreflect.Message, name string) protoreflect.FieldDescriptor {
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
	if fd == nil {
		panic("no field " + name)
	}
	return fd
}

// put stores an asset given as protojson.
func (s *assetServer) put(t testing.TB, js string) {
	t.Helper()
	a := s.msg("studio.test.v1.Asset")
	if err := protojson.Unmarshal([]byte(js), a); err != nil {
		t.Fatalf("asset %s: %v", js, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.assets[a.Get(field(a, "id")).String()] = a
}

func (s *assetServer) batchGet(req *dynamicpb.Message) proto.Message {
	ids := req.Get(field(req, "ids")).List()
	resp := s.msg("studio.test.v1.BatchGetAssetsResponse")
	recs := resp.Mutable(field(resp, "assets")).List()
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := range ids.Len() {
		if a, ok := s.assets[ids.Get(i).String()]; ok {
			recs.Append(protoreflect.ValueOfMessage(a))
		}
	}
	return resp
}

func (s *assetServer) serviceDesc() *grpc.ServiceDesc {
	d, err := s.files.FindDescriptorByName("studio.test.v1.Assets")
	if err != nil {
		panic(err)
	}
	sd := d.(protoreflect.ServiceDescriptor)
	desc := &grpc.ServiceDesc{ServiceName: string(sd.FullName()), HandlerType: (*any)(nil), Metadata: "assets.proto"}
	for i := range sd.Methods().Len() {
		md := sd.Methods().Get(i)
		if md.IsStreamingServer() || md.IsStreamingClient() {
			desc.Streams = append(desc.Streams, grpc.StreamDesc{StreamName: string(md.Name()), ServerStreams: md.IsStreamingServer(),
				ClientStreams: md.IsStreamingClient(),
				Handler:       func(any, grpc.ServerStream) error { return status.Error(codes.Unimplemented, "not in the test") }})
			continue
		}
		desc.Methods = append(desc.Methods, grpc.MethodDesc{
			MethodName: string(md.Name()),
			Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				req := dynamicpb.NewMessage(md.Input())
				if err := dec(req); err != nil {
					return nil, err
				}
				if md.Name() != "BatchGetAssets" {
					return nil, status.Errorf(codes.Unimplemented, "%s is not in the test", md.Name())
				}
				return s.batchGet(req), nil
			},
		})
	}
	return desc
}

// startServer serves the assets on a loopback port, with server
// reflection (grpc.reflection.v1) when reflect is true, and returns its
// address.
func startServer(t testing.TB, reflect bool) (string, *assetServer) {
	t.Helper()
	s := &assetServer{files: testFiles(t), assets: map[string]*dynamicpb.Message{}}
	gs := grpc.NewServer()
	gs.RegisterService(s.serviceDesc(), nil)
	if reflect {
		rpbv1.RegisterServerReflectionServer(gs, reflection.NewServerV1(reflection.ServerOptions{Services: gs, DescriptorResolver: s.files}))
	}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = gs.Serve(lis) }()
	t.Cleanup(gs.Stop)
	return lis.Addr().String(), s
}
