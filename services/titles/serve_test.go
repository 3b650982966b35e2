package titles_test

import (
	"context"
	"net"
	"slices"
	"testing"
	"time"

	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
	"github.com/slatehq/slate/services/titles"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"
)

func TestServeHealthAndReflection(t *testing.T) {
	ctx := ctxT(t)
	conn, _ := serveConn(t, &recorder{})

	hc := healthpb.NewHealthClient(conn)
	for _, svc := range []string{"", "slate.titles.v1.Titles"} {
		resp, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: svc})
		if err != nil {
			t.Fatalf("health check %q: %v", svc, err)
		}
		if resp.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Errorf("health %q = %v, want SERVING", svc, resp.GetStatus())
		}
	}

	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var services []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		services = append(services, s.GetName())
	}
	for _, want := range []string{"slate.titles.v1.Titles", "grpc.health.v1.Health"} {
		if !slices.Contains(services, want) {
			t.Errorf("reflection lists %v, missing %s", services, want)
		}
	}
	stream.CloseSend()
}

// TestServeShutdown ends Serve's context while a health Watch stream is
// open: Serve must report NOT_SERVING, close the stream after the grace
// period, return nil and close the listener.
func TestServeShutdown(t *testing.T) {
	ctx := ctxT(t)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serveCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	const grace = 300 * time.Millisecond
	go func() {
		done <- titles.Serve(serveCtx, lis, titles.NewServer(&recorder{}), titles.WithGracePeriod(grace))
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	watch, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{Service: "slate.titles.v1.Titles"})
	if err != nil {
		t.Fatal(err)
	}
	if m, err := watch.Recv(); err != nil || m.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first watch update: %v, %v", m, err)
	}

	start := time.Now()
	stop()
	if m, err := watch.Recv(); err != nil || m.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("watch update on shutdown: %v, %v; want NOT_SERVING", m, err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve = %v, want nil", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after the grace period")
	}
	if d := time.Since(start); d < grace {
		t.Errorf("Serve returned after %v, before the %v grace period with a call in flight", d, grace)
	}
	if _, err := watch.Recv(); err == nil {
		t.Error("watch stream still open after Serve returned")
	}
	if c, err := net.DialTimeout("tcp", lis.Addr().String(), time.Second); err == nil {
		c.Close()
		t.Error("listener still accepts after Serve returned")
	}
	_, err = titlesv1.NewTitlesClient(conn).GetTitle(ctx, &titlesv1.GetTitleRequest{Id: "x"})
	if err == nil {
		t.Error("call succeeded after Serve returned")
	}
}

func TestServeListenerFailure(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lis.Close()
	if err := titles.Serve(ctxT(t), lis, titles.NewServer(&recorder{})); err == nil {
		t.Fatal("Serve on a closed listener returned nil")
	}
	if err := titles.Serve(ctxT(t), nil, titles.NewServer(&recorder{})); err == nil {
		t.Fatal("Serve with nil listener returned nil")
	}
}
