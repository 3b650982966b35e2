// Package service is what the studio's owner services (titles, schedules,
// finance) share: the sentinel errors and their gRPC status codes, field
// validation errors, the checks of ids and expected versions, the
// publishing of ID-only change events, and [Serve], which runs one gRPC
// service with health, server reflection, strict request decoding and the
// TLS rules.
//
// The services re-export what their callers need, so that nothing outside
// services/ imports this package.
package service
