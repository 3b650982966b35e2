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
//     NONE skips the check) with hamba/avro's schema compatibility checker.
//   - Deletes are soft first (DELETE_SUBJECT record or a version marked
//     deleted), then permanent with ?permanent=true.
//   - Errors are {"error_code": n, "message": "..."} with Confluent's codes
//     (see the Code constants).
//
// State is an append-only log of [Record]s shaped like the records of
// Confluent's _schemas topic (SCHEMA, CONFIG and DELETE_SUBJECT keys); the
// server replays a [Store] at start and appends every change to it before
// applying it, so a durable store (a file, a compacted Kafka topic) only has
// to keep records in order. [MemoryStore] keeps them in memory;
// [KafkaStore] keeps them in a compacted _schemas topic, so a restarted
// registry, or a second one started over the same topic, serves the same
// ids.
//
// Not supported: schema references, JSON Schema and Protobuf, the /mode
// endpoints (the registry is always READWRITE), contexts and metadata/rule
// sets. Requests that use references or another schema type are rejected
// with 42201 rather than silently misread.
package registry
