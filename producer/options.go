package producer

import (
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/slatehq/slate/schema"
)

type config struct {
	brokers      string
	registry     schema.Registry
	source       string
	clientID     string
	kafka        kafka.ConfigMap
	log          *slog.Logger
	startTimeout time.Duration
	sasl         *saslConfig
	tls          *tlsConfig
	limit        *limitConfig // see WithBrokerMessageLimit
}

type saslConfig struct{ mechanism, user, pass string }

type tlsConfig struct{ caFile, certFile, keyFile string }

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

// WithClientID sets the Kafka client.id (default "slate-producer").
func WithClientID(id string) Option { return func(c *config) { c.clientID = id } }

// WithKafkaConfig passes librdkafka settings through (SASL, TLS,
// compression, linger, batch sizes, ...). They override slate's defaults.
func WithKafkaConfig(cm kafka.ConfigMap) Option {
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
// SCRAM-SHA-256 or SCRAM-SHA-512. It sets the librdkafka settings
// security.protocol=SASL_PLAINTEXT (SASL_SSL together with [WithTLS]),
// sasl.mechanisms, sasl.username and sasl.password. Keep credentials out
// of logs and flags: read them from the environment or a secret store.
func WithSASL(mechanism, user, pass string) Option {
	return func(c *config) { c.sasl = &saslConfig{mechanism: mechanism, user: user, pass: pass} }
}

// WithTLS encrypts the connections to the brokers. caFile is the PEM file
// of the CA that signed the brokers' certificates (empty: the system's
// CAs); certFile and keyFile are the client's PEM certificate and key for
// mutual TLS (both empty: no client certificate). It sets the librdkafka
// settings security.protocol=SSL (SASL_SSL together with [WithSASL]),
// ssl.ca.location, ssl.certificate.location and ssl.key.location. New fails
// when a named file cannot be read.
func WithTLS(caFile, certFile, keyFile string) Option {
	return func(c *config) { c.tls = &tlsConfig{caFile: caFile, certFile: certFile, keyFile: keyFile} }
}

// securityConfig returns the librdkafka settings of the SASL and TLS
// options, or an error naming the setting that is wrong.
func (c *config) securityConfig() (kafka.ConfigMap, error) {
	cm := kafka.ConfigMap{}
	switch {
	case c.sasl != nil && c.tls != nil:
		cm["security.protocol"] = "SASL_SSL"
	case c.sasl != nil:
		cm["security.protocol"] = "SASL_PLAINTEXT"
	case c.tls != nil:
		cm["security.protocol"] = "SSL"
	}
	if s := c.sasl; s != nil {
		switch s.mechanism {
		case "PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512":
		default:
			return nil, fmt.Errorf("WithSASL: mechanism %q is not one of PLAIN, SCRAM-SHA-256, SCRAM-SHA-512", s.mechanism)
		}
		if s.user == "" {
			return nil, fmt.Errorf("WithSASL: user is empty")
		}
		cm["sasl.mechanisms"] = s.mechanism
		cm["sasl.username"] = s.user
		cm["sasl.password"] = s.pass
	}
	if t := c.tls; t != nil {
		if (t.certFile == "") != (t.keyFile == "") {
			return nil, fmt.Errorf("WithTLS: certFile and keyFile go together (got cert %q, key %q)", t.certFile, t.keyFile)
		}
		for _, f := range []struct{ name, path, setting string }{
			{"caFile", t.caFile, "ssl.ca.location"},
			{"certFile", t.certFile, "ssl.certificate.location"},
			{"keyFile", t.keyFile, "ssl.key.location"},
		} {
			if f.path == "" {
				continue
			}
			if _, err := os.Stat(f.path); err != nil {
				return nil, fmt.Errorf("WithTLS: %s: %w", f.name, err)
			}
			cm[f.setting] = f.path
		}
	}
	return cm, nil
}
