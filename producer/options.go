package producer

import (
	"log/slog"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/slatehq/slate/internal/kafkaconf"
	"github.com/slatehq/slate/schema"
)

type config struct {
	brokers      string
	registry     schema.Registry
	source       string
	topicPrefix  string
	clientID     string
	kafka        kafka.ConfigMap
	log          *slog.Logger
	startTimeout time.Duration
	sec          kafkaconf.Security // see WithSASL, WithTLS
	limit        *limitConfig       // see WithBrokerMessageLimit
}

// Option configures [New].
type Option func(*config)

// WithBrokers sets the bootstrap servers (host:port,...). Required.
func WithBrokers(brokers string) Option { return func(c *config) { c.brokers = brokers } }

// WithRegistry sets the schema registry the envelope schema is registered
// in. Required.
func WithRegistry(r schema.Registry) Option { return func(c *config) { c.registry = r } }

// WithSource sets the envelope source of every event, a URI-reference such
// as //studio/titles. Required.
func WithSource(source string) Option { return func(c *config) { c.source = source } }

// WithTopicPrefix sets the prefix of the topics the producer names itself:
// [Producer.PublishChange] publishes to <prefix><entity>.changes, and the
// [Producer.Outbox] encodes for that topic (default
// [schema.DefaultTopicPrefix], "studio."; "" is the default too). New
// fails on a prefix that cannot start a topic name
// ([schema.ValidateTopicPrefix]).
func WithTopicPrefix(prefix string) Option { return func(c *config) { c.topicPrefix = prefix } }

// WithClientID sets the Kafka client.id (default "slate-producer").
func WithClientID(id string) Option { return func(c *config) { c.clientID = id } }

// WithKafkaConfig passes librdkafka settings through (SASL, TLS,
// compression, linger, batch sizes, ...), by their librdkafka property
// name, each a string, a bool or a number. They override slate's
// defaults; [New] fails on one that librdkafka does not know or accept.
func WithKafkaConfig(cm map[string]any) Option {
	return func(c *config) {
		for k, v := range cm {
			c.kafka[k] = v
		}
	}
}

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// WithStartTimeout bounds how long [New] waits for a broker to answer
// (default 10s). New fails if none does.
func WithStartTimeout(d time.Duration) Option { return func(c *config) { c.startTimeout = d } }

// WithSASL authenticates to the brokers with SASL. mechanism is PLAIN,
// SCRAM-SHA-256 or SCRAM-SHA-512 (empty: SCRAM-SHA-256); user and pass
// are required. It sets the librdkafka settings
// security.protocol=SASL_PLAINTEXT (SASL_SSL together with [WithTLS]),
// sasl.mechanisms, sasl.username and sasl.password. Keep credentials out
// of logs and flags: read them from the environment or a secret store.
func WithSASL(mechanism, user, pass string) Option {
	return func(c *config) {
		c.sec.SASL = &kafkaconf.SASL{Mechanism: mechanism, Username: user, Password: pass}
	}
}

// WithTLS encrypts the connections to the brokers. caFile is the PEM file
// of the CA that signed the brokers' certificates (empty: the system's
// CAs); certFile and keyFile are the client's PEM certificate and key for
// mutual TLS (both empty: no client certificate). It sets the librdkafka
// settings security.protocol=SSL (SASL_SSL together with [WithSASL]),
// ssl.ca.location, ssl.certificate.location and ssl.key.location. New fails
// when a named file cannot be read, the CA file holds no PEM certificate
// or the key does not match the certificate.
func WithTLS(caFile, certFile, keyFile string) Option {
	return func(c *config) { c.sec.TLS = &kafkaconf.TLS{CAFile: caFile, CertFile: certFile, KeyFile: keyFile} }
}
