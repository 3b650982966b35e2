// Package enricher is slate's delayed materialization stage. Producers say
// only which entity changed; the enricher consumes those ID-only events,
// asks the owner service for the entity's current state (through a
// [Resolver], typically a gRPC BatchGet), and publishes the full record to
// studio.<entity>.materialized. Because the state is read at enrichment
// time, events that arrive out of order, or twice, cannot leave a view
// with stale data: the last materialization always carries the newest
// state the owner knows.
//
// # Flow of one batch
//
// An [Enricher] is a consumer.Handler: run it under a consumer.Consumer,
// which commits input offsets only after Handle returned nil, and Handle
// returns only after the broker acknowledged every output record.
// Handle
//
//  1. coalesces the batch by subject: ten changes of one id are one
//     lookup and one output (slate_enricher_coalescing_ratio);
//  2. fans out: a change of another entity type named by a [FanOut] adds
//     the ids its [Dependents] name (a schedule change re-materializes its
//     title);
//  3. splits the ids into chunks of [WithMaxLookup] and resolves them on a
//     bounded pool of [WithConcurrency] workers; each id is in one chunk,
//     and a chunk holds its ids from before the lookup until its outputs
//     are acknowledged, so work is serialized by OUTPUT key, also across
//     batches handled at once (consumer lanes split by the input's
//     subject, and a fan-out makes one output key of many inputs), while
//     different keys run in parallel;
//  4. adds [Join] fields (title + schedules + budget) from other
//     resolvers, and
//  5. publishes one envelope per id whose sequence is the owner's version
//     (with joins, the view's version, [ViewVersion]: it grows whenever
//     any record the view is built from changes, so the sinks, which
//     refuse a sequence not above the one they hold, take a
//     re-materialization caused by a joined record) and whose id is a name-based UUID (version 5) of the view (the
//     output topic), the entity type, the id, the sequence and the op: a
//     retried batch, or another replica after a crash before the commit,
//     publishes the same state under the same id, and the consumers'
//     dedupe drops the repeat.
//
// # Deletes and NOT_FOUND
//
// A resolver leaves out the ids the owner does not have (or returns a
// tombstone, [Record.Deleted], when it knows the delete's version), and
// the enricher publishes a DELETE for each. A resolver built on a unary
// Get must therefore treat NOT_FOUND as "absent", not as an error ([PerID]
// does): for the view, NOT_FOUND on any change (not only on a DELETE
// event) means the entity is gone. Ids reached only through a fan-out are
// skipped when missing; their own DELETE event removes them.
//
// The DELETE must beat the last live version in the sinks, which refuse
// an event whose sequence is not above the one they hold. Its sequence is
// the highest of the sequences of the id's coalesced change events (not
// the last one read: events can arrive out of order) and of the version
// of the resolver's tombstone. When all of those are 0 (a producer that
// publishes changes without versions, a resolver without tombstones) the
// DELETE carries [TombstoneSequence], above every live version.
//
// # Failures
//
// Every resolver call is retried with exponential backoff and jitter
// ([RetryPolicy]) when it fails with a retryable gRPC code (UNAVAILABLE,
// DEADLINE_EXCEEDED, RESOURCE_EXHAUSTED, ABORTED; see [IsRetryable]), and
// runs behind a circuit breaker per resolver (closed, open, half-open).
// When the retries are spent Handle returns a [*LookupError] and the
// consumer retries the batch with its own backoff. With [WithDeadLetter],
// a batch that failed [WithDeadLetterAfter] times has its input events
// re-encoded to <topic>.dlq with the error, attempts and origin in
// headers, and Handle returns nil so the partition moves on. Failures
// behind an open breaker never lead to dead letters: a dependency that is
// down makes the enricher wait, not drop work.
//
// # Side inputs and configuration
//
// A [SideInput] is a dataset loaded by a function and refreshed in the
// background (default every 15 minutes); a failed refresh keeps serving the
// old value. [SideResolver] makes one a join. A [Pipeline] is the YAML form
// of an enricher's configuration, bound to live resolvers with
// [Pipeline.Options].
//
// Exactly once: [NewTransactional] wraps an enricher so that its outputs
// and the input offsets commit in one Kafka transaction (run it with
// consumer.WithTransactional and a producer built with
// producer.WithTransactionalID); a crash then never emits a view twice to
// read_committed readers.
//
// Metrics are Prometheus series named slate_enricher_*, on the Registerer
// of [WithMetrics] (side inputs: [WithSideInputMetrics]), by default
// prometheus.DefaultRegisterer.
package enricher
