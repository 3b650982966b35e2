// Package schema holds the contract every slate stage shares: the canonical
// envelope (a CloudEvents 1.0 event that also carries Debezium-style change
// data), its Avro schema, the Confluent wire format (magic byte, schema id,
// Avro binary), the ce_* Kafka headers, and a registry-backed codec.
//
// Producers encode with a [Codec]; the enricher and consumers decode with the
// same [Codec], which resolves the writer's schema (looked up by id in the
// registry) against the reader's, so old readers understand new writers
// within the registry's compatibility rules. A [Serde] does the same for
// the records an envelope carries as data, registering them under a subject
// its [NameStrategy] names.
//
// Decoding is bounded, since records and writer schemas come from the
// network: a writer schema whose arrays or maps hold items that take no
// bytes is refused ([ErrZeroSizeItems]), a record that declares more items
// or bytes than it holds or than the [Limits] allow is refused
// ([ErrLimit]), and a decode called after its ctx ended returns ctx's
// error. Both refusals wrap [ErrDecode]: the record is poison.
package schema
