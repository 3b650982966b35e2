package consumer

import "sync/atomic"

// memberState is what a running consumer knows of its place in the group.
type memberState struct {
	joined   atomic.Bool  // an assignment arrived since Run started
	assigned atomic.Int64 // partitions assigned now
}

func (m *memberState) assign(n int) {
	m.assigned.Add(int64(n))
	m.joined.Store(true)
}

func (m *memberState) revoke(n int) { m.assigned.Add(-int64(n)) }

func (m *memberState) stopped() {
	m.joined.Store(false)
	m.assigned.Store(0)
}

// Ready reports whether the consumer is running and has joined its group:
// the group coordinator gave it an assignment, which may hold no partition
// when the group has more members than the topics have partitions. It is
// what a readiness probe (/healthz) asks. Ready is false before [Consumer.Run]
// joined, during the first rebalance, and after Run returned.
func (c *Consumer) Ready() bool { return c.state.joined.Load() }

// Assigned returns the number of partitions assigned to the consumer now
// (0 when it is not running).
func (c *Consumer) Assigned() int { return int(c.state.assigned.Load()) }
