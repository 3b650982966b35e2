// Package cdc turns database changes into slate envelopes, the way Debezium
// does: PostgreSQL through logical replication (cdc/postgres) and
// MySQL/MariaDB through the binlog (cdc/mysql), each protocol in its own
// subpackage. This package holds what they share.
//
// The flow: a [Source] emits [Batch]es of [Event]s in commit order; a
// [Runner] publishes them through a [Publisher] (*producer.Producer), which
// returns only after the broker acknowledged them, and then calls
// Source.Ack with the batch's position (with an [AsyncPublisher], as the
// producer is, events are enqueued as they come and each position is
// acked, in order, once its events and all before them are acknowledged).
// Only then does the source confirm
// the position to the database (the PostgreSQL slot's confirmed flush LSN,
// the MySQL offset row), so a crash replays, never skips. Replayed events
// have the same envelope ids (they are derived from the source position),
// so consumers' dedupe drops them.
//
// Row events go to studio.cdc.<db>.<schema>.<table> ([Topic]), keyed by
// the primary key (one column: its value; several: a JSON array of the
// values as strings). The envelope's source is //pg/<db>/<schema>/<table>
// (//mysql/... for MySQL), type CREATE, UPDATE, DELETE, SNAPSHOT or
// TRUNCATE, entitytype the table name, sequence a number that grows in
// commit order and within a transaction, above every snapshot event's
// (derived from the commit LSN or the binlog position, see each source),
// and data an Avro record
// {before, after, source} in the Confluent wire format, whose schema
// ([Encoder], [RecordName]) is derived from the table's columns and
// registered under its full name, studio.cdc.<db>.<schema>.<table>.Change;
// a changed table registers a new version. [Filter] selects tables and
// drops or masks columns.
//
// Topics: studio. is the default prefix of every topic named here; the
// sources' TopicPrefix setting ([WithTopicPrefix] of [Encoder] and
// [OutboxRouter]) puts them under another, <prefix>cdc.<db>.<schema>.<table>
// ([TopicIn]) and <prefix><aggregatetype>.changes. The Avro record names
// keep studio.cdc.
//
// The package and its sources import no Kafka client: the [Runner]
// publishes through [Publisher] (package publish), so a sidecar builds
// without cgo when its publisher does.
//
// The outbox: a service writes its change and a row of the outbox table
// ([OutboxDDL]) carrying the framed envelope in one database transaction;
// the source publishes that envelope to studio.<aggregatetype>.changes,
// keyed by aggregateid ([OutboxRouter]), instead of a row event. A
// rolled-back transaction never reaches the log, so it never reaches Kafka.
//
// [Metrics] exposes events acknowledged, lag in seconds and bytes, the
// last confirmed position and snapshot progress.
//
// cdc/cdctest is the contract suite every source passes against its real
// database.
package cdc
