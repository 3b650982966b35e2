// Package broker runs the embedded Kafka-protocol broker (franz-go's kfake)
// that `slate up` and the tests use when no Kafka cluster is given. It speaks
// the real Kafka wire protocol, so confluent-kafka-go talks to it exactly as
// it would to a cluster; topics are created on first use.
package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Broker is a running embedded broker.
type Broker struct {
	c *kfake.Cluster
}

type config struct {
	host       string
	insecure   bool
	sasl       []saslUser
	tls        *tls.Config
	port       int
	dataDir    string
	partitions int
	log        *slog.Logger
}

// Option configures [Start].
type Option func(*config)

type saslUser struct{ mechanism, user, password string }

// The SASL mechanisms [WithSASL] accepts.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// ErrInsecureBind is returned by [Start] when asked to listen beyond the
// loopback interface without SASL and without [WithAllowInsecure].
var ErrInsecureBind = errors.New("broker: refusing to listen on a non-loopback address without SASL")

// WithHost sets the address the broker listens on (default 127.0.0.1). A
// host that is not a loopback address needs [WithSASL], or
// [WithAllowInsecure] to accept any client on the network.
func WithHost(host string) Option { return func(c *config) { c.host = host } }

// WithAllowInsecure lets [WithHost] name a non-loopback address without
// SASL: every client that reaches the port may read and write every topic.
func WithAllowInsecure() Option { return func(c *config) { c.insecure = true } }

// WithSASL requires clients to authenticate with SASL and adds a user with
// all rights. mechanism is [SASLPlain], [SASLScramSHA256] or
// [SASLScramSHA512]; repeated uses add users. Clients connect with
// security.protocol=SASL_PLAINTEXT, or SASL_SSL together with [WithTLS].
func WithSASL(mechanism, user, password string) Option {
	return func(c *config) { c.sasl = append(c.sasl, saslUser{mechanism, user, password}) }
}

// WithTLS serves the Kafka protocol over TLS with c, which holds the
// broker's certificate; with c.ClientAuth = tls.RequireAndVerifyClientCert
// and c.ClientCAs set, clients must present a certificate (mutual TLS).
// Clients connect with security.protocol=SSL, or SASL_SSL together with
// [WithSASL].
func WithTLS(c *tls.Config) Option { return func(cfg *config) { cfg.tls = c } }

// WithPort listens on 127.0.0.1:port; the default 0 picks a free port.
func WithPort(port int) Option { return func(c *config) { c.port = port } }

// WithDataDir persists the log and committed offsets in dir, so a restarted
// broker (or a restarted `slate up`) resumes where it stopped. Every
// produce is fsynced, so a crash of the broker loses no acknowledged record.
func WithDataDir(dir string) Option { return func(c *config) { c.dataDir = dir } }

// WithPartitions sets the partition count of auto-created topics (default 4).
func WithPartitions(n int) Option { return func(c *config) { c.partitions = n } }

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// Start starts a one-node broker, on 127.0.0.1 unless [WithHost] says
// otherwise.
func Start(opts ...Option) (*Broker, error) {
	cfg := config{host: "127.0.0.1", partitions: 4, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.partitions < 1 {
		return nil, fmt.Errorf("broker: partitions %d, need at least 1", cfg.partitions)
	}
	if cfg.port < 0 || cfg.port > 65535 {
		return nil, fmt.Errorf("broker: port %d, need 0-65535", cfg.port)
	}
	if !isLoopback(cfg.host) && len(cfg.sasl) == 0 && !cfg.insecure {
		return nil, fmt.Errorf("%w: host %q (use WithSASL, or WithAllowInsecure to accept anyone)", ErrInsecureBind, cfg.host)
	}
	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(cfg.port),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(cfg.partitions),
	}
	if cfg.host != "127.0.0.1" {
		host := cfg.host
		kopts = append(kopts, kfake.ListenFn(func(network, address string) (net.Listener, error) {
			_, port, err := net.SplitHostPort(address)
			if err != nil {
				return nil, err
			}
			return net.Listen(network, net.JoinHostPort(host, port))
		}))
	}
	if len(cfg.sasl) > 0 {
		kopts = append(kopts, kfake.EnableSASL())
		for _, u := range cfg.sasl {
			switch u.mechanism {
			case SASLPlain, SASLScramSHA256, SASLScramSHA512:
			default:
				return nil, fmt.Errorf("broker: SASL mechanism %q, want %s, %s or %s", u.mechanism, SASLPlain, SASLScramSHA256, SASLScramSHA512)
			}
			if u.user == "" || u.password == "" {
				return nil, fmt.Errorf("broker: SASL %s user %q: user and password must not be empty", u.mechanism, u.user)
			}
			kopts = append(kopts, kfake.Superuser(u.mechanism, u.user, u.password))
		}
	}
	if cfg.tls != nil {
		kopts = append(kopts, kfake.TLS(cfg.tls))
	}
	if cfg.dataDir != "" {
		kopts = append(kopts, kfake.DataDir(cfg.dataDir), kfake.SyncWrites())
	}
	c, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("broker: start: %w", err)
	}
	b := &Broker{c: c}
	cfg.log.Info("embedded kafka broker listening", "addr", b.Addr())
	return b, nil
}

// isLoopback reports whether host names only the loopback interface.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Addr returns the bootstrap address (host:port).
func (b *Broker) Addr() string { return b.c.ListenAddrs()[0] }

// Cluster returns the underlying kfake cluster, for tests that inject faults.
func (b *Broker) Cluster() *kfake.Cluster { return b.c }

// CreateTopic creates a topic with the given partitions and configs (for
// example cleanup.policy=compact).
func (b *Broker) CreateTopic(topic string, partitions int32, configs map[string]string) error {
	if err := b.c.CreateTopic(topic, partitions, configs); err != nil {
		return fmt.Errorf("broker: create topic %s: %w", topic, err)
	}
	return nil
}

// Close stops the broker.
func (b *Broker) Close() { b.c.Close() }
