// Package mysql is the MySQL/MariaDB source of the CDC sidecar: it reads
// the ROW binlog as a replica (go-mysql canal, flavor mariadb or mysql).
//
// Each committed transaction (from its GTID event to its XID event)
// becomes one batch of CREATE, UPDATE and DELETE events, published to
// studio.cdc.<server>.<database>.<table> (under Config.TopicPrefix when
// set) with the envelope source
// //mysql/<server>/<database>/<table>. The batch's position is the binlog
// file and offset after the XID event (and the GTID set). Once the Runner
// acknowledged it, the source stores it in the offsets table
// (slate_cdc_offsets, one row per source name) in the captured database;
// a restarted source resumes from that row, so nothing is skipped and
// what is replayed has the same envelope ids. On the first run (no row)
// the source starts at the server's current binlog position and stores it
// at once; with Snapshot it first reads every captured table in one
// consistent view (FLUSH TABLES WITH READ LOCK just long enough to START
// TRANSACTION WITH CONSISTENT SNAPSHOT and read SHOW MASTER STATUS and the
// GTID position), emits the rows as SNAPSHOT events whose sequence is
// below every streamed change's, and streams from that view's binlog
// position. That position is stored only once the snapshot is
// acknowledged, so a crash mid-snapshot takes the snapshot again.
//
// Sequences are derived from the binlog coordinates: the file's numeric
// suffix in the high 32 bits and, in the low ones, the offset of the row's
// rows event plus the count of row images up to the row's, so the rows of
// one statement (one rows event) get distinct sequences and they all grow
// along the binlog, which is written in commit order: a transaction open
// before the snapshot and committed after it orders after the snapshot.
// source.lsn is the rows event's end offset (the same for its rows). The
// before image is the full old row
// with binlog_row_image=FULL (the default). An UPDATE that changes the
// primary key becomes a DELETE of the old key (before: the old row)
// followed by a CREATE of the new one, as Debezium does, so a sink keyed
// by the primary key drops the old key's document. TRUNCATE, a DDL statement in
// the binlog, is not turned into an event. Outbox rows (slate_outbox,
// cdc.OutboxDDLMySQL) are routed as the envelopes they carry.
package mysql
