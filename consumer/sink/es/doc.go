// Package es is the Elasticsearch sink: it keeps one search index per
// entity type in step with the materialized topics.
//
// In the flow it sits behind the consumer's dedupe step
// (consumer -> dedupe -> sinks). CREATE, UPDATE and SNAPSHOT events index
// the entity's record (the envelope's data, decoded from Confluent-framed
// Avro or JSON, with the envelope's fields under "slate"); DELETE removes
// it. Every write carries version_type=external with the envelope's
// sequence as the version, so Elasticsearch itself refuses an older or a
// replayed event (409), which the sink counts as success: the store
// already holds that state or a newer one. Deduplication is therefore an
// optimisation; correctness comes from the versions.
//
// Writes go out as bulk requests of at most the flush bytes each and are
// checked item by item: a 429 or a 5xx (on an item or on the whole
// request) or a transport failure makes [Sink.Write] fail with an error
// for which [IsRetryable] is true (the consumer backs off and retries the
// whole batch, and nothing of it is marked done). Any other refusal is
// for good: an [*ItemError] naming the document and the reason, returned
// inside a [sink.RejectedError] for the consumer to dead-letter while the
// rest of the batch is applied. Elasticsearch refuses a whole bulk request
// (HTTP 400 action_request_validation_exception) for one item with an id
// that is empty or longer than 512 bytes, or with a negative external
// version, so the sink checks those before sending and refuses only those
// events; a bulk request still refused as a whole with a 4xx other than
// 429 refuses every item in it.
//
// An index action replaces the whole document. An event that names
// unchanged fields (the CloudEvents extension "unchanged", see package
// sink) keeps those fields from the stored document: the sink reads it
// first, one GET per such event (Elasticsearch's update API does not take
// external versions), or takes it from an earlier event of the same batch.
//
// One limit is Elasticsearch's own: a delete's version is remembered only
// for index.gc_deletes (60s by default), so an event older than a delete
// that arrives after that re-creates the document.
package es
