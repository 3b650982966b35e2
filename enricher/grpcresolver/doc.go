// Package grpcresolver is an enricher resolver over any unary gRPC method,
// for services slate has no generated Go code for. A [Spec] names the
// target, the method and where in its messages the ids, records, versions
// and tombstones are; [New] loads the method's descriptors (from the
// target's server reflection, or from a protoc descriptor set file),
// checks every setting against them, derives the Avro schema of the
// records and returns a [Resolver]. Calls carry dynamic messages
// (dynamicpb) through the connection's proto codec.
//
//	r, err := grpcresolver.New(ctx, grpcresolver.Spec{
//		Target:       "titles:9090",
//		RPC:       "slate.titles.v1.Titles/BatchGetTitles",
//		RecordsField: "titles",
//		VersionField: "version",
//	})
//	// r is an enricher.Resolver; r.Schema() is the records' Avro schema.
//
// The method kinds are those of a pipeline ([enricher.MethodBatchGet],
// [enricher.MethodGet], [enricher.MethodDependents]): batch_get makes one
// call per Resolve with every id (the enricher already bounds the ids of
// one lookup), get one unary call per id a few at a time, NOT_FOUND
// meaning the entity is gone, and dependents maps changed ids to the ids
// to re-materialize, for a fan-out.
//
// # Avro schema of a record
//
// The record message becomes an Avro record of the same full name (the
// protobuf package is the namespace; a message declared inside another
// has the outer message's full name as namespace). Fields keep their
// protobuf names and order:
//
//   - bool, string, bytes, float and double map to the Avro type of the
//     same name; int32, sint32 and sfixed32 to int; int64, sint64 and
//     sfixed64 to long; uint32 and fixed32 to long; uint64 and fixed64 to
//     long, and a value above the int64 range fails the record (an error
//     naming the field) rather than wrapping around.
//   - An enum becomes an Avro enum of its value names, defaulting to the
//     first value. A number the descriptors do not know (a server newer
//     than its descriptor set) becomes that first value.
//   - A message field becomes ["null", record]: null when unset. A
//     message used more than once is defined once and referred to by
//     name. A message that contains itself (directly or not) has no Avro
//     form: New fails naming it. google.protobuf.Struct and Value are such
//     messages.
//   - google.protobuf.Timestamp becomes a long with logical type
//     timestamp-micros (microseconds since the epoch, UTC; nanoseconds
//     below a microsecond are dropped), and the wrapper types
//     (google.protobuf.StringValue, Int64Value, ...) their inner type;
//     as message fields both are nullable: ["null", T].
//   - A repeated field becomes an array, a map field an Avro map. Avro
//     map keys are strings: bool and integer keys are written in decimal
//     ("true", "42").
//   - A proto3 optional (or proto2 optional) scalar becomes ["null", T].
//   - A oneof becomes one field named after the oneof, a union of null
//     and its members' types, null when no member is set. When two
//     members would have the same Avro type (two strings, a long and a
//     timestamp) every member of that oneof is wrapped in a record named
//     after the member, in the namespace <message>.<oneof>, with one
//     field "value", so the union says which member was set.
//
// Fields without presence default to their protobuf zero value, nullable
// ones to null, arrays and maps to empty: a field added to the message
// keeps the schema backward compatible.
//
// The Go value of a record is the map[string]any that hamba/avro encodes
// under that schema: int32, int64, float32, float64, bool, string, []byte,
// time.Time (timestamps), []any, map[string]any, and, for a union,
// map[string]any{<member type name>: value} or nil.
//
// # Errors
//
// Errors of New about a setting wrap [ErrSpec] (and so
// [enricher.ErrConfig]) and name the setting by its YAML name: a method
// the service does not have, an ids field that is missing or not a
// repeated string, a records field that is not a message, an id or
// version field of the wrong type. A target that cannot be reached is a
// retryable error ([enricher.IsRetryable]), as are the calls' transient
// gRPC codes (UNAVAILABLE, DEADLINE_EXCEEDED, ...): the enricher retries
// them.
package grpcresolver

//go:generate bash testdata/generate.sh
