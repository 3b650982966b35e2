// Package cdc turns database changes into slate envelopes, the way Debezium
// does: PostgreSQL through logical replication and MySQL/MariaDB through the
// binlog, each protocol in its own subpackage. A Source streams changes and
// is told what Kafka acknowledged, so the replication slot or binlog
// position only moves past events that are safely on the bus; the outbox
// router publishes rows written by producer.Outbox as the envelopes they
// carry.
package cdc
