// Package bleve is the embedded search sink: an Elasticsearch-compatible
// store for a laptop, with no cluster to run. It keeps one Bleve index per
// entity type in a directory and gives the same results as the es sink for
// the same stream of events.
//
// In the flow it sits behind the consumer's dedupe step
// (consumer -> dedupe -> sinks), next to or instead of the es sink.
// CREATE, UPDATE and SNAPSHOT events index the entity's record (the
// envelope's data, decoded from Confluent-framed Avro or JSON, with the
// envelope's fields under "slate"); DELETE removes it. TRUNCATE is skipped.
//
// Versions are external, as in the es sink: the envelope's sequence is the
// document's version. Each index is a Bleve index directory
// (<dir>/studio-<entitytype>) that answers searches, and beside it a bbolt
// file (<dir>/studio-<entitytype>.versions) that holds every document's
// version and source and the tombstones of deleted ones. A write updates
// the Bleve index, then the versions, each durably; a crash in between
// leaves the older version, so the retried batch is applied again. As in
// Elasticsearch with version_type=external, an event (a DELETE too) is
// applied only when its sequence is greater than the stored version; an
// equal or older one is ignored as already applied. A DELETE leaves a
// tombstone with its version, so an event with an older or equal version
// replayed later cannot bring the document back. Unlike
// Elasticsearch's index.gc_deletes, tombstones are kept for good. Replays
// are therefore no-ops and deduplication is an optimisation.
//
// A document is replaced whole, except that an event naming unchanged
// fields (the CloudEvents extension "unchanged", see package sink) keeps
// those fields from the stored document, as the es sink does.
//
// [Sink.Search] runs a Bleve query string ("name:heat slate.subject:t-1")
// against one entity type's index; [Sink.Get] returns one document and its
// version.
package bleve
