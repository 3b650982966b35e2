// Package titlesv1 is the Go code generated from titles.proto: the Title
// message, the request and response messages, and the Titles gRPC client
// and server interfaces. The service itself is implemented by
// github.com/slatehq/slate/services/titles; enrichers use [NewTitlesClient]
// and BatchGetTitles to look up the current state of titles named by ID-only
// change events.
//
// Do not edit the .pb.go files; edit titles.proto and run go generate ./proto.
package titlesv1
