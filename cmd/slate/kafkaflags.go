package main

import (
	"github.com/spf13/pflag"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/internal/kafkaconf"
	"github.com/slatehq/slate/internal/stack"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/runner"
	"github.com/slatehq/slate/schema/registry"
)

// kafkaFlags are the Kafka client flags of the commands that reach a
// cluster (slate dlq, slate cdc, slate registry --brokers): SASL and TLS
// toward the brokers. slate up has flags of its own (--sasl-*,
// --tls-ca, --tls-client-*) that also configure its embedded broker; they
// feed the same settings type.
type kafkaFlags struct {
	mechanism, user, password string
	tls                       bool
	ca, cert, key             string
}

// kafkaFlagNames name the settings of a kafkaconf.Client by their flags,
// for errors.
var kafkaFlagNames = map[string]string{
	"brokers":        "--brokers",
	"sasl.mechanism": "--kafka-sasl-mechanism",
	"sasl.username":  "--kafka-sasl-user",
	"sasl.password":  "--kafka-sasl-password",
	"tls.ca_file":    "--kafka-tls-ca",
	"tls.cert_file":  "--kafka-tls-cert",
	"tls.key_file":   "--kafka-tls-key",
}

func (k *kafkaFlags) bind(fs *pflag.FlagSet) {
	fs.StringVar(&k.mechanism, "kafka-sasl-mechanism", "", "Kafka SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 (empty: SCRAM-SHA-256)")
	fs.StringVar(&k.user, "kafka-sasl-user", "", "Kafka SASL user (turns SASL on)")
	fs.StringVar(&k.password, "kafka-sasl-password", "", "password of --kafka-sasl-user (prefer SLATE_KAFKA_SASL_PASSWORD: flags show in ps)")
	fs.BoolVar(&k.tls, "kafka-tls", false, "speak TLS to the brokers, trusting the system's CAs unless --kafka-tls-ca")
	fs.StringVar(&k.ca, "kafka-tls-ca", "", "PEM CA bundle that signs the brokers' certificates (turns TLS on)")
	fs.StringVar(&k.cert, "kafka-tls-cert", "", "PEM client certificate for mutual TLS (turns TLS on; with --kafka-tls-key)")
	fs.StringVar(&k.key, "kafka-tls-key", "", "PEM private key of --kafka-tls-cert")
}

// set reports whether any of the flags was given.
func (k *kafkaFlags) set() bool { return *k != kafkaFlags{} }

// client returns the settings of a client of brokers.
func (k *kafkaFlags) client(brokers string) kafkaconf.Client {
	c := kafkaconf.Client{Brokers: brokers,
		SASL: kafkaconf.SASL{Mechanism: k.mechanism, Username: k.user, Password: k.password}}
	if k.tls || k.ca != "" || k.cert != "" || k.key != "" {
		c.TLS = &kafkaconf.TLS{CAFile: k.ca, CertFile: k.cert, KeyFile: k.key}
	}
	return c
}

// validate checks the settings toward brokers, naming the flag that is
// wrong; it reads the files the flags name.
func (k *kafkaFlags) validate(brokers string) error {
	return k.client(brokers).ValidateAs(kafkaFlagNames)
}

func (k *kafkaFlags) producerOptions(brokers string) []producer.Option {
	return runner.ProducerOptions(k.client(brokers))
}

func (k *kafkaFlags) consumerOptions(brokers string) []consumer.Option {
	return runner.ConsumerOptions(k.client(brokers))
}

func (k *kafkaFlags) storeOptions(brokers string) []registry.KafkaStoreOption {
	return stack.StoreOptions(k.client(brokers))
}
