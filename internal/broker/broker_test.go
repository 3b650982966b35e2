package broker_test

import (
	"crypto/tls"
	"errors"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/internal/devcert"
)

func start(t *testing.T, opts ...broker.Option) *broker.Broker {
	t.Helper()
	b, err := broker.Start(opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// produce sends one record and returns its delivery error.
func produce(t *testing.T, cfg kafka.ConfigMap, topic string) error {
	t.Helper()
	if _, ok := cfg["message.timeout.ms"]; !ok {
		cfg["message.timeout.ms"] = 1500
	}
	cfg["log_level"] = 0
	p, err := kafka.NewProducer(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	ch := make(chan kafka.Event, 1)
	if err := p.Produce(&kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny}, Value: []byte("v")}, ch); err != nil {
		return err
	}
	select {
	case ev := <-ch:
		return ev.(*kafka.Message).TopicPartition.Error
	case <-time.After(10 * time.Second):
		return errors.New("no delivery report")
	}
}

func TestSASL(t *testing.T) {
	for _, mech := range []string{broker.SASLPlain, broker.SASLScramSHA256, broker.SASLScramSHA512} {
		t.Run(mech, func(t *testing.T) {
			b := start(t, broker.WithSASL(mech, "slate", "s3cret"))
			auth := func() kafka.ConfigMap {
				return kafka.ConfigMap{"bootstrap.servers": b.Addr(), "security.protocol": "SASL_PLAINTEXT",
					"sasl.mechanisms": mech, "sasl.username": "slate", "sasl.password": "s3cret", "message.timeout.ms": 8000}
			}
			if err := produce(t, kafka.ConfigMap{"bootstrap.servers": b.Addr()}, "t"); err == nil {
				t.Fatal("a client without credentials produced")
			}
			wrong := auth()
			wrong["sasl.password"] = "guess"
			if err := produce(t, wrong, "t"); err == nil {
				t.Fatal("a client with a wrong password produced")
			}
			if err := produce(t, auth(), "t"); err != nil {
				t.Fatalf("produce with credentials: %v", err)
			}
			cc := auth()
			cc["group.id"] = "g"
			cc["auto.offset.reset"] = "earliest"
			c, err := kafka.NewConsumer(&cc)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.Subscribe("t", nil); err != nil {
				t.Fatal(err)
			}
			m, err := c.ReadMessage(15 * time.Second)
			if err != nil || string(m.Value) != "v" {
				t.Fatalf("consume with credentials: %v, %v", m, err)
			}
		})
	}
}

func TestStartRefusesOpenNetworkWithoutAuth(t *testing.T) {
	if _, err := broker.Start(broker.WithHost("0.0.0.0")); !errors.Is(err, broker.ErrInsecureBind) {
		t.Fatalf("Start on 0.0.0.0 without SASL = %v, want ErrInsecureBind", err)
	}
	start(t, broker.WithHost("0.0.0.0"), broker.WithSASL(broker.SASLPlain, "u", "p"))
	start(t, broker.WithHost("0.0.0.0"), broker.WithAllowInsecure())
	start(t, broker.WithHost("::1"))
	if _, err := broker.Start(broker.WithSASL("GSSAPI", "u", "p")); err == nil {
		t.Fatal("Start with an unknown SASL mechanism succeeded")
	}
}

// Over TLS with SASL, a client needs the CA and the credentials: plaintext,
// an untrusted server certificate or missing credentials are refused.
func TestTLSWithSASL(t *testing.T) {
	files, err := devcert.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(files.ServerCert, files.ServerKey)
	if err != nil {
		t.Fatal(err)
	}
	b := start(t, broker.WithTLS(&tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}),
		broker.WithSASL(broker.SASLScramSHA256, "slate", "s3cret"))
	auth := func() kafka.ConfigMap {
		return kafka.ConfigMap{"bootstrap.servers": b.Addr(), "security.protocol": "SASL_SSL", "ssl.ca.location": files.CA,
			"sasl.mechanisms": broker.SASLScramSHA256, "sasl.username": "slate", "sasl.password": "s3cret", "message.timeout.ms": 8000}
	}
	plain := auth()
	plain["security.protocol"] = "SASL_PLAINTEXT"
	untrusted := auth()
	delete(untrusted, "ssl.ca.location")
	anonymous := kafka.ConfigMap{"bootstrap.servers": b.Addr(), "security.protocol": "SSL", "ssl.ca.location": files.CA}
	for name, cfg := range map[string]kafka.ConfigMap{"plaintext": plain, "untrusted CA": untrusted, "no SASL": anonymous} {
		cfg["message.timeout.ms"] = 3000
		if err := produce(t, cfg, "t"); err == nil {
			t.Errorf("a client with %s produced", name)
		}
	}
	if err := produce(t, auth(), "t"); err != nil {
		t.Fatalf("produce over SASL_SSL: %v", err)
	}
}
