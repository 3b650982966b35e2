// Package finance is the owner service of the Budget entity and of the
// exchange rates budgets are reported in: the gRPC server of
// slate.finance.v1.Finance (github.com/slatehq/slate/proto/finance/v1). A
// budget belongs to one title and is keyed by the title's id: its line
// items (category, amount, currency, spend profile) and its actuals (what
// was spent, by line item and month). The money arithmetic is that of the
// cashflow subpackage: integer minor units of ISO 4217 currencies, rates
// as exact decimals, spend profiles such as "production" or
// "before_release:6".
//
// Every successful write publishes an ID-only change event: entity type
// "budget" ([EntityType]) with the title id, or "rate" ([RateEntityType])
// with the pair's id such as "EUR-USD"; the operation (CREATE for a put of
// a new id, UPDATE for a put over one, DELETE); and the new version as the
// event's sequence. Pipelines consume the events from studio.budget.changes
// and call BatchGetBudgets to read the current state, and read all rates
// into their reporting currency with ListRates.
//
// Budgets and rates are kept in a [Store]; versions start at 1 and grow by
// one on every write, deletes included, and a budget put again after a
// delete continues after the delete's version, so sequences stay monotonic
// per id. Two stores come with the package:
//
//   - [BoltStore] keeps them in a bbolt file that survives a restart. The
//     [Server] publishes each event through a [Publisher] after the write
//     is committed, outside its transaction (a dual write). If publishing
//     fails, the RPC returns UNAVAILABLE but the write stays applied and its
//     event is lost: consumers keep the state of the previous event until
//     the next write of the same id, whose event carries the whole current
//     state by id. A retried put gets a new version and so a new event,
//     which repairs the loss; a retried delete gets NOT_FOUND and does not.
//   - [PostgresStore] writes each change and its event, a row of the outbox
//     table that the CDC sidecar publishes, in one transaction: a rolled
//     back write leaves no event and a committed one always has its event,
//     so nothing is lost. `slate cdc` on the store's database publishes the
//     events; with --tables <schema>.slate_outbox the publication it
//     creates holds the outbox alone, so the store's tables are not also
//     streamed as row events.
//
// [Serve] runs a [Server] on a listener together with the standard gRPC
// health service and server reflection, with the limits and TLS rules of
// the titles service: [WithTLS] serves over TLS or mTLS ([ServerTLS], and
// [ClientTLS] for clients); on a listener beyond the loopback interface
// Serve refuses plaintext unless [WithInsecure] says so.
package finance
