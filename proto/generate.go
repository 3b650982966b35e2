// Package proto holds slate's gRPC contracts: the .proto files of the sample
// services (titles/v1, ...) and, next to each, the Go code protoc generates
// from it. Services implement the generated servers; enrichers and the
// GraphQL service call the generated clients to read the current state of
// an entity after an ID-only change event.
//
// The generated files are committed. After editing a .proto file, run
// go generate ./proto (which runs generate.sh: it builds the protoc plugins
// pinned in go.mod and runs protoc on every .proto file here).
package proto

//go:generate bash generate.sh
