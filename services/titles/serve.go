package titles

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
	"github.com/slatehq/slate/services/internal/service"
	"google.golang.org/grpc"
)

// Limits [Serve] sets on the gRPC server before the options of
// [WithServerOptions], which may override them.
const (
	// DefaultMaxRecvMsgSize is the largest request, in bytes, the server
	// reads: a BatchGetTitles of [MaxBatchGet] ids of [MaxIDLen] bytes
	// fits several times over.
	DefaultMaxRecvMsgSize = service.DefaultMaxRecvMsgSize
	// DefaultMaxConcurrentStreams is the most calls one connection may
	// have in flight.
	DefaultMaxConcurrentStreams = service.DefaultMaxConcurrentStreams
)

// DefaultGracePeriod is how long [Serve] waits for in-flight calls to end
// after its context is done, unless [WithGracePeriod] says otherwise.
const DefaultGracePeriod = service.DefaultGracePeriod

// ServeOption configures [Serve].
type ServeOption = service.ServeOption

// ErrInsecureListen is returned by [Serve] for a listener beyond the
// loopback interface without [WithTLS] or [WithInsecure].
var ErrInsecureListen = service.ErrInsecureListen

// WithTLS serves over TLS with c (see [ServerTLS]); with c.ClientCAs set and
// c.ClientAuth = tls.RequireAndVerifyClientCert, clients must present a
// certificate (mTLS). Plaintext clients are refused.
func WithTLS(c *tls.Config) ServeOption { return service.WithTLS(c) }

// WithInsecure lets Serve accept plaintext connections on a non-loopback
// listener: anyone who reaches the port may call the service.
func WithInsecure() ServeOption { return service.WithInsecure() }

// ServerTLS loads a server certificate and key (PEM files). With a
// non-empty clientCAFile it requires and verifies client certificates
// signed by those CAs (mTLS).
func ServerTLS(certFile, keyFile, clientCAFile string) (*tls.Config, error) {
	c, err := service.ServerTLS(certFile, keyFile, clientCAFile)
	if err != nil {
		return nil, fmt.Errorf("titles: %w", err)
	}
	return c, nil
}

// ClientTLS returns the TLS configuration of a client of the service: it
// trusts the CAs in caFile (empty: the system's roots) and, with certFile
// and keyFile set, presents that certificate (mTLS). Pass it to
// grpc.WithTransportCredentials(credentials.NewTLS(c)).
func ClientTLS(caFile, certFile, keyFile string) (*tls.Config, error) {
	c, err := service.ClientTLS(caFile, certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("titles: %w", err)
	}
	return c, nil
}

// WithServerOptions passes options (credentials, interceptors, limits) to
// grpc.NewServer. Repeated uses add up. A codec among them is overridden:
// the server decodes requests with its own (see [Serve]).
func WithServerOptions(opts ...grpc.ServerOption) ServeOption {
	return service.WithServerOptions(opts...)
}

// WithGracePeriod sets how long Serve lets in-flight calls finish after its
// context is done before it closes their connections. Default:
// [DefaultGracePeriod]; a non-positive d keeps the default.
func WithGracePeriod(d time.Duration) ServeOption { return service.WithGracePeriod(d) }

// Serve runs srv as slate.titles.v1.Titles on lis, with the gRPC health
// service (reporting SERVING for "" and for slate.titles.v1.Titles) and
// server reflection. A request that does not unmarshal (invalid UTF-8 in
// a string field, a truncated message) is answered InvalidArgument, not
// grpc-go's Internal. It blocks until ctx is done, then reports NOT_SERVING,
// stops accepting connections and waits up to the grace period for
// in-flight calls (open health Watch streams never end on their own, so a
// watched server always takes the whole grace period) before closing the
// rest; it then returns nil. It returns an error if serving fails before
// that. Serve closes lis.
func Serve(ctx context.Context, lis net.Listener, srv *Server, opts ...ServeOption) error {
	svc := service.Service{Name: "titles", Desc: &titlesv1.Titles_ServiceDesc}
	if srv != nil {
		svc.Impl, svc.Log = srv, srv.log
	}
	return service.Serve(ctx, lis, svc, opts...)
}
