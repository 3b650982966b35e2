// Package producer is the SDK that studio services embed to put events on
// the bus: ID-only change events keyed by entity id (the start of delayed
// materialization), and any other canonical envelope (materialized records
// from the enricher, CDC events from the sidecar).
//
// A [Producer] wraps an idempotent confluent-kafka-go producer with acks=all.
// Publish and PublishChange return only after the broker acknowledged every
// record, or with a *[PublishError] that says what failed and whether a retry
// can help ([IsRetryable]).
package producer
