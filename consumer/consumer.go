package consumer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/internal/kafkaconf"
	"github.com/slatehq/slate/publish"
	"github.com/slatehq/slate/schema"
)

// ErrConfig is wrapped by every configuration error of [New].
var ErrConfig = errors.New("consumer: invalid config")

// DeadLetterPublisher writes a record, as it was read, to a dead-letter
// topic and returns after the broker acknowledged it. *producer.Producer
// implements it. It is [publish.DeadLetterPublisher], the one the
// enricher's dead letters go through too.
type DeadLetterPublisher = publish.DeadLetterPublisher

// Dead-letter headers, added to the record's own headers (see
// schema.AppendDeadLetterHeaders).
const (
	HeaderDLQError     = schema.HeaderDLQError
	HeaderDLQStage     = schema.HeaderDLQStage
	HeaderDLQTopic     = schema.HeaderDLQTopic
	HeaderDLQPartition = schema.HeaderDLQPartition
	HeaderDLQOffset    = schema.HeaderDLQOffset
	HeaderDLQGroup     = schema.HeaderDLQGroup
	HeaderDLQTruncated = schema.HeaderDLQTruncated
)

type config struct {
	brokers     string
	group       string
	topics      []string
	registry    schema.Registry
	batchSize   int
	linger      time.Duration
	backoff     time.Duration
	maxBackoff  time.Duration
	kafka       kafka.ConfigMap
	dlq         DeadLetterPublisher
	lanes       int
	commitSync  bool
	maxAttempts int
	log         *slog.Logger

	transactional bool // see WithTransactional

	sec          kafkaconf.Security    // see WithSASL, WithTLS
	startTimeout time.Duration         // see WithStartTimeout
	metrics      prometheus.Registerer // see WithMetrics
}

// WithSyncCommit commits offsets synchronously after every batch. By
// default a handled batch's offsets are stored locally and librdkafka
// commits them in the background (auto.commit.interval.ms, 1s), and on
// revocation and close; either way only offsets of handled records are
// ever committed. Synchronous commits shrink what a crash replays to at
// most one batch, at the cost of a broker round trip per batch.
func WithSyncCommit() Option { return func(c *config) { c.commitSync = true } }

// Option configures [New].
type Option func(*config)

// WithBrokers sets the bootstrap servers. Required.
func WithBrokers(b string) Option { return func(c *config) { c.brokers = b } }

// WithGroup sets the consumer group id. Required.
func WithGroup(g string) Option { return func(c *config) { c.group = g } }

// WithTopics sets the topics to consume. Required.
func WithTopics(t ...string) Option { return func(c *config) { c.topics = append(c.topics, t...) } }

// WithRegistry sets the schema registry used to decode envelopes. Required.
func WithRegistry(r schema.Registry) Option { return func(c *config) { c.registry = r } }

// WithBatch bounds a batch by count and by how long the first record of a
// batch may wait for more (defaults 500 and 20ms).
func WithBatch(size int, linger time.Duration) Option {
	return func(c *config) { c.batchSize, c.linger = size, linger }
}

// WithBackoff sets the first and the largest wait between retries of a
// failed batch (defaults 100ms and 10s); waits grow exponentially with
// jitter.
func WithBackoff(first, max time.Duration) Option {
	return func(c *config) { c.backoff, c.maxBackoff = first, max }
}

// WithKafkaConfig passes librdkafka settings through, by their librdkafka
// property name, each a string, a bool or a number; they override slate's
// defaults. A setting librdkafka does not know or accept fails
// [Consumer.Run] (and [ReadDeadLetters]).
func WithKafkaConfig(cm map[string]any) Option {
	return func(c *config) {
		for k, v := range cm {
			c.kafka[k] = v
		}
	}
}

// WithDeadLetter sends undecodable records (stage "decode") and events the
// sinks refused for good (stage "sink", see [sink.RejectedError]) to
// <topic>.dlq through p, with the cause and origin in headers. Without it,
// undecodable records are logged and counted, and refused events are
// retried like any failed batch, so that nothing is dropped unseen.
//
// A record larger than <topic>.dlq (or p's client) accepts, a failure no
// retry cures, is dead-lettered as a truncated copy: its value cut to
// [schema.DeadLetterTruncateBytes], its key and headers kept, and a
// [HeaderDLQTruncated] header holding the original value's size; the
// origin headers name the topic, partition and offset where the whole
// record stays for as long as the topic retains it ([Replay] refuses a
// truncated dead letter). If the truncated copy fails too, the batch is
// retried, as for any failed dead-letter write. Size p to the brokers'
// limit (producer.WithBrokerMessageLimit) so that only records the
// dead-letter topic itself refuses are truncated.
func WithDeadLetter(p DeadLetterPublisher) Option { return func(c *config) { c.dlq = p } }

// WithConcurrency splits each batch by a hash of the key (the envelope's
// subject) into n lanes that the handler runs on concurrently (default 1).
// Events of one key stay in one lane, in offset order; a batch is done, and
// committed, only when every lane succeeded, and a retry runs only the
// lanes that failed. The handler must be safe for concurrent use;
// [ToSinks] and [Deduplicate] are.
func WithConcurrency(n int) Option { return func(c *config) { c.lanes = n } }

// WithMaxAttempts bounds how often a bad event is retried. When a lane of
// a batch has failed n times with an error that is not temporary, the
// consumer runs that lane again one event at a time, in order, and sends
// each event that fails n times on its own to <topic>.dlq (stage
// "handler", the last error in a header); the rest of the lane is applied
// and the partition moves on. Temporary failures never count: errors
// matching [sink.ErrUnavailable] (a busy or unreachable store),
// [ErrDedupeUnavailable], [ErrDedupeDone], [ErrClaimHeld] and context
// errors are retried
// with backoff for as long as they last. It needs [WithDeadLetter]; the
// default, 0, retries every failure until it succeeds, as Kafka Connect's
// errors.tolerance=none stops rather than skipping.
func WithMaxAttempts(n int) Option { return func(c *config) { c.maxAttempts = n } }

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// Consumer runs a [Handler] over a consumer group's share of its topics.
//
// While a failed batch waits for its retry, the consumer pauses its
// assigned partitions and keeps polling, so it stays in the group however
// long the sinks are down (max.poll.interval.ms is never exceeded);
// records that arrive meanwhile are kept for the next batch, and the
// partitions resume when the batch succeeded.
//
// Rebalances are safe because the loop is sequential: a partition can be
// revoked only inside Poll, which runs between batches (everything handled
// is committed by then) or during a retry wait (nothing of the waiting
// batch is committed). Each partition has an assignment generation, bumped
// whenever it is assigned or revoked, and each record remembers the
// generation it was fetched under. Before each attempt the batch drops the
// records and events of partitions revoked meanwhile, or revoked and
// assigned back (another member may have handled and committed past them,
// and the client fetches them again from that commit), so two members
// never write the same partition's events at once: the new owner replays
// them from the last commit. Offsets are committed only for partitions
// whose generation did not change since their records were fetched, and
// never below what this member committed in that generation, so a late
// commit never moves the group's position back.
type Consumer struct {
	cfg     config
	h       Handler
	m       *metrics
	codec   *schema.Codec
	pending []*kafka.Message // read while paused, handled next
	stall   stall            // the failing batch, for the stall and lag gauges

	// poisoned holds the undecodable records of the current batch that
	// were counted and logged, so that a retry of their dead-lettering
	// does not count them again.
	poisoned map[*kafka.Message]bool

	gen       map[tp]uint64             // assignment generation per partition, see rebalance
	fetched   map[*kafka.Message]uint64 // the generation each record in flight was fetched under
	committed map[tp]committedOffset    // the last offset committed or stored per partition
	// uncommitted holds offsets whose commit the group refused (during a
	// rebalance: "generation id is not valid"); they are committed again
	// with the next batch, or on an idle poll, while the partition stays
	// in the same generation.
	uncommitted map[tp]committedOffset
	retryAt     time.Time // the next idle retry of uncommitted

	state memberState // for Ready and Assigned
}

// committedOffset is an offset this member committed (or stored) for a
// partition, in the partition's assignment generation gen.
type committedOffset struct {
	gen    uint64
	offset kafka.Offset
}

// New validates the configuration. Nothing connects until [Consumer.Run].
func New(h Handler, opts ...Option) (*Consumer, error) {
	cfg := config{
		batchSize:  500,
		lanes:      1,
		linger:     20 * time.Millisecond,
		backoff:    100 * time.Millisecond,
		maxBackoff: 10 * time.Second,
		kafka:      kafka.ConfigMap{},
		log:        slog.New(slog.DiscardHandler),

		startTimeout: defaultStartTimeout,
		metrics:      prometheus.DefaultRegisterer,
	}
	for _, o := range opts {
		o(&cfg)
	}
	switch {
	case h == nil:
		return nil, fmt.Errorf("%w: handler is nil", ErrConfig)
	case cfg.brokers == "":
		return nil, fmt.Errorf("%w: brokers is empty (WithBrokers)", ErrConfig)
	case cfg.group == "":
		return nil, fmt.Errorf("%w: group is empty (WithGroup)", ErrConfig)
	case len(cfg.topics) == 0:
		return nil, fmt.Errorf("%w: no topics (WithTopics)", ErrConfig)
	case cfg.registry == nil:
		return nil, fmt.Errorf("%w: no schema registry (WithRegistry)", ErrConfig)
	case cfg.batchSize < 1:
		return nil, fmt.Errorf("%w: batch size %d, need at least 1", ErrConfig, cfg.batchSize)
	case cfg.lanes < 1:
		return nil, fmt.Errorf("%w: concurrency %d, need at least 1", ErrConfig, cfg.lanes)
	case cfg.maxAttempts < 0:
		return nil, fmt.Errorf("%w: max attempts %d, need 0 (no limit) or more", ErrConfig, cfg.maxAttempts)
	case cfg.maxAttempts > 0 && cfg.dlq == nil:
		return nil, fmt.Errorf("%w: max attempts %d needs a dead-letter publisher (WithDeadLetter)", ErrConfig, cfg.maxAttempts)
	case cfg.backoff <= 0 || cfg.maxBackoff < cfg.backoff:
		return nil, fmt.Errorf("%w: backoff %s..%s", ErrConfig, cfg.backoff, cfg.maxBackoff)
	case cfg.startTimeout <= 0:
		return nil, fmt.Errorf("%w: start timeout %s, need more than 0 (WithStartTimeout)", ErrConfig, cfg.startTimeout)
	}
	if _, err := cfg.securityConfig(cfg.brokers); err != nil {
		return nil, err
	}
	if err := cfg.validateTransactional(h); err != nil {
		return nil, err
	}
	codec, err := schema.NewCodec(cfg.registry)
	if err != nil {
		return nil, err
	}
	if cfg.metrics == nil {
		cfg.metrics = prometheus.DefaultRegisterer
	}
	m, err := newMetrics(cfg.metrics)
	if err != nil {
		return nil, fmt.Errorf("%w: metrics (WithMetrics): %w", ErrConfig, err)
	}
	return &Consumer{cfg: cfg, h: h, m: m, codec: codec, gen: map[tp]uint64{}, fetched: map[*kafka.Message]uint64{},
		committed: map[tp]committedOffset{}, uncommitted: map[tp]committedOffset{}}, nil
}

// Run joins the group and handles batches until ctx ends, then leaves the
// group and returns nil. Offsets are committed only after the handler
// succeeded for every record up to them. It returns an error only when the
// client cannot be created or subscribed, when no broker answers within
// the start timeout ([ErrUnreachable], see [WithStartTimeout]) or when the
// brokers refuse its credentials at start ([ErrAuth]).
func (c *Consumer) Run(ctx context.Context) error {
	ctx = withMetrics(ctx, c.m)
	commit := kafka.ConfigMap{"enable.auto.commit": !c.cfg.commitSync, "auto.commit.interval.ms": 1000}
	if c.cfg.transactional {
		commit = transactionalKafka()
	}
	sec, err := c.cfg.securityConfig(c.cfg.brokers)
	if err != nil {
		return err
	}
	cm, err := kafkaconf.Consumer(c.cfg.brokers, c.cfg.group, commit, sec, c.cfg.kafka)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	kc, err := kafka.NewConsumer(cm)
	if err != nil {
		return fmt.Errorf("consumer: create: %w", err)
	}
	defer c.state.stopped() // after Close, which revokes
	defer kc.Close()
	if err := awaitBrokers(ctx, kc, cm, c.cfg.startTimeout); err != nil {
		if ctx.Err() != nil {
			return nil // stopped before it started
		}
		return fmt.Errorf("%w (group %s)", err, c.cfg.group)
	}
	if ad, err := kafka.NewAdminClientFromConsumer(kc); err != nil {
		c.cfg.log.Warn("no admin client: the lag gauges are updated only on commit", "group", c.cfg.group, "err", err)
	} else {
		c.stall.admin = ad
		defer func() { ad.Close(); c.stall.admin = nil }()
	}
	topics := c.cfg.topics
	if c.cfg.dlq != nil {
		// Replayed dead letters come back on the replay topics.
		replays := make([]string, 0, len(topics))
		for _, t := range topics {
			if r := schema.ReplayTopic(t); !slices.Contains(topics, r) {
				replays = append(replays, r)
			}
		}
		c.createTopics(ctx, replays)
		topics = append(slices.Clone(topics), replays...)
	}
	if err := kc.SubscribeTopics(topics, c.rebalance); err != nil {
		return fmt.Errorf("consumer: subscribe %v: %w", topics, err)
	}
	c.cfg.log.Info("consumer started", "group", c.cfg.group, "topics", topics)
	for ctx.Err() == nil {
		msgs := c.poll(ctx, kc)
		if len(msgs) == 0 {
			continue
		}
		if !c.process(ctx, kc, msgs) {
			break
		}
	}
	c.cfg.log.Info("consumer stopped", "group", c.cfg.group)
	return nil
}

// poll collects up to batchSize records, waiting at most linger after the
// first one.
func (c *Consumer) poll(ctx context.Context, kc *kafka.Consumer) []*kafka.Message {
	var msgs []*kafka.Message
	var deadline time.Time
	if len(c.pending) > 0 {
		n := min(len(c.pending), c.cfg.batchSize)
		msgs = append(msgs, c.pending[:n]...)
		c.pending = c.pending[n:]
		deadline = time.Now().Add(c.cfg.linger)
	}
	for len(msgs) < c.cfg.batchSize && ctx.Err() == nil {
		wait := 100 * time.Millisecond
		if len(msgs) > 0 {
			wait = time.Until(deadline)
			if wait <= 0 {
				break
			}
		}
		switch e := kc.Poll(max(1, int(wait.Milliseconds()))).(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				c.cfg.log.Warn("consume error", "err", e.TopicPartition.Error)
				continue
			}
			if len(msgs) == 0 {
				deadline = time.Now().Add(c.cfg.linger)
			}
			c.stamp(e)
			msgs = append(msgs, e)
		case kafka.Error:
			c.cfg.log.Warn("kafka client error", "group", c.cfg.group, "err", e, "code", e.Code())
		case nil:
			if len(msgs) > 0 {
				return msgs
			}
			if len(c.uncommitted) > 0 && time.Now().After(c.retryAt) {
				c.commit(kc, nil)
			}
		}
	}
	return msgs
}

// process decodes, handles and commits one batch. It returns false when
// ctx ended before the batch was done (nothing of it is committed then).
func (c *Consumer) process(ctx context.Context, kc *kafka.Consumer, msgs []*kafka.Message) bool {
	start := time.Now()
	for _, m := range msgs {
		c.m.records.WithLabelValues(c.cfg.group, *m.TopicPartition.Topic).Inc()
	}
	// settled[i]: record i was decoded into events, or dead-lettered; a
	// retry after a transient failure does not repeat either.
	settled := make([]bool, len(msgs))
	events := make([]sink.Event, 0, len(msgs))
	var lanes *laneSet
	var refused []sink.Rejection // refused by the sinks, not yet dead-lettered
	isPaused := false
	clear(c.poisoned)
	defer func() {
		clear(c.poisoned)
		if isPaused {
			c.resume(kc)
		}
	}()
	defer func(all []*kafka.Message) {
		for _, m := range all {
			delete(c.fetched, m)
		}
	}(msgs)
	if !c.cfg.transactional {
		// A rebalance while the batch was being polled.
		msgs, events = c.dropRevoked(kc, msgs, &settled, events, nil)
	}
	for attempt := 0; ; attempt++ {
		err := c.decode(ctx, msgs, settled, &events)
		if err == nil {
			if c.cfg.transactional {
				err = c.handleTx(ctx, kc, msgs, events)
			} else {
				if lanes == nil {
					lanes = splitLanes(events, c.cfg.lanes)
				}
				var rs []sink.Rejection
				rs, err = lanes.run(ctx, c.h, c.cfg.dlq != nil)
				refused = append(refused, rs...)
			}
		}
		// Refused events are dead-lettered even when other lanes failed,
		// so that a retry does not run them again.
		if len(refused) > 0 {
			var derr error
			refused, derr = c.deadLetterRefused(ctx, msgs, refused)
			err = errors.Join(err, derr)
		}
		if err == nil {
			break
		}
		c.m.handlerRetries.WithLabelValues(c.cfg.group).Inc()
		c.cfg.log.Warn("batch failed, retrying", "group", c.cfg.group, "attempt", attempt+1, "records", len(msgs), "err", err)
		if !isPaused {
			isPaused = true
			c.m.pauses.WithLabelValues(c.cfg.group).Inc()
			c.m.paused.WithLabelValues(c.cfg.group).Set(1)
			c.stall.start(c.m.stalledSeconds.WithLabelValues(c.cfg.group))
		}
		if c.cfg.maxAttempts > 0 && lanes != nil {
			if bad := lanes.exhausted(c.cfg.maxAttempts); len(bad) > 0 {
				for _, i := range bad {
					if !c.isolate(ctx, kc, msgs, lanes.lanes[i]) {
						return false
					}
					lanes.done[i] = true
				}
				continue // the other lanes, if any still fail
			}
		}
		if !c.waitPaused(ctx, kc, backoff(c.cfg.backoff, c.cfg.maxBackoff, attempt)) {
			return false
		}
		if !c.cfg.transactional {
			msgs, events = c.dropRevoked(kc, msgs, &settled, events, lanes)
			kept := refused[:0]
			for _, r := range refused {
				if messageOf(msgs, &r.Event) != nil {
					kept = append(kept, r)
				}
			}
			refused = kept
		}
	}
	now := time.Now()
	c.m.batchSeconds.WithLabelValues(c.cfg.group).Observe(now.Sub(start).Seconds())
	for i := range events {
		c.m.freshness.WithLabelValues(c.cfg.group, events[i].Topic).Observe(now.Sub(events[i].Time).Seconds())
	}
	if !c.cfg.transactional {
		c.commit(kc, msgs)
	}
	return true
}

// waitPaused waits d while keeping the group membership alive: it pauses
// every assigned partition (again on each turn, so partitions assigned by a
// rebalance meanwhile are paused too) and keeps calling Poll, which serves
// heartbeats, rebalances and max.poll.interval.ms. Records that were
// already fetched are kept for the next batch. Meanwhile it keeps
// slate_consumer_stalled_seconds and, every second, slate_consumer_lag of
// the assigned partitions up to date. It returns false when ctx ended.
func (c *Consumer) waitPaused(ctx context.Context, kc *kafka.Consumer, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for {
		if ctx.Err() != nil {
			return false
		}
		if as, err := kc.Assignment(); err == nil && len(as) > 0 {
			if err := kc.Pause(as); err != nil {
				c.cfg.log.Warn("pause failed", "group", c.cfg.group, "err", err)
			}
			c.tick(kc, as)
		}
		left := time.Until(deadline)
		if left <= 0 {
			return true
		}
		switch e := kc.Poll(max(1, int(min(left, 100*time.Millisecond).Milliseconds()))).(type) {
		case *kafka.Message:
			if e.TopicPartition.Error == nil {
				c.stamp(e)
				c.pending = append(c.pending, e)
			}
		case kafka.Error:
			c.cfg.log.Warn("kafka client error", "group", c.cfg.group, "err", e, "code", e.Code())
		}
	}
}

func (c *Consumer) resume(kc *kafka.Consumer) {
	c.m.paused.WithLabelValues(c.cfg.group).Set(0)
	c.stall.end(c.m.stalledSeconds.WithLabelValues(c.cfg.group))
	as, err := kc.Assignment()
	if err == nil && len(as) > 0 {
		err = kc.Resume(as)
	}
	if err != nil {
		c.cfg.log.Warn("resume failed", "group", c.cfg.group, "err", err)
	}
}

// rebalance logs and counts assignments and revocations and drops the
// records kept from revoked partitions (their new owner reads them from
// the committed offset). The client then applies the change itself.
func (c *Consumer) rebalance(_ *kafka.Consumer, ev kafka.Event) error {
	switch e := ev.(type) {
	case kafka.AssignedPartitions:
		c.bumpGen(e.Partitions)
		c.state.assign(len(e.Partitions))
		c.m.rebalances.WithLabelValues(c.cfg.group, "assigned").Add(float64(len(e.Partitions)))
		c.cfg.log.Info("partitions assigned", "group", c.cfg.group, "partitions", len(e.Partitions))
	case kafka.RevokedPartitions:
		c.bumpGen(e.Partitions)
		c.state.revoke(len(e.Partitions))
		c.m.rebalances.WithLabelValues(c.cfg.group, "revoked").Add(float64(len(e.Partitions)))
		c.cfg.log.Info("partitions revoked", "group", c.cfg.group, "partitions", len(e.Partitions))
		revoked := make(map[tp]bool, len(e.Partitions))
		for _, p := range e.Partitions {
			revoked[tp{*p.Topic, p.Partition}] = true
			c.m.lag.DeleteLabelValues(c.cfg.group, *p.Topic, strconv.Itoa(int(p.Partition)))
		}
		kept := c.pending[:0]
		for _, m := range c.pending {
			if !revoked[tp{*m.TopicPartition.Topic, m.TopicPartition.Partition}] {
				kept = append(kept, m)
			} else {
				delete(c.fetched, m)
			}
		}
		clear(c.pending[len(kept):])
		c.pending = kept
	}
	return nil
}

type tp struct {
	topic string
	part  int32
}

func partitionOf(m *kafka.Message) tp { return tp{*m.TopicPartition.Topic, m.TopicPartition.Partition} }

// bumpGen starts a new assignment generation of each partition.
func (c *Consumer) bumpGen(ps []kafka.TopicPartition) {
	for _, p := range ps {
		c.gen[tp{*p.Topic, p.Partition}]++
	}
}

// stamp records the generation of its partition that m was fetched under.
func (c *Consumer) stamp(m *kafka.Message) { c.fetched[m] = c.gen[partitionOf(m)] }

// current reports whether m was fetched under its partition's present
// generation: the partition was neither revoked nor assigned since.
func (c *Consumer) current(m *kafka.Message) bool {
	g, ok := c.fetched[m]
	return ok && g == c.gen[partitionOf(m)]
}

// decode appends the envelopes of the records not yet settled to events, in
// offset order, and dead-letters the poison ones. It stops at the first
// transient failure (registry or dead-letter topic unreachable).
func (c *Consumer) decode(ctx context.Context, msgs []*kafka.Message, settled []bool, events *[]sink.Event) error {
	for i, m := range msgs {
		if settled[i] {
			continue
		}
		env, err := c.codec.Decode(ctx, m.Value)
		switch {
		case err == nil:
			ev := sink.Event{Envelope: env, Topic: *m.TopicPartition.Topic,
				Partition: m.TopicPartition.Partition, Offset: int64(m.TopicPartition.Offset)}
			for _, h := range m.Headers {
				switch h.Key {
				case sink.HeaderUnchanged:
					ev.Unchanged = sink.ParseUnchanged(string(h.Value))
				case HeaderDLQReplayed:
					ev.ReplayedFrom = string(h.Value)
				}
			}
			if c.replayedForOther(m) {
				break // another group's replay: settled, not handled
			}
			*events = append(*events, ev)
		case errors.Is(err, schema.ErrDecode):
			if perr := c.poison(ctx, m, err); perr != nil {
				return perr
			}
		default:
			return err
		}
		settled[i] = true
	}
	return nil
}

// replayedForOther reports whether m was read from a replay topic
// ([schema.ReplayTopic]) and was dead-lettered by another group: only the
// group that failed a record takes its replay.
func (c *Consumer) replayedForOther(m *kafka.Message) bool {
	if t := *m.TopicPartition.Topic; schema.ReplayOrigin(t) == t {
		return false
	}
	for _, h := range slices.Backward(m.Headers) {
		if h.Key == HeaderDLQGroup {
			return string(h.Value) != c.cfg.group
		}
	}
	return false
}

// createTopics creates the topics that do not exist yet, with the
// brokers' default partition count and replication factor, so that the
// subscription finds them; a failure is logged, and the client then
// finds a topic when it appears.
func (c *Consumer) createTopics(ctx context.Context, topics []string) {
	if len(topics) == 0 || c.stall.admin == nil {
		return
	}
	specs := make([]kafka.TopicSpecification, len(topics))
	for i, t := range topics {
		specs[i] = kafka.TopicSpecification{Topic: t, NumPartitions: -1, ReplicationFactor: -1}
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := c.stall.admin.CreateTopics(cctx, specs)
	if err != nil {
		c.cfg.log.Warn("creating replay topics failed", "group", c.cfg.group, "topics", topics, "err", err)
		return
	}
	for _, r := range res {
		if code := r.Error.Code(); code != kafka.ErrNoError && code != kafka.ErrTopicAlreadyExists {
			c.cfg.log.Warn("creating a replay topic failed", "group", c.cfg.group, "topic", r.Topic, "err", r.Error)
		}
	}
}

// poison logs, counts and dead-letters an undecodable record. It fails if
// the dead-letter write failed, so the batch is retried rather than the
// record lost; a retry does not count or log the record again.
func (c *Consumer) poison(ctx context.Context, m *kafka.Message, cause error) error {
	topic := *m.TopicPartition.Topic
	if !c.poisoned[m] {
		if c.poisoned == nil {
			c.poisoned = map[*kafka.Message]bool{}
		}
		c.poisoned[m] = true
		c.m.decodeErrors.WithLabelValues(c.cfg.group, topic).Inc()
		c.cfg.log.Error("undecodable record", "group", c.cfg.group, "topic", topic,
			"partition", m.TopicPartition.Partition, "offset", int64(m.TopicPartition.Offset), "err", cause)
	}
	if c.cfg.dlq == nil {
		return nil
	}
	return c.deadLetter(ctx, m, "decode", cause)
}

// deadLetterRefused dead-letters, with stage "sink", the records of the
// events the sinks refused for good, and returns those it could not write
// (to try again on the batch's next attempt) with the first failure.
func (c *Consumer) deadLetterRefused(ctx context.Context, msgs []*kafka.Message, refused []sink.Rejection) ([]sink.Rejection, error) {
	// Several sinks may refuse one event: one dead letter, every cause.
	byRecord := make(map[*kafka.Message][]sink.Rejection)
	var order []*kafka.Message
	for _, r := range refused {
		m := messageOf(msgs, &r.Event)
		if m == nil {
			// A handler reported an event that is not of this batch: a
			// bug in the handler, not something to retry.
			return nil, fmt.Errorf("consumer: refused event %s at %s[%d]@%d is not in the batch",
				r.Event.ID, r.Event.Topic, r.Event.Partition, r.Event.Offset)
		}
		if byRecord[m] == nil {
			order = append(order, m)
		}
		byRecord[m] = append(byRecord[m], r)
	}
	var left []sink.Rejection
	var first error
	for _, m := range order {
		causes := make([]error, len(byRecord[m]))
		for i, r := range byRecord[m] {
			causes[i] = r.Err
		}
		cause := errors.Join(causes...)
		c.cfg.log.Error("event refused by a sink, dead-lettering", "group", c.cfg.group, "topic", *m.TopicPartition.Topic,
			"partition", m.TopicPartition.Partition, "offset", int64(m.TopicPartition.Offset), "err", cause)
		if err := c.deadLetter(ctx, m, "sink", cause); err != nil {
			left = append(left, byRecord[m]...)
			first = cmp.Or(first, err)
		}
	}
	return left, first
}

// isolate applies the events of a lane that exhausted its attempts one at
// a time, in order, dead-lettering (stage "handler") each that fails
// [WithMaxAttempts] times on its own; temporary failures are retried
// without counting. The partitions stay paused meanwhile. It returns false
// when ctx ended.
func (c *Consumer) isolate(ctx context.Context, kc *kafka.Consumer, msgs []*kafka.Message, lane []sink.Event) bool {
	c.cfg.log.Warn("lane exhausted its attempts, applying its events one at a time", "group", c.cfg.group,
		"events", len(lane), "max_attempts", c.cfg.maxAttempts)
	for _, ev := range lane {
		fails := 0
		for attempt := 0; ; attempt++ {
			err := c.h.Handle(ctx, []sink.Event{ev})
			if rs, ok := sink.Rejections(err); ok {
				_, err = c.deadLetterRefused(ctx, msgs, rs)
			}
			if err == nil {
				break
			}
			if !temporary(err) {
				fails++
			}
			if fails >= c.cfg.maxAttempts {
				m := messageOf(msgs, &ev)
				if m == nil {
					c.cfg.log.Error("event not in its batch", "group", c.cfg.group, "id", ev.ID)
				} else if derr := c.deadLetter(ctx, m, "handler", err); derr == nil {
					c.cfg.log.Error("event failed every attempt, dead-lettered", "group", c.cfg.group, "topic", ev.Topic,
						"partition", ev.Partition, "offset", ev.Offset, "id", ev.ID, "attempts", fails, "err", err)
					break
				} else {
					err = errors.Join(err, derr)
				}
			}
			c.cfg.log.Warn("event failed, retrying", "group", c.cfg.group, "id", ev.ID, "attempt", attempt+1, "err", err)
			if !c.waitPaused(ctx, kc, backoff(c.cfg.backoff, c.cfg.maxBackoff, attempt)) {
				return false
			}
		}
	}
	return true
}

// messageOf returns the record of msgs that ev was decoded from.
func messageOf(msgs []*kafka.Message, ev *sink.Event) *kafka.Message {
	for _, m := range msgs {
		if m.TopicPartition.Partition == ev.Partition && int64(m.TopicPartition.Offset) == ev.Offset && *m.TopicPartition.Topic == ev.Topic {
			return m
		}
	}
	return nil
}

// deadLetter writes m, with its headers and the dead-letter headers, to
// the dead-letter topic of its topic. When the dead-letter topic (or the
// publisher's client) refuses the record as too large, it writes the
// truncated copy instead (see [WithDeadLetter]); if that fails too, the
// error is returned and the caller retries.
func (c *Consumer) deadLetter(ctx context.Context, m *kafka.Message, stage string, cause error) error {
	topic := *m.TopicPartition.Topic
	dlq := schema.DLQTopic(topic)
	hs := make([]schema.Header, 0, len(m.Headers)+7)
	for _, h := range m.Headers {
		hs = append(hs, schema.Header(h))
	}
	hs = schema.AppendDeadLetterHeaders(hs, schema.DeadLetterOrigin{Err: cause, Stage: stage, Topic: topic,
		Partition: m.TopicPartition.Partition, Offset: int64(m.TopicPartition.Offset), Group: c.cfg.group})
	err := c.cfg.dlq.PublishRaw(ctx, dlq, m.Key, m.Value, hs)
	if err != nil && tooLarge(err) {
		c.cfg.log.Warn("record too large for its dead-letter topic, dead-lettering a truncated copy", "group", c.cfg.group,
			"topic", topic, "partition", m.TopicPartition.Partition, "offset", int64(m.TopicPartition.Offset),
			"bytes", len(m.Value), "kept", min(len(m.Value), schema.DeadLetterTruncateBytes), "err", err)
		value, ths := schema.TruncateDeadLetter(m.Value, hs)
		if terr := c.cfg.dlq.PublishRaw(ctx, dlq, m.Key, value, ths); terr != nil {
			err = fmt.Errorf("%w; the truncated copy failed too: %w", err, terr)
		} else {
			err = nil
			c.m.deadLettersTruncated.WithLabelValues(c.cfg.group, topic, stage).Inc()
		}
	}
	if err != nil {
		return fmt.Errorf("consumer: dead-letter %s[%d]@%d (%d bytes) to %s: %w", topic, m.TopicPartition.Partition,
			int64(m.TopicPartition.Offset), len(m.Value), dlq, err)
	}
	c.m.deadLetters.WithLabelValues(c.cfg.group, topic, stage).Inc()
	return nil
}

// tooLarge reports whether a publish failed because the record is larger
// than the broker, the topic or the client accepts (librdkafka
// ErrMsgSizeTooLarge, broker MESSAGE_TOO_LARGE or RECORD_LIST_TOO_LARGE):
// a permanent failure that a retry of the same bytes never cures.
func tooLarge(err error) bool {
	var ke kafka.Error
	if !errors.As(err, &ke) {
		return false
	}
	return ke.Code() == kafka.ErrMsgSizeTooLarge || ke.Code() == kafka.ErrRecordListTooLarge
}

// commit commits (or stores for the background commit, see
// [WithSyncCommit]), per partition, the offset after the last record of
// the batch, and updates the lag gauges. It skips a partition that is no
// longer assigned or whose generation changed since its records were
// fetched (revoked and assigned back: another member may have committed
// past them), and an offset not above the one this member last committed
// in the same generation.
func (c *Consumer) commit(kc *kafka.Consumer, msgs []*kafka.Message) {
	owned := map[tp]bool{}
	if as, err := kc.Assignment(); err == nil {
		for _, p := range as {
			owned[tp{*p.Topic, p.Partition}] = true
		}
	}
	next := make(map[tp]kafka.Offset)
	stale := make(map[tp]bool)
	for _, m := range msgs {
		k := partitionOf(m)
		if !c.current(m) {
			stale[k] = true
		}
		if o := m.TopicPartition.Offset + 1; o > next[k] {
			next[k] = o
		}
	}
	// Offsets refused earlier, of partitions still owned in the same
	// generation, go along unless this batch moves them further.
	for k, u := range c.uncommitted {
		if !owned[k] || u.gen != c.gen[k] {
			delete(c.uncommitted, k)
			continue
		}
		if u.offset > next[k] && !stale[k] {
			next[k] = u.offset
		}
	}
	offsets := make([]kafka.TopicPartition, 0, len(next))
	for k, o := range next {
		if !owned[k] || stale[k] {
			// Revoked while the batch ran: its new owner commits it.
			delete(next, k)
			continue
		}
		if last, ok := c.committed[k]; ok && last.gen == c.gen[k] && o <= last.offset {
			delete(next, k)
			continue
		}
		offsets = append(offsets, kafka.TopicPartition{Topic: &k.topic, Partition: k.part, Offset: o})
	}
	if len(offsets) == 0 {
		return
	}
	var err error
	if c.cfg.commitSync {
		_, err = kc.CommitOffsets(offsets)
	} else {
		_, err = kc.StoreOffsets(offsets)
	}
	if err != nil {
		// The records are handled. The offsets are kept and committed
		// again with the next batch or on an idle poll, as long as this
		// member keeps the partitions; a rebalance that takes them hands
		// the records to their new owner, and dedupe and idempotent sinks
		// absorb the replay.
		c.cfg.log.Warn("offset commit failed, kept for a retry", "group", c.cfg.group, "partitions", len(offsets), "err", err)
		c.m.commitFailures.WithLabelValues(c.cfg.group).Inc()
		for k, o := range next {
			c.uncommitted[k] = committedOffset{gen: c.gen[k], offset: o}
		}
		c.retryAt = time.Now().Add(200 * time.Millisecond)
	} else {
		for k, o := range next {
			c.committed[k] = committedOffset{gen: c.gen[k], offset: o}
			delete(c.uncommitted, k)
		}
	}
	for k, o := range next {
		if _, high, err := kc.GetWatermarkOffsets(k.topic, k.part); err == nil {
			c.m.lag.WithLabelValues(c.cfg.group, k.topic, strconv.Itoa(int(k.part))).Set(float64(high - int64(o)))
		}
	}
}

// backoff returns the wait before retry attempt n: exponential from first,
// capped at max, with full jitter over its upper half.
func backoff(first, max time.Duration, n int) time.Duration {
	d := first << min(n, 30)
	if d <= 0 || d > max {
		d = max
	}
	return d/2 + rand.N(d/2+1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// dropRevoked removes, before an attempt, the records and events of
// partitions no longer assigned, or assigned again since the records were
// fetched: their new owner replays them from the last commit (after a
// reassignment this member is that owner and fetches them again), and
// retrying them here would race it (two writers of the same sink rows or
// Hive partition files). Lanes left empty are done.
func (c *Consumer) dropRevoked(kc *kafka.Consumer, msgs []*kafka.Message, settled *[]bool, events []sink.Event, lanes *laneSet) ([]*kafka.Message, []sink.Event) {
	as, err := kc.Assignment()
	if err != nil {
		return msgs, events
	}
	owned := make(map[tp]bool, len(as))
	for _, p := range as {
		owned[tp{*p.Topic, p.Partition}] = true
	}
	type at struct {
		tp
		offset int64
	}
	kept := make(map[at]bool, len(msgs))
	keptMsgs := msgs[:0:0]
	keptSettled := (*settled)[:0:0]
	for i, m := range msgs {
		if owned[partitionOf(m)] && c.current(m) {
			keptMsgs = append(keptMsgs, m)
			keptSettled = append(keptSettled, (*settled)[i])
			kept[at{partitionOf(m), int64(m.TopicPartition.Offset)}] = true
		}
	}
	if len(keptMsgs) == len(msgs) {
		return msgs, events
	}
	c.cfg.log.Info("dropping the events of revoked or reassigned partitions from the batch", "group", c.cfg.group,
		"records", len(msgs)-len(keptMsgs))
	*settled = keptSettled
	keep := func(evs []sink.Event) []sink.Event {
		out := evs[:0:0]
		for _, ev := range evs {
			if kept[at{tp{ev.Topic, ev.Partition}, ev.Offset}] {
				out = append(out, ev)
			}
		}
		return out
	}
	if lanes != nil {
		for i := range lanes.lanes {
			lanes.lanes[i] = keep(lanes.lanes[i])
			if len(lanes.lanes[i]) == 0 {
				lanes.done[i] = true
			}
		}
	}
	return keptMsgs, keep(events)
}
