package titles

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
	"google.golang.org/grpc"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

// Limits [Serve] sets on the gRPC server before the options of
// [WithServerOptions], which may override them.
const (
	// DefaultMaxRecvMsgSize is the largest request, in bytes, the server
	// reads: a BatchGetTitles of [MaxBatchGet] ids of [MaxIDLen] bytes
	// fits several times over.
	DefaultMaxRecvMsgSize = 1 << 20
	// DefaultMaxConcurrentStreams is the most calls one connection may
	// have in flight.
	DefaultMaxConcurrentStreams = 64
)

// DefaultGracePeriod is how long [Serve] waits for in-flight calls to end
// after its context is done, unless [WithGracePeriod] says otherwise.
const DefaultGracePeriod = 10 * time.Second

// ServeOption configures [Serve].
type ServeOption func(*serveConfig)

type serveConfig struct {
	grpcOpts []grpc.ServerOption
	grace    time.Duration
}

// WithServerOptions passes options (credentials, interceptors, limits) to
// grpc.NewServer. Repeated uses add up.
func WithServerOptions(opts ...grpc.ServerOption) ServeOption {
	return func(c *serveConfig) { c.grpcOpts = append(c.grpcOpts, opts...) }
}

// WithGracePeriod sets how long Serve lets in-flight calls finish after its
// context is done before it closes their connections. Default:
// [DefaultGracePeriod]; a non-positive d keeps the default.
func WithGracePeriod(d time.Duration) ServeOption {
	return func(c *serveConfig) {
		if d > 0 {
			c.grace = d
		}
	}
}

// Serve runs srv as slate.titles.v1.Titles on lis, with the gRPC health
// service (reporting SERVING for "" and for slate.titles.v1.Titles) and
// server reflection. It blocks until ctx is done, then reports NOT_SERVING,
// stops accepting connections and waits up to the grace period for
// in-flight calls (open health Watch streams never end on their own, so a
// watched server always takes the whole grace period) before closing the
// rest; it then returns nil. It returns an error if serving fails before
// that. Serve closes lis.
func Serve(ctx context.Context, lis net.Listener, srv *Server, opts ...ServeOption) error {
	if lis == nil || srv == nil {
		return errors.New("titles: Serve needs a listener and a server")
	}
	cfg := serveConfig{grace: DefaultGracePeriod}
	for _, o := range opts {
		o(&cfg)
	}

	gs := grpc.NewServer(append([]grpc.ServerOption{
		grpc.MaxRecvMsgSize(DefaultMaxRecvMsgSize),
		grpc.MaxConcurrentStreams(DefaultMaxConcurrentStreams),
	}, cfg.grpcOpts...)...)
	titlesv1.RegisterTitlesServer(gs, srv)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(titlesv1.Titles_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(gs, hs)
	reflection.Register(gs)

	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	srv.log.InfoContext(ctx, "titles service serving", "addr", lis.Addr().String())

	select {
	case err := <-served:
		gs.Stop()
		return fmt.Errorf("titles: serve: %w", err)
	case <-ctx.Done():
	}

	hs.Shutdown()
	stopped := make(chan struct{})
	go func() {
		gs.GracefulStop()
		close(stopped)
	}()
	timer := time.NewTimer(cfg.grace)
	defer timer.Stop()
	select {
	case <-stopped:
	case <-timer.C:
		srv.log.WarnContext(ctx, "grace period over; closing remaining calls", "grace", cfg.grace)
		gs.Stop()
		<-stopped
	}
	if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("titles: serve: %w", err)
	}
	srv.log.InfoContext(ctx, "titles service stopped")
	return nil
}
