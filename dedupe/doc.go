// Package dedupe records which events a consumer has already applied, so
// that a redelivered event costs a cache lookup instead of a sink write.
//
// It sits between the consumer's decode step and its sinks:
//
//	consume -> decode -> Claim(ids) -> sinks (fresh ids only) -> Done(ids) -> commit offsets
//	                                       \-- sink failed --> Release(ids) -> retry
//
// The key is the envelope's id (a UUIDv7). Claim takes a short lease on each
// id before the sink write, so two consumers racing on a redelivery do not
// both write; Done turns the lease into a done marker only after every sink
// succeeded, so a failed write leaves the id free for its retry (unlike a
// dedupe step that records the key before the handler runs and loses the
// event when the handler fails). Release gives a lease back at once instead
// of waiting for it to expire.
//
// Claim tells a done id ([Duplicate], dropped) from one whose lease another
// claim holds ([Held]): that holder may still fail, or may have died
// between its claim and its Done, so the consumer waits and claims again
// rather than dropping the event. After a crash the next owner of the
// partition therefore waits at most one lease before it applies what the
// dead consumer had in hand.
//
// Two stores implement [Store]: [Redis] (go-redis, works with a single node,
// Sentinel or Redis Cluster) for production, and [Memory], an in-process TTL
// store that is the default for `slate up` and for tests. Both pass the
// shared contract suite in package dedupetest.
package dedupe
