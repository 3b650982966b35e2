// Package consumer is slate's idempotent consumer runtime: it reads
// envelopes from Kafka in batches, hands them to a [Handler], and commits
// offsets only after the handler succeeded, so a crash or a rebalance
// replays and never skips.
//
// Handlers compose: [Deduplicate] drops events whose id was already applied
// (claiming ids before the write and recording them as done only after it),
// and [ToSinks] writes a batch to every sink (Elasticsearch, the Hive audit
// table, another topic). The enricher is a Handler too.
//
// A record that cannot be decoded is poison: it is logged with its topic,
// partition and offset, counted, and sent to <topic>.dlq when a dead-letter
// publisher is configured; it never stops the partition.
package consumer
