// Package consumer is slate's idempotent consumer runtime: it reads
// envelopes from Kafka in batches, hands them to a [Handler], and commits
// offsets only after the handler succeeded, so a crash or a rebalance
// replays and never skips.
//
// Handlers compose: [Deduplicate] drops events whose id was already applied
// (claiming ids before the write and recording them as done only after it),
// and [ToSinks] writes a batch to every sink (Elasticsearch in
// consumer/sink/es, the Hive audit table in consumer/sink/hive, another
// topic in consumer/sink/kafka). The enricher is a Handler too.
//
// A failed batch is retried with backoff, as a whole, until it succeeds;
// while it waits, the consumer pauses its partitions and keeps polling so
// that it stays in the group (see [Consumer]). A dedupe store that cannot
// be reached fails the batch the same way ([ErrDedupeUnavailable]), unless
// [DedupeConfig.FailOpen] lets the sinks' own idempotency carry it. A done
// record that fails after the sinks wrote ([ErrDedupeDone]) is retried as
// bookkeeping only: the events are not written again, and the failure
// never counts toward [WithMaxAttempts].
// [WithConcurrency] splits a batch by key into lanes that run at once while
// each key keeps its order.
//
// A record that cannot be decoded is poison (bytes that are not an
// envelope, or a schema id the registry answers it does not know; a
// registry that is unreachable or fails with a 5xx is retried instead): it
// is logged with its topic,
// partition and offset, counted once, and sent to <topic>.dlq when a
// dead-letter publisher is configured; it never stops the partition. A
// record too large for <topic>.dlq goes there as a truncated copy that
// names where the whole record is (see [WithDeadLetter]). An event a sink
// refuses for good (a [sink.RejectedError]: a mapping conflict, data that
// is not a document) goes to <topic>.dlq with stage "sink" while the rest
// of the batch is done; without a dead-letter publisher it is retried
// instead, so nothing is dropped. With [WithMaxAttempts], an event that
// keeps failing for a reason that is not temporary is isolated (its lane
// is run one event at a time) and dead-lettered with stage "handler".
// [ReadDeadLetters] and [Replay] list and re-publish dead letters (the
// `slate dlq` command) to the origin's replay topic (<topic>.dlq.replay),
// which a consumer with a dead-letter publisher reads beside each of its
// topics, taking only its own group's records. An event some sinks wrote
// and another refused gets per-sink done marks, so that its replay, or any
// other copy of it, reaches only the sinks that refused it (see
// [Deduplicate]).
//
// Real clusters: [WithSASL] (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and
// [WithTLS] (CA, client certificate and key files), the same options as
// the producer's, apply to [New] and [ReadDeadLetters]. Both wait at most
// [WithStartTimeout] for a broker and fail with [ErrAuth] as soon as the
// brokers refuse the credentials, or [ErrUnreachable].
//
// Metrics (Prometheus, on the Registerer of [WithMetrics], by default
// prometheus.DefaultRegisterer, registered by [New]): records read
// (slate_consumer_records_total, a rate gives records/s), duplicates
// dropped, retries, pauses, rebalances, dead letters, batch time, lag per
// partition (slate_consumer_lag, kept up to date while paused too), how
// long the current batch has been failing (slate_consumer_stalled_seconds),
// and per sink the write time, errors,
// events and freshness (slate_sink_*).
//
// Exactly once: with [WithTransactional] and a [TransactionalHandler] (the
// enricher's TxHandler is one) the consumer reads read_committed and hands
// each batch's offsets to the handler, which commits them in the same Kafka
// transaction as its outputs; the consumer never commits on its own then.
package consumer
