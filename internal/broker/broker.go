// Package broker runs the embedded Kafka-protocol broker (franz-go's kfake)
// that `slate up` and the tests use when no Kafka cluster is given. It speaks
// the real Kafka wire protocol, so confluent-kafka-go talks to it exactly as
// it would to a cluster; topics are created on first use.
package broker

import (
	"fmt"
	"log/slog"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Broker is a running embedded broker.
type Broker struct {
	c *kfake.Cluster
}

type config struct {
	port       int
	dataDir    string
	partitions int
	log        *slog.Logger
}

// Option configures [Start].
type Option func(*config)

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

// Start starts a one-node broker on 127.0.0.1.
func Start(opts ...Option) (*Broker, error) {
	cfg := config{partitions: 4, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.partitions < 1 {
		return nil, fmt.Errorf("broker: partitions %d, need at least 1", cfg.partitions)
	}
	kopts := []kfake.Opt{
		kfake.NumBrokers(1),
		kfake.Ports(cfg.port),
		kfake.AllowAutoTopicCreation(),
		kfake.DefaultNumPartitions(cfg.partitions),
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
