package producer

import (
	"log/slog"
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
