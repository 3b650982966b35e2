// Package kafka is the sink that republishes events to other Kafka topics:
// a consumer reads a topic, dedupes, and forwards each event (the same
// envelope, id included) to the topic a routing function picks, for
// example to split one materialized topic by entity type or to feed a
// downstream team's topic.
//
// Republishing is at least once: a retried batch publishes again, but
// every copy carries the original envelope id, so the consumers of the
// target topic drop the copies with their own dedupe step.
package kafka
