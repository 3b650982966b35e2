package grpcresolver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	rpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	// The well-known types, linked in so that a descriptor set or a
	// reflection answer lacking their files still resolves (buildFiles).
	_ "google.golang.org/protobuf/types/known/anypb"
	_ "google.golang.org/protobuf/types/known/durationpb"
	_ "google.golang.org/protobuf/types/known/emptypb"
	_ "google.golang.org/protobuf/types/known/fieldmaskpb"
	_ "google.golang.org/protobuf/types/known/structpb"
	_ "google.golang.org/protobuf/types/known/timestamppb"
	_ "google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/slatehq/slate/enricher"
)

// The server reflection APIs, newest first. Both have the same messages
// on the wire, so the v1 types serve for v1alpha too.
var reflectionAPIs = []struct{ name, method string }{
	{"grpc.reflection.v1", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"},
	{"grpc.reflection.v1alpha", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"},
}

// unreachable is the error of a target that could not be reached; it is
// temporary, since the target may come up.
func unreachable(target string, err error) error {
	return enricher.Temporary(fmt.Errorf("grpcresolver: target %q: unreachable: %w", target, err))
}

// loadDescriptorSet reads a file descriptor set.
func loadDescriptorSet(path string) (*protoregistry.Files, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, specError("descriptor_set", "%v", err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(b, &set); err != nil {
		return nil, specError("descriptor_set", "%s is not a file descriptor set (protoc --descriptor_set_out): %v", path, err)
	}
	got := make(map[string]*descriptorpb.FileDescriptorProto, len(set.GetFile()))
	for _, f := range set.GetFile() {
		got[f.GetName()] = f
	}
	files, err := buildFiles(got)
	if err != nil {
		return nil, specError("descriptor_set", "%s: %v", path, err)
	}
	return files, nil
}

// reflectDescriptors asks the target's server reflection for the file declaring
// service and every file it imports. It returns the API that answered.
func reflectDescriptors(ctx context.Context, conn *grpc.ClientConn, target, service string) (*protoregistry.Files, string, error) {
	for _, api := range reflectionAPIs {
		got, err := reflectFiles(ctx, conn, api.method, service)
		var rerr *reflectionError
		switch {
		case errors.As(err, &rerr) && rerr.code == codes.NotFound:
			return nil, api.name, specError("rpc", "the target's server reflection (%s) knows no service %s", api.name, service)
		case errors.As(err, &rerr):
			return nil, api.name, fmt.Errorf("grpcresolver: target %q: server reflection (%s): %w", target, api.name, rerr)
		case status.Code(err) == codes.Unimplemented:
			continue
		case status.Code(err) == codes.Unavailable, status.Code(err) == codes.DeadlineExceeded:
			return nil, api.name, unreachable(target, err)
		case err != nil:
			return nil, api.name, fmt.Errorf("grpcresolver: target %q: server reflection (%s): %w", target, api.name, err)
		}
		files, err := buildFiles(got)
		if err != nil {
			return nil, api.name, fmt.Errorf("grpcresolver: target %q: server reflection (%s): %w", target, api.name, err)
		}
		return files, api.name, nil
	}
	return nil, "", fmt.Errorf("%w: target %q: %w", ErrSpec, target, errNoReflection)
}

// reflectionError is an error the reflection service answered with (as
// opposed to a failed stream).
type reflectionError struct {
	code codes.Code
	msg  string
}

func (e *reflectionError) Error() string { return fmt.Sprintf("%s: %s", e.code, e.msg) }

// reflectFiles runs one reflection stream: the file containing service,
// then every import the server did not send along.
func reflectFiles(ctx context.Context, conn *grpc.ClientConn, method, service string) (map[string]*descriptorpb.FileDescriptorProto, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := conn.NewStream(ctx, &grpc.StreamDesc{StreamName: "ServerReflectionInfo", ServerStreams: true, ClientStreams: true}, method)
	if err != nil {
		return nil, err
	}
	ask := func(req *rpb.ServerReflectionRequest) ([][]byte, error) {
		if err := st.SendMsg(req); err != nil {
			if errors.Is(err, io.EOF) {
				// The stream failed; its status comes with the receive.
				var resp rpb.ServerReflectionResponse
				if rerr := st.RecvMsg(&resp); rerr != nil {
					return nil, rerr
				}
			}
			return nil, err
		}
		var resp rpb.ServerReflectionResponse
		if err := st.RecvMsg(&resp); err != nil {
			return nil, err
		}
		switch m := resp.GetMessageResponse().(type) {
		case *rpb.ServerReflectionResponse_FileDescriptorResponse:
			return m.FileDescriptorResponse.GetFileDescriptorProto(), nil
		case *rpb.ServerReflectionResponse_ErrorResponse:
			return nil, &reflectionError{code: codes.Code(m.ErrorResponse.GetErrorCode()), msg: m.ErrorResponse.GetErrorMessage()}
		}
		return nil, fmt.Errorf("unexpected reflection answer %T", resp.GetMessageResponse())
	}
	got := map[string]*descriptorpb.FileDescriptorProto{}
	add := func(raw [][]byte) error {
		for _, b := range raw {
			fd := new(descriptorpb.FileDescriptorProto)
			if err := proto.Unmarshal(b, fd); err != nil {
				return fmt.Errorf("reflection sent a bad file descriptor: %w", err)
			}
			got[fd.GetName()] = fd
		}
		return nil
	}
	raw, err := ask(&rpb.ServerReflectionRequest{
		MessageRequest: &rpb.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: service},
	})
	if err != nil {
		return nil, err
	}
	if err := add(raw); err != nil {
		return nil, err
	}
	asked := map[string]bool{}
	for {
		var missing []string
		for _, fd := range got {
			for _, dep := range fd.GetDependency() {
				if got[dep] == nil && !asked[dep] {
					missing = append(missing, dep)
				}
			}
		}
		if len(missing) == 0 {
			break
		}
		slices.Sort(missing)
		for _, name := range slices.Compact(missing) {
			asked[name] = true
			raw, err := ask(&rpb.ServerReflectionRequest{
				MessageRequest: &rpb.ServerReflectionRequest_FileByFilename{FileByFilename: name},
			})
			var rerr *reflectionError
			if errors.As(err, &rerr) && rerr.code == codes.NotFound {
				// buildFiles falls back to the linked-in copy, if any.
				continue
			}
			if err != nil {
				return nil, err
			}
			if err := add(raw); err != nil {
				return nil, err
			}
		}
	}
	_ = st.CloseSend()
	return got, nil
}

// buildFiles links file descriptors, imports first. An import missing
// from got is taken from the files linked into this binary (the
// well-known types), or fails.
func buildFiles(got map[string]*descriptorpb.FileDescriptorProto) (*protoregistry.Files, error) {
	files := new(protoregistry.Files)
	const visiting, done = 1, 2
	state := map[string]int{}
	var visit func(name string, from string) error
	visit = func(name, from string) error {
		switch state[name] {
		case done:
			return nil
		case visiting:
			return fmt.Errorf("import cycle through %s", name)
		}
		fdp, ok := got[name]
		if !ok {
			fd, err := protoregistry.GlobalFiles.FindFileByPath(name)
			if err != nil {
				return fmt.Errorf("%s imports %s, which is missing (build a descriptor set with --include_imports)", from, name)
			}
			state[name] = done
			return files.RegisterFile(fd)
		}
		state[name] = visiting
		for _, dep := range fdp.GetDependency() {
			if err := visit(dep, name); err != nil {
				return err
			}
		}
		fd, err := protodesc.NewFile(fdp, files)
		if err != nil {
			return fmt.Errorf("file %s: %w", name, err)
		}
		state[name] = done
		return files.RegisterFile(fd)
	}
	names := make([]string, 0, len(got))
	for name := range got {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := visit(name, name); err != nil {
			return nil, err
		}
	}
	return files, nil
}

// findMethod looks the method up and checks it is unary.
func findMethod(files *protoregistry.Files, source, service, method string) (protoreflect.MethodDescriptor, error) {
	d, err := files.FindDescriptorByName(protoreflect.FullName(service))
	if err != nil {
		return nil, specError("rpc", "%s knows no service %s", source, service)
	}
	sd, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return nil, specError("rpc", "%s is not a service in %s", service, source)
	}
	md := sd.Methods().ByName(protoreflect.Name(method))
	if md == nil {
		have := make([]string, 0, sd.Methods().Len())
		for i := range sd.Methods().Len() {
			have = append(have, string(sd.Methods().Get(i).Name()))
		}
		return nil, specError("rpc", "service %s has no method %s (it has %s)", service, method, strings.Join(have, ", "))
	}
	if md.IsStreamingClient() || md.IsStreamingServer() {
		return nil, specError("rpc", "%s/%s is a streaming method; need a unary one", service, method)
	}
	return md, nil
}

// checkReachable makes one call to see that the target answers: a health
// check, which fails at once with UNAVAILABLE (and the connection's error)
// when the target cannot be reached. Any answer of the server, an error
// included, means it is reachable.
func checkReachable(ctx context.Context, conn *grpc.ClientConn, target string) error {
	err := conn.Invoke(ctx, healthpb.Health_Check_FullMethodName, &healthpb.HealthCheckRequest{}, &healthpb.HealthCheckResponse{})
	switch status.Code(err) {
	case codes.Unavailable, codes.DeadlineExceeded:
		return unreachable(target, err)
	}
	return nil
}
