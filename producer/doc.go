// Package producer is the SDK that studio services embed to put events on
// the bus: ID-only change events keyed by entity id (the start of delayed
// materialization), and any other canonical envelope (materialized records
// from the enricher, CDC events from the sidecar).
//
// A [Producer] wraps an idempotent confluent-kafka-go producer with acks=all.
// Publish and PublishChange return only after the broker acknowledged every
// record, or with a *[PublishError] that says what failed and whether a retry
// can help ([IsRetryable]). PublishAsync returns at once and reports each
// record to a callback; Flush and Close wait for what is outstanding.
//
// Errors name their cause and match sentinels with errors.Is: [ErrTooLarge]
// (message.max.bytes of the broker, the topic or the client),
// [ErrUnknownTopic] (the topic is missing and the cluster does not create
// topics on first use), [ErrUnreachable] (no broker answered [New]),
// [ErrAuth] (credentials or ACLs refused), [ErrConfig] and [ErrClosed].
//
// Real clusters: [WithSASL] (PLAIN, SCRAM-SHA-256, SCRAM-SHA-512) and
// [WithTLS] (CA, client certificate and key files) map to librdkafka's
// security.protocol, sasl.* and ssl.* settings (a refused login fails [New]
// at once, with [ErrAuth]); [WithKafkaConfig] passes any
// other librdkafka setting through. [WithBrokerMessageLimit] sizes the
// client's record limit to what the brokers and topics accept (dead-letter
// producers use it). librdkafka's own log lines go to the logger of
// [WithLogger].
//
// Transactional outbox: instead of publishing, a service that writes its
// own database can insert the event into the slate_outbox table in the same
// transaction as the change ([Outbox.WriteChange] for pgx, and
// [Outbox.WriteChangeMySQL] for database/sql on MySQL or MariaDB). The CDC
// sidecar publishes each committed row to <prefix><entity>.changes
// (studio.<entity>.changes unless [WithTopicPrefix] says otherwise), so an
// event exists exactly when its change was committed. The table's DDL is
// [OutboxDDLPostgres] / [OutboxDDLMySQL] ([EnsureOutbox],
// [EnsureOutboxMySQL]). These are the names here of package outbox, which
// builds without cgo, for a service that writes its outbox but does not
// publish itself.
package producer
