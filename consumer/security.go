package consumer

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/slatehq/slate/internal/kafkaconf"
)

// ErrUnreachable is wrapped by the error of [Consumer.Run] and
// [ReadDeadLetters] when no broker answered within the start timeout
// (wrong address, broker down, a TLS or SASL setting the brokers do not
// accept).
var ErrUnreachable = errors.New("consumer: no broker reachable")

// ErrAuth is wrapped by the error of [Consumer.Run] and [ReadDeadLetters]
// when the brokers refused the client's credentials (SASL) or its
// authorization.
var ErrAuth = errors.New("consumer: not authorized by the broker")

// defaultStartTimeout is how long a consumer waits for a broker at start
// unless WithStartTimeout says otherwise.
const defaultStartTimeout = 10 * time.Second

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
// ssl.ca.location, ssl.certificate.location and ssl.key.location. [New]
// fails when a named file cannot be read, the CA file holds no PEM
// certificate or the key does not match the certificate.
func WithTLS(caFile, certFile, keyFile string) Option {
	return func(c *config) { c.sec.TLS = &kafkaconf.TLS{CAFile: caFile, CertFile: certFile, KeyFile: keyFile} }
}

// WithStartTimeout bounds how long [Consumer.Run] and [ReadDeadLetters]
// wait for a broker to answer before they fail with [ErrUnreachable]
// (default 10s). A refusal of the credentials fails them at once, with
// [ErrAuth].
func WithStartTimeout(d time.Duration) Option { return func(c *config) { c.startTimeout = d } }

// securityConfig validates the SASL and TLS options and returns their
// librdkafka settings.
func (c *config) securityConfig(brokers string) (kafka.ConfigMap, error) {
	client, err := c.sec.Client(brokers, "")
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	cm, err := client.ConfigMap()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return cm, nil
}

// awaitBrokers waits until a broker answers kc, within the start timeout
// or ctx's deadline if that is sooner, and fails with ErrAuth as soon as
// the brokers refuse the client. It reads kc's queued events, so call it
// before subscribing or assigning.
func awaitBrokers(ctx context.Context, kc *kafka.Consumer, cm *kafka.ConfigMap, timeout time.Duration) error {
	if dl, ok := ctx.Deadline(); ok {
		timeout = min(timeout, max(time.Until(dl), time.Millisecond))
	}
	md := func(ms int) error { _, err := kc.GetMetadata(nil, false, ms); return err }
	next := func() kafka.Event { return kc.Poll(0) }
	se := kafkaconf.AwaitBrokers(ctx, cm, md, next, timeout)
	switch {
	case se == nil:
		return nil
	case se.Refused:
		return fmt.Errorf("%w: %w", ErrAuth, se)
	}
	return fmt.Errorf("%w %w", ErrUnreachable, se)
}
