// Package schedulesv1 is the Go code generated from schedules.proto: the
// Schedule message, the request and response messages, and the Schedules
// gRPC client and server interfaces. The service itself is implemented by
// github.com/slatehq/slate/services/schedules; pipelines use
// [NewSchedulesClient] and BatchGetSchedules to look up the current state
// of schedules named by ID-only change events.
//
// Do not edit the .pb.go files; edit schedules.proto and run go generate ./proto.
package schedulesv1
