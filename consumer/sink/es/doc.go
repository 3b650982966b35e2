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
// Writes go through esutil.BulkIndexer and are checked item by item: a 429
// or 503 makes [Sink.Write] fail with an error for which [IsRetryable] is
// true (the consumer backs off and retries the whole batch, and nothing of
// it is marked done); any other rejected item fails the write with an
// [*ItemError] naming the document and the reason.
//
// One limit is Elasticsearch's own: a delete's version is remembered only
// for index.gc_deletes (60s by default), so an event older than a delete
// that arrives after that re-creates the document.
package es
