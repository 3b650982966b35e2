// Package registry is slate's own schema registry: an HTTP server that speaks
// the Confluent Schema Registry REST API for Avro schemas, so that every
// Confluent-compatible client (hamba/avro's registry client, which
// [github.com/slatehq/slate/schema.Codec] uses, confluent-kafka-go, the
// Confluent serializers) works against it unchanged.
//
// In the slate flow it is the embedded default of the schema registry, for
// when no Confluent Schema Registry is configured (`slate registry` serves
// it, by convention on port 8081): producers register the envelope schema
// under each topic's value subject, and consumers fetch writer schemas by
// id to decode. Tests start it with httptest.
//
// Semantics follow Confluent's server:
//
//   - Schema ids are global and stable. The same schema (compared after
//     normalising its JSON: whitespace, key order and {"type":"int"} versus
//     "int" do not matter; docs, defaults and custom properties do)
//     registered under another subject reuses its id; registering a schema a
//     subject already has returns the existing id.
//   - New versions are checked against the subject's compatibility level
//     (BACKWARD by default; BACKWARD, FORWARD and FULL against the latest
//     live version, their _TRANSITIVE forms against every live version;
//     NONE skips the check) by Avro's resolution rules, with a checker whose
//     cost is linear in the schemas' size; the check runs outside the write
//     lock, and a registration is re-checked if the subject changed
//     meanwhile.
//   - Deletes are soft first (DELETE_SUBJECT record or a version marked
//     deleted), then permanent with ?permanent=true.
//   - Errors are {"error_code": n, "message": "..."} with Confluent's codes
//     (see the Code constants).
//
// Hostile input is bounded: a schema over 1 MiB or 10000 record fields
// ([WithMaxSchemaBytes], [WithMaxFields]) is refused with 42209, Confluent's
// code for a schema too large (its server sends it when a schema does not
// fit a _schemas record; 42201 stays for schemas that do not parse); a
// schema that panics the Avro parser is answered 42201; a subject that is
// empty, over [MaxSubjectBytes], not UTF-8 or holds control characters is
// refused with 42208; errors quote at most a short prefix of the input. A
// _schemas record that cannot be applied is skipped with a warning, on
// replay and while following. When every version using a schema is
// permanently deleted, the registry lets its text go and keeps only a hash,
// so that the same schema registered again gets its old id; no id is ever
// given to another schema.
//
// Access: [WithUsers] turns on HTTP basic authentication (401 with
// 40101, readonly users 403 with 40301); [WithReadOnly] serves Confluent's
// READONLY mode (changes 422 with 42205). [ListenConfig] serves over TLS and
// mutual TLS with bounded timeouts, and refuses a non-loopback address
// without authentication unless told it is meant (--insecure-bind).
//
// State is an append-only log of [Record]s shaped like the records of
// Confluent's _schemas topic (SCHEMA, CONFIG and DELETE_SUBJECT keys); the
// server replays a [Store] at start and appends every change to it before
// applying it, so a durable store (a file, a compacted Kafka topic) only has
// to keep records in order. [MemoryStore] keeps them in memory, and lets
// the text of a permanently deleted schema go (its id stays taken);
// [KafkaStore] keeps them in a compacted _schemas topic, so a restarted
// registry, or a second one started over the same topic, serves the same
// ids. [KafkaSASL] and [KafkaTLS] give its Kafka clients SASL and TLS, as
// producer.WithSASL and producer.WithTLS do a producer.
//
// Not supported: schema references, JSON Schema and Protobuf, changing the
// mode over HTTP (PUT /mode; the mode is set at start), IMPORT mode,
// contexts and metadata/rule sets. Requests that use references or another schema type are rejected
// with 42201 rather than silently misread.
package registry
