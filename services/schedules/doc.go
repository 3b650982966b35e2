// Package schedules is the owner service of the Schedule entity: the gRPC
// server of slate.schedules.v1.Schedules
// (github.com/slatehq/slate/proto/schedules/v1). A schedule belongs to one
// title and is keyed by the title's id: its production start and end dates
// and its release date in each territory (ISO 3166-1 alpha-2).
//
// Every successful write (put, delete) publishes an ID-only change event
// through a [Publisher]: entity type "schedule" ([EntityType]), the title
// id, the operation (CREATE for a put of a title without a schedule, UPDATE
// for a put over one, DELETE) and the schedule's new version as the event's
// sequence. Pipelines consume those events from studio.schedule.changes and
// call BatchGetSchedules to read the current state, so the order in which
// the events arrive does not decide the result. BatchGetSchedules answers a
// deleted schedule with its tombstone (deleted set, at the delete's
// version), so that a view joining it grows its version on the delete (see
// [Server.BatchGetSchedules]).
//
// Schedules are kept in a [Store]; [BoltStore] keeps them in a bbolt file
// that survives a restart. Versions start at 1 and grow by one on every
// write, deletes included, and a schedule put again after a delete
// continues after the delete's version, so sequences stay monotonic per id,
// across restarts too.
//
// Publishing happens after the write is committed to the store, outside its
// transaction (a dual write). If it fails, the RPC returns UNAVAILABLE but
// the write stays applied and its event is lost: consumers keep the state
// of the previous event until the next write of the same schedule, whose
// event carries the whole current state by id. A caller that retries the
// put gets a new version and so a new event, which repairs the loss; a
// retried delete gets NOT_FOUND and does not.
//
// [Serve] runs a [Server] on a listener together with the standard gRPC
// health service and server reflection, with the limits and TLS rules of
// the titles service: [WithTLS] serves over TLS or mTLS ([ServerTLS], and
// [ClientTLS] for clients); on a listener beyond the loopback interface
// Serve refuses plaintext unless [WithInsecure] says so.
package schedules
