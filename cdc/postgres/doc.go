// Package postgres is the PostgreSQL source of the CDC sidecar: logical
// replication with the built-in pgoutput plugin (pglogrepl).
//
// Run prepares the publication and replication slot when configured to,
// and on a new slot reads every published table in the slot's exported
// snapshot (consistent with the slot's start) as SNAPSHOT events. It then
// streams committed transactions: INSERT, UPDATE, DELETE and TRUNCATE
// become CREATE, UPDATE, DELETE and TRUNCATE events, handed on per
// transaction with the transaction's end LSN as the position. Rolled-back
// transactions are never decoded by the server, so they never appear.
//
// The before image depends on the table's REPLICA IDENTITY: with FULL,
// updates and deletes carry the whole old row; with DEFAULT (the primary
// key), deletes carry only the key columns (other fields null) and updates
// carry no before unless the key changed. An UPDATE that changes the
// primary key becomes a DELETE of the old key (before: the old key, or the
// old row under FULL) followed by a CREATE of the new one, as Debezium
// does, so a sink keyed by the primary key drops the old key's document.
// An unchanged TOASTed value (a
// large column an UPDATE did not touch) is not sent by the server: it is
// taken from the old row when there is one (FULL); otherwise after holds
// Config.UnavailableValue for it (default "__debezium_unavailable_value",
// as Debezium's unavailable.value.placeholder; never null) and its column
// is named in source.unchanged_toast, so a consumer knows to keep the value
// it has. A consumer that replaces whole rows should merge those columns
// from its current state, or the table should use REPLICA IDENTITY FULL.
//
// The slot's confirmed flush LSN moves only when the Runner acknowledged
// every event up to it (standby status updates every StatusInterval and on
// stop). When everything emitted is acknowledged and no transaction is
// open, the position follows the server's WAL end from keepalives, and
// HeartbeatInterval writes a row of the state table, so a slot on a quiet
// database does not hold WAL back. The state table (slate_cdc_state) also
// records whether the initial snapshot finished: a slot whose snapshot
// was interrupted by a crash is dropped and the snapshot taken again.
//
// Envelope ids derive from the LSN and the change's order in its
// transaction, so what a restart replays (changes after the last confirmed
// position) are exact duplicates. Envelope sequences follow commit order,
// which is what versioned sinks (external versions) need: a change's
// sequence is its transaction's commit LSN shifted left by 12 bits plus
// the change's position in the transaction (from 1), and snapshot events
// carry the consistent point shifted the same way minus one, so every
// streamed change orders after them, also one written before the
// consistent point by a transaction that committed after it. A
// transaction of more than 4096 changes can run into the range of the
// next commit; the next transaction then continues from the last sequence
// plus one, so sequences only grow. An LSN past 2^51 (2 PiB of WAL) ends
// Run with ErrSequenceRange. source.lsn stays the change's own LSN (the
// consistent point for snapshot events).
//
// Decoding and encoding are pipelined: the replication goroutine decodes
// pgoutput messages and groups them per transaction; workers (one per
// CPU) build and Avro-encode the change records; one goroutine emits the
// transactions in the order they were read, each with its position, so
// acks, and with them the slot, move exactly as without the pipeline. A
// transaction counts as emitted (keepalives do not move the position past
// it) from the moment it is decoded.
//
// While Kafka does not take events, emit blocks (and the pipeline, once
// full, blocks decoding) and the source sends no
// status updates; a stall longer than the server's wal_sender_timeout ends
// the replication connection and Run returns an error. A restart resumes
// from the confirmed position. Generated columns are read by the snapshot
// but not sent by pgoutput, so such a table has two row schema versions.
//
// The connection needs a user with the REPLICATION attribute and a
// pg_hba "replication" line; wal_level must be logical. The source adds
// replication=database to the DSN itself.
package postgres
