package titles_test

import (
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
)

// rawCodec sends and receives messages as the bytes they are, so a test
// can send what a well-behaved client never would.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

// A request that does not unmarshal is the client's fault: the server
// answers InvalidArgument naming the method, not Internal, and keeps
// serving well-formed requests on the same connection.
func TestMalformedRequestIsInvalidArgument(t *testing.T) {
	ctx := ctxT(t)
	conn, _ := serveConn(t, &recorder{})
	valid, err := proto.Marshal(&titlesv1.CreateTitleRequest{Title: feature("Well formed")})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, method string
		req          []byte
	}{
		// Field 1 (id), length 2, bytes that are not UTF-8.
		{"invalid UTF-8 id", "GetTitle", []byte{0x0a, 0x02, 0xff, 0xfe}},
		{"invalid UTF-8 in a batch id", "BatchGetTitles", []byte{0x0a, 0x01, 'a', 0x0a, 0x01, 0x80}},
		// Field 1 (title), whose field 2 (name) is invalid UTF-8.
		{"invalid UTF-8 title name", "CreateTitle", []byte{0x0a, 0x04, 0x12, 0x02, 0xc3, 0x28}},
		{"truncated", "CreateTitle", valid[:len(valid)-3]},
		{"length past the end", "DeleteTitle", []byte{0x0a, 0x7f, 'x'}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var resp []byte
			req := tt.req
			err := conn.Invoke(ctx, "/slate.titles.v1.Titles/"+tt.method, &req, &resp, grpc.ForceCodecV2(rawCodec{}))
			if status.Code(err) != codes.InvalidArgument {
				t.Fatalf("%s: code %v (%v), want InvalidArgument", tt.method, status.Code(err), err)
			}
			if msg := status.Convert(err).Message(); !strings.Contains(msg, tt.method) || !strings.Contains(msg, "malformed request") {
				t.Fatalf("%s: message %q does not name the method and the fault", tt.method, msg)
			}
		})
	}
	var resp []byte
	if err := conn.Invoke(ctx, "/slate.titles.v1.Titles/CreateTitle", &valid, &resp, grpc.ForceCodecV2(rawCodec{})); err != nil {
		t.Fatalf("well-formed raw request after malformed ones: %v", err)
	}
	var created titlesv1.CreateTitleResponse
	if err := proto.Unmarshal(resp, &created); err != nil || created.GetTitle().GetName() != "Well formed" {
		t.Fatalf("response %v (%v), want the created title", &created, err)
	}
	// The health service decodes strictly too.
	if err := conn.Invoke(ctx, "/grpc.health.v1.Health/Check", &[]byte{0x0a, 0x01, 0xff}, &resp, grpc.ForceCodecV2(rawCodec{})); status.Code(err) != codes.InvalidArgument {
		t.Fatalf("health Check with invalid UTF-8: code %v (%v), want InvalidArgument", status.Code(err), err)
	}
}
