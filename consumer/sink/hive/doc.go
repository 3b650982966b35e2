// Package hive is the audit sink of the consumer: it appends every event it
// receives, as it arrived, to a Parquet table laid out in Hive partitions on
// a filesystem. Hive, Spark, Trino or DuckDB read the table; the backfill
// replays it through the same enricher and consumer code.
//
//	consume -> dedupe -> sinks: [Elasticsearch (current state), Hive (every event)]
//
// Layout, partitioned by event time in UTC:
//
//	<root>/<table>/_hive.sql
//	<root>/<table>/dt=2024-05-01/hour=13/part-<topic>-<partition>-<firstOffset>-<lastOffset>.parquet
//
// Each Write turns a batch into one file per (dt, hour, topic, partition).
// A file is written under a hidden temporary name in its final directory,
// fsynced and renamed, so readers never see part of one. Its name is made
// of the Kafka coordinates of its rows, so a replay of the same offsets
// replaces the same file instead of adding rows; a replay whose offsets
// overlap an existing file's (a crash replays from the last commit, minus
// events the dedupe store already saw) is merged with it, by offset, into
// one file. The table is therefore exactly-once per Kafka offset.
//
// _hive.sql holds the CREATE EXTERNAL TABLE statement and one ALTER TABLE
// ... ADD IF NOT EXISTS PARTITION line per partition directory; it is
// rewritten atomically whenever a partition appears.
package hive
