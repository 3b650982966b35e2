// Package titles is the owner service of the Title entity: the gRPC server
// of slate.titles.v1.Titles (github.com/slatehq/slate/proto/titles/v1).
//
// It sits at the start of the flow. Every successful write (create, update,
// delete) publishes an ID-only change event through a [Publisher]: entity
// type "title", the title's id, the operation, and the title's new version as
// the event's sequence. Enrichers consume those events from
// studio.title.changes and call BatchGetTitles to read the current state,
// so the order in which the events arrive does not decide the result.
//
// Storage sits behind the small [Store] interface; [MemoryStore] is the
// in-memory default, and [BoltStore] keeps titles in a bbolt file across
// restarts. Versions start at 1 and grow by one on every write,
// deletes included, and a title created again after a delete continues
// after the delete's version, so sequences stay monotonic per id.
//
// Publishing happens after the write is stored, outside the store's
// transaction (a dual write). If it fails, the RPC returns UNAVAILABLE but
// the write stays applied and its event is lost; a caller that retries sees
// the applied write (ALREADY_EXISTS, a newer version, NOT_FOUND after a
// delete), and a create retried without an id creates a second title. A
// store that writes an outbox row in the same transaction as the change, read
// by the CDC sidecar, closes that window.
//
// [Serve] runs a [Server] on a listener together with the standard gRPC
// health service and server reflection. It reads requests of at most
// [DefaultMaxRecvMsgSize] bytes and [DefaultMaxConcurrentStreams] calls per
// connection, and checks every id a request names ([MaxIDLen] bytes, UTF-8,
// no spaces or control characters). [WithTLS] serves over TLS or mTLS
// ([ServerTLS], and [ClientTLS] for clients); on a listener beyond the
// loopback interface Serve refuses plaintext unless [WithInsecure] says so.
package titles
