// Package dynserve serves gRPC services slate has no generated Go code for,
// for tests and demos: every method is built from the descriptors of a
// protoc descriptor set and answered by a handler function over dynamic
// messages (dynamicpb), with server reflection on or off. It is not meant
// for production services.
//
//	files, _ := dynserve.ReadDescriptorSet("testdata/assets.pb")
//	srv, _ := dynserve.Start(files, map[string]dynserve.Handler{
//		"studio.test.v1.Assets/BatchGetAssets": batchGet,
//	}, dynserve.WithReflection(dynserve.ReflectionV1))
//	defer srv.Stop()
//	// srv.Addr() is a loopback host:port.
package dynserve

import (
	"context"
	"fmt"
	"maps"
	"net"
	"os"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/reflection"
	rpbv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	rpbv1alpha "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"
)

// Handler answers one unary call. req is a dynamic message of the
// method's input type; the answer must be a message of its output type
// (a *dynamicpb.Message of the same descriptors, typically). A returned
// error should be a gRPC status error.
type Handler func(ctx context.Context, req *dynamicpb.Message) (proto.Message, error)

// Reflection is the server reflection API a [Server] offers.
type Reflection int

// Reflection APIs.
const (
	// NoReflection offers none: clients need the descriptor set.
	NoReflection Reflection = iota
	// ReflectionV1 offers grpc.reflection.v1.
	ReflectionV1
	// ReflectionV1Alpha offers only the older grpc.reflection.v1alpha.
	ReflectionV1Alpha
)

// Option configures [Start].
type Option func(*options)

type options struct {
	reflection Reflection
	addr       string
}

// WithReflection sets the reflection API served (default [NoReflection]).
func WithReflection(r Reflection) Option { return func(o *options) { o.reflection = r } }

// WithAddr sets the listen address (default 127.0.0.1:0, a free loopback
// port).
func WithAddr(addr string) Option { return func(o *options) { o.addr = addr } }

// Server is a running gRPC server of dynamic services.
type Server struct {
	files *protoregistry.Files
	gs    *grpc.Server
	lis   net.Listener
}

// ReadDescriptorSet reads a file descriptor set as protoc writes it
// (--descriptor_set_out=FILE --include_imports).
func ReadDescriptorSet(path string) (*protoregistry.Files, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dynserve: %w", err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		return nil, fmt.Errorf("dynserve: %s: %w", path, err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, fmt.Errorf("dynserve: %s: %w", path, err)
	}
	return files, nil
}

// Start serves, from files, every service that handlers name a method of,
// and returns once it listens. handlers are keyed by full method name,
// <package>.<Service>/<Method>. The other methods of those services,
// streaming ones included, answer UNIMPLEMENTED. A key that names no unary
// method of files is an error.
func Start(files *protoregistry.Files, handlers map[string]Handler, opts ...Option) (*Server, error) {
	o := options{addr: "127.0.0.1:0"}
	for _, opt := range opts {
		opt(&o)
	}
	services := map[protoreflect.FullName]protoreflect.ServiceDescriptor{}
	for _, name := range slices.Sorted(maps.Keys(handlers)) {
		svc, method, ok := strings.Cut(strings.TrimPrefix(name, "/"), "/")
		if !ok {
			return nil, fmt.Errorf("dynserve: handler %q: want <package>.<Service>/<Method>", name)
		}
		d, err := files.FindDescriptorByName(protoreflect.FullName(svc))
		if err != nil {
			return nil, fmt.Errorf("dynserve: handler %q: service %s: %w", name, svc, err)
		}
		sd, ok := d.(protoreflect.ServiceDescriptor)
		if !ok {
			return nil, fmt.Errorf("dynserve: handler %q: %s is not a service", name, svc)
		}
		md := sd.Methods().ByName(protoreflect.Name(method))
		switch {
		case md == nil:
			return nil, fmt.Errorf("dynserve: handler %q: service %s has no method %s", name, svc, method)
		case md.IsStreamingClient() || md.IsStreamingServer():
			return nil, fmt.Errorf("dynserve: handler %q: %s is a streaming method", name, method)
		}
		services[sd.FullName()] = sd
	}
	gs := grpc.NewServer()
	for _, name := range slices.Sorted(maps.Keys(services)) {
		gs.RegisterService(serviceDesc(services[name], handlers), nil)
	}
	ropts := reflection.ServerOptions{Services: gs, DescriptorResolver: files}
	switch o.reflection {
	case ReflectionV1:
		rpbv1.RegisterServerReflectionServer(gs, reflection.NewServerV1(ropts))
	case ReflectionV1Alpha:
		rpbv1alpha.RegisterServerReflectionServer(gs, reflection.NewServer(ropts))
	}
	lis, err := net.Listen("tcp", o.addr)
	if err != nil {
		return nil, fmt.Errorf("dynserve: %w", err)
	}
	go func() { _ = gs.Serve(lis) }()
	return &Server{files: files, gs: gs, lis: lis}, nil
}

// serviceDesc is the grpc.ServiceDesc of sd, its unary methods answered by
// handlers.
func serviceDesc(sd protoreflect.ServiceDescriptor, handlers map[string]Handler) *grpc.ServiceDesc {
	desc := &grpc.ServiceDesc{ServiceName: string(sd.FullName()), HandlerType: (*any)(nil),
		Metadata: sd.ParentFile().Path()}
	for i := range sd.Methods().Len() {
		md := sd.Methods().Get(i)
		if md.IsStreamingServer() || md.IsStreamingClient() {
			desc.Streams = append(desc.Streams, grpc.StreamDesc{StreamName: string(md.Name()),
				ServerStreams: md.IsStreamingServer(), ClientStreams: md.IsStreamingClient(),
				Handler: func(any, grpc.ServerStream) error {
					return status.Errorf(codes.Unimplemented, "%s is not served", md.FullName())
				}})
			continue
		}
		h := handlers[string(sd.FullName())+"/"+string(md.Name())]
		desc.Methods = append(desc.Methods, grpc.MethodDesc{
			MethodName: string(md.Name()),
			Handler: func(_ any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
				req := dynamicpb.NewMessage(md.Input())
				if err := dec(req); err != nil {
					return nil, err
				}
				if h == nil {
					return nil, status.Errorf(codes.Unimplemented, "%s is not served", md.FullName())
				}
				return h(ctx, req)
			},
		})
	}
	return desc
}

// Addr returns the host:port the server listens on.
func (s *Server) Addr() string { return s.lis.Addr().String() }

// Files returns the descriptors the server was started with.
func (s *Server) Files() *protoregistry.Files { return s.files }

// NewMessage returns an empty dynamic message of the message type name of
// the server's descriptors.
func (s *Server) NewMessage(name protoreflect.FullName) (*dynamicpb.Message, error) {
	return NewMessage(s.files, name)
}

// Stop stops the server at once, closing its connections.
func (s *Server) Stop() { s.gs.Stop() }

// NewMessage returns an empty dynamic message of the message type name of
// files.
func NewMessage(files *protoregistry.Files, name protoreflect.FullName) (*dynamicpb.Message, error) {
	d, err := files.FindDescriptorByName(name)
	if err != nil {
		return nil, fmt.Errorf("dynserve: message %s: %w", name, err)
	}
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		return nil, fmt.Errorf("dynserve: %s is not a message", name)
	}
	return dynamicpb.NewMessage(md), nil
}

// Field returns the field name of m's message, or panics: for handlers,
// whose field names are fixed by the descriptor set they serve.
func Field(m protoreflect.Message, name string) protoreflect.FieldDescriptor {
	fd := m.Descriptor().Fields().ByName(protoreflect.Name(name))
	if fd == nil {
		panic(fmt.Sprintf("dynserve: message %s has no field %s", m.Descriptor().FullName(), name))
	}
	return fd
}
