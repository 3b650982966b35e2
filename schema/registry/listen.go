package registry

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"time"
)

// ErrInsecureBind is wrapped by [ListenConfig.Validate] when the registry
// would listen on a non-loopback address with no authentication.
var ErrInsecureBind = errors.New("registry: refusing to serve a non-loopback address without authentication")

// ListenConfig is how a [Server] is exposed on the network: address, TLS
// (and mutual TLS), and the HTTP server's timeouts. The zero value with a
// port serves plain HTTP on 127.0.0.1. Every field documents its default.
type ListenConfig struct {
	// Host is the address to listen on; default 127.0.0.1.
	Host string
	// Port is the port; default 8081.
	Port int
	// CertFile and KeyFile, both set, serve HTTPS with that PEM
	// certificate and key. Default: plain HTTP.
	CertFile, KeyFile string
	// ClientCAFile is a PEM bundle of the CAs that sign client
	// certificates; with it a client certificate is verified when offered.
	ClientCAFile string
	// RequireClientCert refuses clients without a certificate signed by
	// ClientCAFile (mutual TLS): the client is authenticated.
	RequireClientCert bool
	// Authenticated says the handler authenticates requests itself (basic
	// auth, [WithUsers]).
	Authenticated bool
	// InsecureBind allows a non-loopback Host with neither authentication
	// nor client certificates. Without it [ListenConfig.Validate] refuses:
	// anyone who reaches the port could PUT /config to NONE.
	InsecureBind bool
	// ReadHeaderTimeout bounds reading a request's headers; default 10s.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included, so that a
	// client trickling a body cannot hold a connection; default 30s.
	ReadTimeout time.Duration
	// WriteTimeout bounds writing a response; default 60s.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection idle this long; default 120s.
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds request headers; default 64 KiB.
	MaxHeaderBytes int
}

func (c *ListenConfig) defaults() {
	if c.Host == "" {
		c.Host = "127.0.0.1"
	}
	if c.Port == 0 {
		c.Port = 8081
	}
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	set(&c.ReadHeaderTimeout, 10*time.Second)
	set(&c.ReadTimeout, 30*time.Second)
	set(&c.WriteTimeout, 60*time.Second)
	set(&c.IdleTimeout, 120*time.Second)
	if c.MaxHeaderBytes == 0 {
		c.MaxHeaderBytes = 64 << 10
	}
}

// Addr returns host:port, with the defaults applied.
func (c ListenConfig) Addr() string {
	c.defaults()
	return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

// Validate checks the configuration; an error names the setting (by its
// `slate registry` flag) that is wrong.
func (c ListenConfig) Validate() error {
	c.defaults()
	if c.Port < 0 || c.Port > 65535 {
		return fmt.Errorf("registry: --port %d: not a port", c.Port)
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return errors.New("registry: --tls-cert and --tls-key go together")
	}
	if (c.ClientCAFile != "" || c.RequireClientCert) && c.CertFile == "" {
		return errors.New("registry: --tls-client-ca and --tls-require-client-cert need --tls-cert and --tls-key")
	}
	if c.RequireClientCert && c.ClientCAFile == "" {
		return errors.New("registry: --tls-require-client-cert needs --tls-client-ca")
	}
	if !c.InsecureBind && !c.Authenticated && !c.RequireClientCert && !isLoopback(c.Host) {
		return fmt.Errorf("%w: --host %s is reachable from other machines; set --users-file or --tls-require-client-cert, or pass --insecure-bind to serve it open", ErrInsecureBind, c.Host)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// HTTPServer validates c and returns an http.Server for h with c's
// timeouts and TLS configuration; serve it with ServeTLS when
// c.CertFile is set ([ListenConfig.Serve] does).
func (c ListenConfig) HTTPServer(h http.Handler) (*http.Server, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c.defaults()
	hs := &http.Server{
		Addr: c.Addr(), Handler: h,
		ReadHeaderTimeout: c.ReadHeaderTimeout, ReadTimeout: c.ReadTimeout,
		WriteTimeout: c.WriteTimeout, IdleTimeout: c.IdleTimeout, MaxHeaderBytes: c.MaxHeaderBytes,
	}
	if c.CertFile != "" {
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if c.ClientCAFile != "" {
			pem, err := os.ReadFile(c.ClientCAFile)
			if err != nil {
				return nil, fmt.Errorf("registry: --tls-client-ca: %w", err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("registry: --tls-client-ca %s: no PEM certificates", c.ClientCAFile)
			}
			cfg.ClientCAs = pool
			cfg.ClientAuth = tls.VerifyClientCertIfGiven
			if c.RequireClientCert {
				cfg.ClientAuth = tls.RequireAndVerifyClientCert
			}
		}
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("registry: --tls-cert/--tls-key: %w", err)
		}
		cfg.Certificates = []tls.Certificate{cert}
		hs.TLSConfig = cfg
	}
	return hs, nil
}

// Serve serves hs on lis until hs is shut down, over TLS when hs has a TLS
// configuration. It returns http.ErrServerClosed after Shutdown.
func Serve(hs *http.Server, lis net.Listener) error {
	if hs.TLSConfig != nil {
		return hs.ServeTLS(lis, "", "")
	}
	return hs.Serve(lis)
}
