// Package enricher is slate's delayed materialization stage. Producers say
// only which entity changed; the enricher consumes those ID-only events,
// asks the owner service for the entity's current state (through a
// [Resolver], typically a gRPC BatchGet), and publishes the full record to
// studio.<entity>.materialized. Because the state is read at enrichment
// time, events that arrive out of order, or twice, cannot leave a view
// with stale data: the last materialization always carries the newest
// state the owner knows.
//
// An [Enricher] is a consumer.Handler: run it under a consumer.Consumer,
// which commits input offsets only after Handle returned, and Handle
// returns only after the broker acknowledged every output record.
package enricher
