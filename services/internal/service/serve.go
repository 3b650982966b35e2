package service

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"
)

// Limits [Serve] sets on the gRPC server before the options of
// [WithServerOptions], which may override them.
const (
	// DefaultMaxRecvMsgSize is the largest request, in bytes, the server
	// reads.
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
	tls      *tls.Config
	insecure bool
}

// ErrInsecureListen is returned by [Serve] for a listener beyond the
// loopback interface without [WithTLS] or [WithInsecure].
var ErrInsecureListen = errors.New("refusing to serve plaintext on a non-loopback address")

// WithTLS serves over TLS with c (see [ServerTLS]); with c.ClientCAs set and
// c.ClientAuth = tls.RequireAndVerifyClientCert, clients must present a
// certificate (mTLS). Plaintext clients are refused.
func WithTLS(c *tls.Config) ServeOption { return func(cfg *serveConfig) { cfg.tls = c } }

// WithInsecure lets Serve accept plaintext connections on a non-loopback
// listener: anyone who reaches the port may call the service.
func WithInsecure() ServeOption { return func(cfg *serveConfig) { cfg.insecure = true } }

// WithServerOptions passes options (credentials, interceptors, limits) to
// grpc.NewServer. Repeated uses add up. A codec among them is overridden:
// the server decodes requests with its own.
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

// ServerTLS loads a server certificate and key (PEM files). With a
// non-empty clientCAFile it requires and verifies client certificates
// signed by those CAs (mTLS).
func ServerTLS(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("tls cert %s, key %s: %w", certFile, keyFile, err)
	}
	c := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if clientCAFile != "" {
		pool, err := loadPool(clientCAFile)
		if err != nil {
			return nil, err
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}

// ClientTLS returns the TLS configuration of a client of a service: it
// trusts the CAs in caFile (empty: the system's roots) and, with certFile
// and keyFile set, presents that certificate (mTLS).
func ClientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pool, err := loadPool(caFile)
		if err != nil {
			return nil, err
		}
		c.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("tls client cert %s, key %s: %w", certFile, keyFile, err)
		}
		c.Certificates = []tls.Certificate{cert}
	}
	return c, nil
}

func loadPool(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("tls CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("tls CA %s: no PEM certificate", file)
	}
	return pool, nil
}

// isLoopback reports whether a listens on the loopback interface only.
func isLoopback(a net.Addr) bool {
	tcp, ok := a.(*net.TCPAddr)
	if !ok {
		// Unix sockets and in-memory listeners are not on a network.
		return true
	}
	return tcp.IP.IsLoopback()
}

// Service is what [Serve] runs: one gRPC service and its implementation.
type Service struct {
	// Name prefixes errors and log lines, such as "schedules".
	Name string
	// Desc is the generated service descriptor.
	Desc *grpc.ServiceDesc
	// Impl implements Desc's server interface.
	Impl any
	// Log receives the serving and stopping lines.
	Log *slog.Logger
}

// Serve runs svc on lis, with the gRPC health service (reporting SERVING
// for "" and for the service's full name) and server reflection. A request
// that does not unmarshal (invalid UTF-8 in a string field, a truncated
// message) is answered InvalidArgument, not grpc-go's Internal. It blocks
// until ctx is done, then reports NOT_SERVING, stops accepting connections
// and waits up to the grace period for in-flight calls before closing the
// rest; it then returns nil. It returns an error if serving fails before
// that. A listener beyond the loopback interface needs [WithTLS] or
// [WithInsecure] ([ErrInsecureListen]). Serve closes lis.
func Serve(ctx context.Context, lis net.Listener, svc Service, opts ...ServeOption) error {
	if lis == nil || svc.Desc == nil || svc.Impl == nil {
		return fmt.Errorf("%s: Serve needs a listener and a server", svc.Name)
	}
	log := svc.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg := serveConfig{grace: DefaultGracePeriod}
	for _, o := range opts {
		o(&cfg)
	}

	if cfg.tls == nil && !cfg.insecure && !isLoopback(lis.Addr()) {
		lis.Close()
		return fmt.Errorf("%s: %w: %s (use WithTLS, or WithInsecure to accept anyone)", svc.Name, ErrInsecureListen, lis.Addr())
	}
	base := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(DefaultMaxRecvMsgSize),
		grpc.MaxConcurrentStreams(DefaultMaxConcurrentStreams),
	}
	if cfg.tls != nil {
		base = append(base, grpc.Creds(credentials.NewTLS(cfg.tls)))
	}
	// The codec comes last: the methods' strict decoding needs it.
	gs := grpc.NewServer(append(append(base, cfg.grpcOpts...), grpc.ForceServerCodecV2(newRequestCodec()))...)
	gs.RegisterService(strictDecoding(svc.Desc), svc.Impl)
	hs := health.NewServer()
	hs.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	hs.SetServingStatus(svc.Desc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	gs.RegisterService(strictDecoding(&healthpb.Health_ServiceDesc), hs)
	reflection.Register(gs)

	served := make(chan error, 1)
	go func() { served <- gs.Serve(lis) }()
	log.InfoContext(ctx, svc.Name+" service serving", "addr", lis.Addr().String())

	select {
	case err := <-served:
		gs.Stop()
		return fmt.Errorf("%s: serve: %w", svc.Name, err)
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
		log.WarnContext(ctx, "grace period over; closing remaining calls", "grace", cfg.grace)
		gs.Stop()
		<-stopped
	}
	if err := <-served; err != nil && !errors.Is(err, grpc.ErrServerStopped) {
		return fmt.Errorf("%s: serve: %w", svc.Name, err)
	}
	log.InfoContext(ctx, svc.Name+" service stopped")
	return nil
}
