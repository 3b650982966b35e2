// Package internal groups what slate's packages share and no user imports:
// the librdkafka settings every client starts from (kafkaconf), the
// registration of metrics shared by several clients (promreg), the
// embedded Kafka-protocol broker (broker) and test helpers (testenv).
package internal
