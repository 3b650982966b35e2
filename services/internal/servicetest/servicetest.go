// Package servicetest holds the test helpers of the studio's owner
// services: a recording [Recorder] publisher, a server run on a loopback
// port for the test's lifetime, and checks of gRPC status errors.
package servicetest

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/slatehq/slate/schema"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
)

// Change is one PublishChange call.
type Change struct {
	EntityType string
	ID         string
	Op         schema.Op
	Seq        int64
}

// Recorder is a publisher that records every call and fails while an
// error is set with FailWith.
type Recorder struct {
	mu      sync.Mutex
	changes []Change
	err     error
}

// PublishChange records the change, or returns the error set by FailWith.
func (r *Recorder) PublishChange(ctx context.Context, entityType, id string, op schema.Op, seq int64) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.changes = append(r.changes, Change{entityType, id, op, seq})
	return nil
}

// FailWith makes every later PublishChange return err (nil: succeed).
func (r *Recorder) FailWith(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.err = err
}

// Take returns the recorded changes and forgets them.
func (r *Recorder) Take() []Change {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.changes
	r.changes = nil
	return c
}

// WantChanges fails t unless r recorded exactly want since the last Take,
// and forgets them.
func (r *Recorder) WantChanges(t *testing.T, want ...Change) {
	t.Helper()
	got := r.Take()
	if len(got) != len(want) {
		t.Fatalf("published %+v, want %+v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("published %+v, want %+v", got, want)
		}
	}
}

// Run runs serve on a listener on 127.0.0.1:0 until the end of the test,
// checks that it then returns nil, and returns the listener's address.
func Run(t *testing.T, serve func(ctx context.Context, lis net.Listener) error) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- serve(ctx, lis) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve returned %v", err)
		}
	})
	return lis.Addr().String()
}

// Serve is [Run] with a plaintext client connection to the server.
func Serve(t *testing.T, serve func(ctx context.Context, lis net.Listener) error) *grpc.ClientConn {
	t.Helper()
	return Dial(t, Run(t, serve), insecure.NewCredentials())
}

// Ctx returns a context that ends after 10 seconds or with the test.
func Ctx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// WantCode fails t unless err is a status error with code want.
func WantCode(t *testing.T, err error, want codes.Code) {
	t.Helper()
	if got := status.Code(err); got != want {
		t.Fatalf("code = %v (err %v), want %v", got, err, want)
	}
}

// WantField fails t unless err is INVALID_ARGUMENT with a BadRequest
// detail naming field.
func WantField(t *testing.T, err error, field string) {
	t.Helper()
	WantCode(t, err, codes.InvalidArgument)
	for _, d := range status.Convert(err).Details() {
		if br, ok := d.(*errdetails.BadRequest); ok {
			for _, v := range br.GetFieldViolations() {
				if v.GetField() == field {
					return
				}
			}
		}
	}
	t.Fatalf("error %v does not name field %s", err, field)
}

// rawCodec sends and receives messages as the bytes they are, so a test
// can send a request that does not unmarshal.
type rawCodec struct{}

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(*v.(*[]byte))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	*v.(*[]byte) = data.Materialize()
	return nil
}

func (rawCodec) Name() string { return "proto" }

// InvokeRaw calls method on conn with req as the request's bytes, as they
// are, and returns the call's error.
func InvokeRaw(ctx context.Context, conn *grpc.ClientConn, method string, req []byte) error {
	var resp []byte
	return conn.Invoke(ctx, method, &req, &resp, grpc.ForceCodecV2(rawCodec{}))
}

// Dial returns a client connection to addr with creds, closed at the end
// of the test.
func Dial(t *testing.T, addr string, creds credentials.TransportCredentials) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}
