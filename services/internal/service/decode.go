package service

import (
	"context"
	"fmt"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// grpc-go answers Internal when a request does not unmarshal (invalid
// UTF-8 in a string field, a truncated varint, ...), whatever the codec
// returns: the fault is the client's, so [Serve] decodes requests itself
// and answers InvalidArgument. The server's codec hands a method the raw
// bytes of its request (rawRequest), and the method's decoder, installed
// by strictDecoding, unmarshals them.

// rawRequest receives a request's bytes undecoded from requestCodec.
type rawRequest struct{ b []byte }

// requestCodec is the proto codec, except that it leaves a rawRequest's
// bytes undecoded.
type requestCodec struct{ proto encoding.CodecV2 }

func newRequestCodec() requestCodec { return requestCodec{proto: encoding.GetCodecV2("proto")} }

// Marshal implements encoding.CodecV2.
func (c requestCodec) Marshal(v any) (mem.BufferSlice, error) { return c.proto.Marshal(v) }

// Unmarshal implements encoding.CodecV2.
func (c requestCodec) Unmarshal(data mem.BufferSlice, v any) error {
	if r, ok := v.(*rawRequest); ok {
		r.b = data.Materialize()
		return nil
	}
	return c.proto.Unmarshal(data, v)
}

// Name implements encoding.CodecV2; the codec replaces the proto one.
func (requestCodec) Name() string { return "proto" }

// strictDecoding returns a copy of sd whose unary methods decode their
// requests themselves, so that a request that does not unmarshal is
// InvalidArgument, naming the method and what was wrong. The server must
// use requestCodec.
func strictDecoding(sd *grpc.ServiceDesc) *grpc.ServiceDesc {
	out := *sd
	out.Methods = make([]grpc.MethodDesc, len(sd.Methods))
	for i, m := range sd.Methods {
		handler, method := m.Handler, "/"+sd.ServiceName+"/"+m.MethodName
		m.Handler = func(srv any, ctx context.Context, dec func(any) error, in grpc.UnaryServerInterceptor) (any, error) {
			return handler(srv, ctx, func(v any) error { return decodeRequest(method, dec, v) }, in)
		}
		out.Methods[i] = m
	}
	return &out
}

// decodeRequest reads the request's bytes with dec and unmarshals them
// into v.
func decodeRequest(method string, dec func(any) error, v any) error {
	msg, ok := v.(proto.Message)
	if !ok {
		return dec(v)
	}
	var raw rawRequest
	if err := dec(&raw); err != nil {
		return err
	}
	if err := proto.Unmarshal(raw.b, msg); err != nil {
		return status.Error(codes.InvalidArgument, fmt.Sprintf("%s: malformed request: %v", method, err))
	}
	return nil
}
