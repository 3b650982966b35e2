package consumer

import (
	"context"
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"
)

// lagEvery is how often a paused consumer refreshes its lag gauges.
const lagEvery = time.Second

// stall is what the consumer knows of the batch that is failing, for the
// gauges it keeps true while it waits: slate_consumer_stalled_seconds and,
// as nothing is committed meanwhile, slate_consumer_lag.
type stall struct {
	since time.Time          // when the current batch first failed; zero when none is
	lagAt time.Time          // when the lag gauges were last refreshed
	admin *kafka.AdminClient // reads the watermarks; nil if it could not be made
}

// start marks the current batch as failing from now on.
func (s *stall) start(stalled prometheus.Gauge) {
	s.since = time.Now()
	stalled.Set(0)
}

// end marks the current batch as done (or given up).
func (s *stall) end(stalled prometheus.Gauge) {
	s.since = time.Time{}
	stalled.Set(0)
}

// tick updates the stall gauge and, every lagEvery, the lag gauges of the
// assigned partitions: high watermark minus committed offset (the low
// watermark where the group never committed).
func (c *Consumer) tick(kc *kafka.Consumer, as []kafka.TopicPartition) {
	s := &c.stall
	if !s.since.IsZero() {
		c.m.stalledSeconds.WithLabelValues(c.cfg.group).Set(time.Since(s.since).Seconds())
	}
	if s.admin == nil || len(as) == 0 || time.Since(s.lagAt) < lagEvery {
		return
	}
	s.lagAt = time.Now()
	if err := c.refreshLag(kc, as); err != nil {
		c.cfg.log.Warn("lag refresh failed", "group", c.cfg.group, "err", err)
	}
}

func (c *Consumer) refreshLag(kc *kafka.Consumer, as []kafka.TopicPartition) error {
	committed, err := kc.Committed(as, int(lagEvery.Milliseconds()))
	if err != nil {
		return err
	}
	at := make(map[tp]int64, len(committed))
	var never []kafka.TopicPartition
	for _, p := range committed {
		if p.Error != nil || p.Topic == nil {
			continue
		}
		k := tp{*p.Topic, p.Partition}
		if p.Offset >= 0 {
			at[k] = int64(p.Offset)
		} else {
			never = append(never, p)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), lagEvery)
	defer cancel()
	if len(never) > 0 {
		low, err := c.listOffsets(ctx, never, kafka.EarliestOffsetSpec)
		if err != nil {
			return err
		}
		for k, o := range low {
			at[k] = o
		}
	}
	ps := make([]kafka.TopicPartition, 0, len(at))
	for k := range at {
		ps = append(ps, kafka.TopicPartition{Topic: &k.topic, Partition: k.part})
	}
	high, err := c.listOffsets(ctx, ps, kafka.LatestOffsetSpec)
	if err != nil {
		return err
	}
	for k, h := range high {
		c.m.lag.WithLabelValues(c.cfg.group, k.topic, strconv.Itoa(int(k.part))).Set(float64(max(h-at[k], 0)))
	}
	return nil
}

// listOffsets returns the offsets spec names of ps, in one request per
// partition leader; partitions the broker did not answer for are left out.
func (c *Consumer) listOffsets(ctx context.Context, ps []kafka.TopicPartition, spec kafka.OffsetSpec) (map[tp]int64, error) {
	req := make(map[kafka.TopicPartition]kafka.OffsetSpec, len(ps))
	for _, p := range ps {
		req[kafka.TopicPartition{Topic: p.Topic, Partition: p.Partition}] = spec
	}
	res, err := c.stall.admin.ListOffsets(ctx, req)
	if err != nil {
		return nil, err
	}
	out := make(map[tp]int64, len(res.ResultInfos))
	for p, r := range res.ResultInfos {
		if r.Error.Code() == kafka.ErrNoError && p.Topic != nil && r.Offset >= 0 {
			out[tp{*p.Topic, p.Partition}] = int64(r.Offset)
		}
	}
	return out, nil
}
