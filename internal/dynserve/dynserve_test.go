package dynserve_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	rpbv1 "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/slatehq/slate/internal/dynserve"
)

// The descriptor set of enricher/grpcresolver's tests.
const descriptorSet = "../../enricher/grpcresolver/testdata/assets.pb"

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cc.Close() })
	return cc
}

// A handler answers its method with dynamic messages; the service's other
// methods answer UNIMPLEMENTED; reflection lists the service when on.
func TestServe(t *testing.T) {
	files, err := dynserve.ReadDescriptorSet(descriptorSet)
	if err != nil {
		t.Fatal(err)
	}
	for _, refl := range []dynserve.Reflection{dynserve.NoReflection, dynserve.ReflectionV1} {
		srv, err := dynserve.Start(files, map[string]dynserve.Handler{
			"studio.test.v1.Assets/BatchGetAssets": func(_ context.Context, req *dynamicpb.Message) (proto.Message, error) {
				resp, err := dynserve.NewMessage(files, "studio.test.v1.BatchGetAssetsResponse")
				if err != nil {
					return nil, err
				}
				ids := req.Get(dynserve.Field(req, "ids")).List()
				missing := resp.Mutable(dynserve.Field(resp, "missing_ids")).List()
				for i := range ids.Len() {
					missing.Append(ids.Get(i))
				}
				return resp, nil
			},
		}, dynserve.WithReflection(refl))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(srv.Stop)
		cc := dial(t, srv.Addr())
		req, _ := srv.NewMessage("studio.test.v1.BatchGetAssetsRequest")
		req.Mutable(dynserve.Field(req, "ids")).List().Append(protoreflect.ValueOfString("a1"))
		resp, _ := srv.NewMessage("studio.test.v1.BatchGetAssetsResponse")
		if err := cc.Invoke(t.Context(), "/studio.test.v1.Assets/BatchGetAssets", req, resp); err != nil {
			t.Fatal(err)
		}
		if l := resp.Get(dynserve.Field(resp, "missing_ids")).List(); l.Len() != 1 || l.Get(0).String() != "a1" {
			t.Errorf("missing_ids %v, want [a1]", l)
		}
		getReq, _ := srv.NewMessage("studio.test.v1.GetAssetRequest")
		getResp, _ := srv.NewMessage("studio.test.v1.GetAssetResponse")
		if err := cc.Invoke(t.Context(), "/studio.test.v1.Assets/GetAsset", getReq, getResp); status.Code(err) != codes.Unimplemented {
			t.Errorf("GetAsset without a handler: %v, want UNIMPLEMENTED", err)
		}

		stream, err := rpbv1.NewServerReflectionClient(cc).ServerReflectionInfo(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		// A Send to a stream the server refused fails with io.EOF; Recv
		// returns the status.
		_ = stream.Send(&rpbv1.ServerReflectionRequest{MessageRequest: &rpbv1.ServerReflectionRequest_ListServices{}})
		listed, err := stream.Recv()
		switch {
		case refl == dynserve.NoReflection && status.Code(err) != codes.Unimplemented:
			t.Errorf("reflection off: %v, want UNIMPLEMENTED", err)
		case refl == dynserve.ReflectionV1 && err != nil:
			t.Errorf("reflection on: %v", err)
		case refl == dynserve.ReflectionV1 && !strings.Contains(listed.String(), "studio.test.v1.Assets"):
			t.Errorf("reflection lists %v, want studio.test.v1.Assets", listed)
		}
	}
}

// A handler key that names no unary method of the descriptors fails the
// start, naming it.
func TestStartRejectsUnknownMethod(t *testing.T) {
	files, err := dynserve.ReadDescriptorSet(descriptorSet)
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"studio.test.v1.Assets/ListAll": "service studio.test.v1.Assets has no method ListAll",
		"studio.test.v1.Nope/Get":       "service studio.test.v1.Nope",
		"BatchGetAssets":                "want <package>.<Service>/<Method>",
	} {
		_, err := dynserve.Start(files, map[string]dynserve.Handler{key: nil})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", key, err, want)
		}
	}
	if _, err := dynserve.ReadDescriptorSet("testdata/missing.pb"); err == nil {
		t.Error("a missing descriptor set: no error")
	}
}
