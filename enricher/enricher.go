package enricher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/hamba/avro/v2"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/publish"
	"github.com/slatehq/slate/schema"
)

// Record is the current state of one entity as its owner returned it.
type Record struct {
	// Version is the owner's version of the entity; it becomes the
	// materialized event's sequence (and the sinks' external version).
	// For a tombstone it is the version the owner recorded the delete at.
	Version int64
	// Deleted marks a tombstone: the owner deleted the entity at Version
	// and says so (a soft-deleted row, a delete log). A resolver that knows
	// its tombstones should return them rather than leave the id out: the
	// DELETE the enricher publishes then carries the delete's version even
	// when the change events carry none. Schema and Value are unused.
	Deleted bool
	// Schema is the Avro schema of Value; it is registered under its full
	// name (RecordNameStrategy).
	Schema avro.NamedSchema
	// Value is the entity, encodable with Schema.
	Value any
}

// Resolver looks up the current records of entities by id. An id missing
// from the result, or returned as a tombstone ([Record.Deleted]), was
// deleted at the source: a resolver over a gRPC Get that answers NOT_FOUND
// leaves the id out, and the enricher publishes a DELETE for it. A
// Resolver must be safe for concurrent use.
type Resolver interface {
	Resolve(ctx context.Context, entityType string, ids []string) (map[string]Record, error)
}

// ResolverFunc adapts a function to a [Resolver].
type ResolverFunc func(ctx context.Context, entityType string, ids []string) (map[string]Record, error)

// Resolve calls f.
func (f ResolverFunc) Resolve(ctx context.Context, entityType string, ids []string) (map[string]Record, error) {
	return f(ctx, entityType, ids)
}

// Publisher publishes envelopes and returns after the broker acknowledged
// all of them; *producer.Producer implements it. It is
// [publish.Publisher], the contract every slate component publishes
// through.
type Publisher = publish.Publisher

// Defaults of [New].
const (
	DefaultMaxLookup       = 500
	DefaultConcurrency     = 4
	DefaultBreakerFailures = 5
	DefaultBreakerCooldown = 5 * time.Second
	DefaultDeadLetterAfter = 5
)

type config struct {
	source          string
	topic           string
	topicPrefix     string
	maxLookup       int
	concurrency     int
	retry           RetryPolicy
	callTimeout     time.Duration
	breakerFailures int
	breakerCooldown time.Duration
	joins           []Join
	joinedName      string
	derive          Deriver
	primaryEntity   string
	fanouts         []FanOut
	dlq             DeadLetterPublisher
	dlqAfter        int
	log             *slog.Logger
	metrics         prometheus.Registerer
}

// Option configures [New].
type Option func(*config)

// WithSource sets the envelope source of materialized events (default
// //slate/enricher).
func WithSource(s string) Option { return func(c *config) { c.source = s } }

// WithOutputTopic sets the output topic (default
// <prefix><entity>.materialized, see [WithTopicPrefix]).
func WithOutputTopic(t string) Option { return func(c *config) { c.topic = t } }

// WithPrimaryEntity makes the change events of entityType the view's own
// events, keyed by the same ids, for a view of another entity's records
// under an entity type of its own (a "cashflow" view of budgets): a
// change of a budget re-materializes the cash flow of the same id, and a
// budget gone at the source deletes it. Default: the enricher's entity
// type.
func WithPrimaryEntity(entityType string) Option {
	return func(c *config) { c.primaryEntity = entityType }
}

// WithTopicPrefix sets the prefix of the default output topic,
// <prefix><entity>.materialized (default [schema.DefaultTopicPrefix],
// "studio."; "" is the default too). [WithOutputTopic] overrides it. New
// fails on a prefix that cannot start a topic name
// ([schema.ValidateTopicPrefix]). Dead letters follow the input topics
// (<input topic>.dlq), whatever their prefix.
func WithTopicPrefix(prefix string) Option { return func(c *config) { c.topicPrefix = prefix } }

// WithMaxLookup bounds the ids of one resolver call (default 500); larger
// batches are split into chunks.
func WithMaxLookup(n int) Option { return func(c *config) { c.maxLookup = n } }

// WithConcurrency sets how many chunks of one batch are resolved and
// published at the same time (default 4). Each id is in exactly one chunk,
// so per-key order is kept; memory is bounded by n chunks in flight.
func WithConcurrency(n int) Option { return func(c *config) { c.concurrency = n } }

// WithRetry sets the retry policy of every resolver call (default
// [DefaultRetryPolicy]); zero fields take their defaults.
func WithRetry(p RetryPolicy) Option { return func(c *config) { c.retry = p } }

// WithCallTimeout bounds each resolver call attempt (default: only the
// batch's context bounds it). An attempt that times out is retried.
func WithCallTimeout(d time.Duration) Option { return func(c *config) { c.callTimeout = d } }

// WithBreaker sets every resolver's circuit breaker: it opens after
// failures consecutive retryable failures and lets a probe through after
// cooldown (defaults 5 and 5s).
func WithBreaker(failures int, cooldown time.Duration) Option {
	return func(c *config) { c.breakerFailures, c.breakerCooldown = failures, cooldown }
}

// WithDeadLetter makes a batch that failed [DefaultDeadLetterAfter] times
// (see [WithDeadLetterAfter]) go to dead letters instead of being retried
// forever: every input event of the batch is re-encoded to
// <input topic>.dlq with the error, attempts and origin in headers, and
// Handle returns nil so the partition moves on. Failures caused by an open
// circuit breaker or a cancelled context do not count: they say the
// dependency is down, not that the batch is bad. An event larger than the
// dead-letter topic (or p's client) accepts goes as a truncated copy, its
// value cut to [schema.DeadLetterTruncateBytes] with a
// [schema.HeaderDLQTruncated] header holding the original size; the
// origin headers say where the whole event is. If that fails too, Handle
// fails and the consumer retries the batch.
func WithDeadLetter(p DeadLetterPublisher) Option { return func(c *config) { c.dlq = p } }

// WithDeadLetterAfter sets how many failed attempts of one batch lead to
// dead letters (default 5). It matters only with [WithDeadLetter].
func WithDeadLetterAfter(n int) Option { return func(c *config) { c.dlqAfter = n } }

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// Enricher materializes one entity type. It is a consumer.Handler, safe
// for concurrent use (a consumer with several lanes calls Handle for
// batches split by the input's subject): the work is serialized by OUTPUT
// key, so that two lookups of one id never run at once, even when one
// batch reaches it by fan-out and another by its own change, and the
// result of the later lookup is published after the earlier one's. Its
// Resolver, joins, fan-outs and Publisher must be safe for concurrent use.
type Enricher struct {
	entity   string
	r        Resolver
	pub      Publisher
	reg      schema.Registry
	codec    *schema.Codec
	cfg      config
	m        *metrics
	primary  *breaker
	joinBr   []*breaker
	fanouts  map[string]fanout
	joined   sync.Map // primary schema full name -> avro.NamedSchema
	attempts attempts
	keys     keyLocks

	published atomic.Int64
}

type fanout struct {
	FanOut
	br *breaker
}

// New returns an enricher of entityType's change events that publishes to
// studio.<entityType>.materialized (or under [WithTopicPrefix], or to
// [WithOutputTopic]).
func New(entityType string, r Resolver, pub Publisher, reg schema.Registry, opts ...Option) (*Enricher, error) {
	cfg := config{
		source: "//slate/enricher", maxLookup: DefaultMaxLookup, concurrency: DefaultConcurrency,
		breakerFailures: DefaultBreakerFailures, breakerCooldown: DefaultBreakerCooldown,
		dlqAfter: DefaultDeadLetterAfter, log: slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(&cfg)
	}
	cfg.retry = cfg.retry.withDefaults()
	if err := schema.ValidateTopicPrefix(cfg.topicPrefix); err != nil {
		return nil, fmt.Errorf("%w: WithTopicPrefix: %w", ErrConfig, err)
	}
	if cfg.topic == "" {
		cfg.topic = schema.MaterializedTopicIn(cfg.topicPrefix, entityType)
	}
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	switch {
	case entityType == "":
		return nil, fmt.Errorf("%w: entity type is empty", ErrConfig)
	case r == nil || pub == nil || reg == nil:
		return nil, fmt.Errorf("%w: resolver, publisher and registry are all required", ErrConfig)
	case cfg.maxLookup < 1:
		return nil, fmt.Errorf("%w: max lookup %d, need at least 1", ErrConfig, cfg.maxLookup)
	case cfg.concurrency < 1:
		return nil, fmt.Errorf("%w: concurrency %d, need at least 1", ErrConfig, cfg.concurrency)
	case cfg.breakerFailures < 1 || cfg.breakerCooldown <= 0:
		return nil, fmt.Errorf("%w: breaker needs at least 1 failure and a positive cooldown", ErrConfig)
	case cfg.dlqAfter < 1:
		return nil, fmt.Errorf("%w: dead letter after %d attempts, need at least 1", ErrConfig, cfg.dlqAfter)
	}
	codec, err := schema.NewCodec(reg)
	if err != nil {
		return nil, fmt.Errorf("enricher: %w", err)
	}
	if cfg.metrics == nil {
		cfg.metrics = prometheus.DefaultRegisterer
	}
	m, err := newMetrics(cfg.metrics)
	if err != nil {
		return nil, fmt.Errorf("%w: metrics (WithMetrics): %w", ErrConfig, err)
	}
	e := &Enricher{
		entity: entityType, r: r, pub: pub, reg: reg, codec: codec, cfg: cfg, m: m,
		primary: newBreaker(entityType, cfg.breakerFailures, cfg.breakerCooldown, m),
		fanouts: make(map[string]fanout, len(cfg.fanouts)),
	}
	fields := map[string]bool{}
	for i, j := range cfg.joins {
		switch {
		case j.Field == "" || j.Resolver == nil || j.Schema == nil:
			return nil, fmt.Errorf("%w: join %d needs a field, a resolver and a schema", ErrConfig, i)
		case fields[j.Field]:
			return nil, fmt.Errorf("%w: join field %q used twice", ErrConfig, j.Field)
		}
		fields[j.Field] = true
		e.joinBr = append(e.joinBr, newBreaker("join:"+j.Field, cfg.breakerFailures, cfg.breakerCooldown, m))
	}
	for i, f := range cfg.fanouts {
		switch {
		case f.EntityType == "" || (f.Dependents == nil) != f.SameID:
			return nil, fmt.Errorf("%w: fan-out %d needs an entity type, and dependents or SameID (not both)", ErrConfig, i)
		case f.EntityType == entityType || f.EntityType == cfg.primaryEntity:
			return nil, fmt.Errorf("%w: fan-out %d: entity type %q is the enricher's own", ErrConfig, i, f.EntityType)
		}
		if _, dup := e.fanouts[f.EntityType]; dup {
			return nil, fmt.Errorf("%w: fan-out from %q configured twice", ErrConfig, f.EntityType)
		}
		e.fanouts[f.EntityType] = fanout{FanOut: f, br: newBreaker("fanout:"+f.EntityType, cfg.breakerFailures, cfg.breakerCooldown, m)}
	}
	return e, nil
}

// Published returns how many materialized events this enricher published.
func (e *Enricher) Published() int64 { return e.published.Load() }

// Topic returns the output topic.
func (e *Enricher) Topic() string { return e.cfg.topic }

// BreakerState returns the state of a resolver's circuit breaker: name is
// the entity type for the primary resolver, "join:<field>" for a join and
// "fanout:<entity type>" for a fan-out. Unknown names report closed.
func (e *Enricher) BreakerState(name string) BreakerState {
	if name == e.entity {
		return e.primary.State()
	}
	for _, b := range e.joinBr {
		if b.name == name {
			return b.State()
		}
	}
	for _, f := range e.fanouts {
		if f.br.name == name {
			return f.br.State()
		}
	}
	return BreakerClosed
}

// Handle materializes a batch. It coalesces the events by subject (many
// events for one id become one lookup), adds the ids that fan-outs say
// depend on events of other entity types, splits the ids into chunks of at
// most [WithMaxLookup] and, on up to [WithConcurrency] workers, resolves
// each chunk (with its joins) and publishes one materialized event per id.
// Every id is in exactly one chunk, so per-key order holds. Handle returns
// after every output is acknowledged.
//
// Events of other entity types that no fan-out names are skipped with a
// warning. On failure the batch is retried by the consumer as a whole;
// with [WithDeadLetter], a batch that failed too often is dead-lettered and
// Handle returns nil.
func (e *Enricher) Handle(ctx context.Context, batch []sink.Event) error {
	err := e.handle(ctx, batch)
	if err == nil {
		e.attempts.forget(batch)
		return nil
	}
	e.m.batchFailures.WithLabelValues(e.entity).Inc()
	if e.cfg.dlq == nil || ctx.Err() != nil || errors.Is(err, ErrBreakerOpen) {
		return err
	}
	n := e.attempts.fail(batch)
	if n < e.cfg.dlqAfter {
		return err
	}
	e.cfg.log.Error("batch failed too often; dead-lettering its events", "entity", e.entity,
		"events", len(batch), "attempts", n, "err", err)
	if derr := e.deadLetter(ctx, batch, err, n); derr != nil {
		return errors.Join(err, derr)
	}
	e.attempts.forget(batch)
	return nil
}

// item is one id to materialize and the event that asked for it: its
// change event with the highest sequence (the last one among equals), or
// for an id reached by fan-out only, the change of the entity it depends
// on.
type item struct {
	id      string
	ev      *sink.Event // the event of the id with the highest sequence
	firstOp schema.Op   // the op of the first one
	fanned  bool
}

func (e *Enricher) handle(ctx context.Context, batch []sink.Event) error {
	e.m.batchSize.WithLabelValues(e.entity).Observe(float64(len(batch)))
	pos := make(map[string]int, len(batch))
	items := make([]item, 0, len(batch))
	var own int
	sources := map[string][]string{}        // fan-out entity type -> ids in order
	sourceEv := map[string]map[string]int{} // fan-out entity type -> id -> index of last event
	for i := range batch {
		ev := &batch[i]
		if ev.EntityType == e.entity || ev.EntityType == e.cfg.primaryEntity {
			own++
			if p, seen := pos[ev.Subject]; seen {
				// Events of one id can arrive out of order (a producer's
				// retry, a race in its code): the newest is the one with
				// the highest sequence, not the last one read.
				if ev.Sequence >= items[p].ev.Sequence {
					items[p].ev = ev
				}
				continue
			}
			pos[ev.Subject] = len(items)
			items = append(items, item{id: ev.Subject, ev: ev, firstOp: ev.Type})
			continue
		}
		if _, ok := e.fanouts[ev.EntityType]; ok {
			m := sourceEv[ev.EntityType]
			if m == nil {
				m = map[string]int{}
				sourceEv[ev.EntityType] = m
			}
			if _, seen := m[ev.Subject]; !seen {
				sources[ev.EntityType] = append(sources[ev.EntityType], ev.Subject)
			}
			m[ev.Subject] = i
			continue
		}
		e.cfg.log.Warn("event of another entity type skipped", "want", e.entity, "got", ev.EntityType,
			"topic", ev.Topic, "partition", ev.Partition, "offset", ev.Offset)
	}
	e.m.eventsIn.WithLabelValues(e.entity).Add(float64(own))
	if len(items) > 0 {
		e.m.coalescing.WithLabelValues(e.entity).Observe(float64(own) / float64(len(items)))
	}
	for _, f := range e.cfg.fanouts {
		ids := sources[f.EntityType]
		if len(ids) == 0 {
			continue
		}
		deps, err := e.dependents(ctx, e.fanouts[f.EntityType], ids)
		if err != nil {
			return err
		}
		for _, src := range ids {
			for _, dep := range deps[src] {
				if _, seen := pos[dep]; seen || dep == "" {
					continue
				}
				ev := batch[sourceEv[f.EntityType][src]]
				ev.EntityType, ev.Subject, ev.Type = e.entity, dep, schema.OpUpdate
				pos[dep] = len(items)
				items = append(items, item{id: dep, ev: &ev, fanned: true})
				e.m.fannedOut.WithLabelValues(e.entity, f.EntityType).Inc()
			}
		}
	}
	if len(items) == 0 {
		return nil
	}
	return e.run(ctx, items)
}

// run processes the chunks of items on a bounded pool of workers and
// returns the first failure; the others are cancelled.
func (e *Enricher) run(ctx context.Context, items []item) error {
	n := (len(items) + e.cfg.maxLookup - 1) / e.cfg.maxLookup
	if n == 1 {
		return e.chunk(ctx, items)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for range min(e.cfg.concurrency, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				lo := i * e.cfg.maxLookup
				if err := e.chunk(ctx, items[lo:min(lo+e.cfg.maxLookup, len(items))]); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr == nil {
		// A worker may have stopped because the parent context ended.
		return ctx.Err()
	}
	return firstErr
}

// chunk resolves, joins and publishes one chunk, holding the keys of its
// ids from before the lookup until the outputs are acknowledged.
func (e *Enricher) chunk(ctx context.Context, items []item) error {
	ids := make([]string, len(items))
	for i := range items {
		ids[i] = items[i].id
	}
	unlock, err := e.keys.lock(ctx, ids)
	if err != nil {
		return fmt.Errorf("enricher: wait for %d ids in flight: %w", len(ids), err)
	}
	defer unlock()
	records, err := e.resolve(ctx, e.primary, e.r, e.entity, ids)
	if err != nil {
		return err
	}
	var joined []map[string][]Record
	if len(e.cfg.joins) > 0 {
		if joined, err = e.join(ctx, ids, records); err != nil {
			return err
		}
	}
	out := make([]schema.Envelope, 0, len(items))
	for i := range items {
		env, ok, err := e.materialize(ctx, &items[i], records, joined)
		if err != nil {
			return err
		}
		if ok {
			out = append(out, env)
		}
	}
	if len(out) == 0 {
		return nil
	}
	if err := e.pub.Publish(ctx, e.cfg.topic, out...); err != nil {
		return fmt.Errorf("enricher: publish %d records: %w", len(out), err)
	}
	for i := range out {
		e.m.materialized.WithLabelValues(e.entity, string(out[i].Type)).Inc()
	}
	e.published.Add(int64(len(out)))
	return nil
}

// resolve calls r for ids (at most maxLookup of them) with retries under
// br.
func (e *Enricher) resolve(ctx context.Context, br *breaker, r Resolver, entityType string, ids []string) (map[string]Record, error) {
	e.m.lookups.WithLabelValues(e.entity, br.name).Add(float64(len(ids)))
	e.m.lookupBatch.WithLabelValues(e.entity, br.name).Observe(float64(len(ids)))
	return call(ctx, e, br, len(ids), func(ctx context.Context) (map[string]Record, error) {
		return r.Resolve(ctx, entityType, ids)
	})
}

// materialize builds the output envelope of one item. A missing record
// (or a tombstone) is a DELETE whose sequence is [Enricher.deleteSequence],
// unless the id was reached by fan-out only (then nothing is published:
// the entity's own DELETE event materializes its deletion). Otherwise the
// batch created the entity if the first of its coalesced events was a
// CREATE (or SNAPSHOT), and updated it if not; the sequence is the version
// the owner returned, not the event's.
func (e *Enricher) materialize(ctx context.Context, it *item, records map[string]Record, joined []map[string][]Record) (schema.Envelope, bool, error) {
	rec, ok := records[it.id]
	gone := !ok || rec.Deleted
	if gone && it.fanned {
		return schema.Envelope{}, false, nil
	}
	op := schema.OpUpdate
	switch {
	case gone:
		op = schema.OpDelete
	case it.firstOp == schema.OpCreate || it.firstOp == schema.OpSnapshot:
		op = it.firstOp
	}
	env := schema.NewEnvelope(e.cfg.source, op, e.entity, it.id)
	env.Time = it.ev.Time
	env.TraceParent = it.ev.TraceParent
	if gone {
		seq, err := e.deleteSequence(it, rec)
		if err != nil {
			return env, false, err
		}
		env.Sequence = seq
		env.ID = e.eventID(op, it.id, env.Sequence)
		return env, true, nil
	}
	if len(e.cfg.joins) > 0 {
		var err error
		if rec, err = e.merge(it.id, rec, joined); err != nil {
			return env, false, err
		}
	}
	if e.cfg.derive != nil {
		var err error
		if rec, err = e.derived(ctx, it.id, rec); err != nil {
			return env, false, err
		}
	}
	env.Sequence = rec.Version
	env.ID = e.eventID(op, it.id, env.Sequence)
	data, ref, err := schema.EncodeData(ctx, e.reg, rec.Schema.FullName(), rec.Schema, rec.Value)
	if err != nil {
		return env, false, fmt.Errorf("enricher: %s %s: %w", e.entity, it.id, err)
	}
	env.Data, env.DataSchema, env.DataContentType = data, ref, schema.ContentTypeAvro
	return env, true, nil
}

// idNamespace is the namespace of the name-based ids of materialized
// events.
var idNamespace = uuid.NewSHA1(uuid.NameSpaceURL, []byte("//slate/enricher"))

// eventID returns the id of the materialized event of entity id at a
// sequence: a name-based UUID (version 5) of the view (its output topic),
// the entity type, the id, the sequence and the op. It is what the event
// is, not when it was made: a retried batch, or a replica that takes the
// partition over after a crash, publishes the same state under the same
// id, so the consumers' dedupe drops the repeat.
func (e *Enricher) eventID(op schema.Op, id string, seq int64) string {
	name := e.cfg.topic + "\x00" + e.entity + "\x00" + id + "\x00" + strconv.FormatInt(seq, 10) + "\x00" + string(op)
	return uuid.NewSHA1(idNamespace, []byte(name)).String()
}

// TombstoneSequence is the sequence of a DELETE the enricher publishes
// when nothing says at which version the entity was deleted: every
// coalesced change event carried sequence 0 (allowed by
// producer.PublishChange) and the resolver left the id out instead of
// returning a tombstone. It is above every version a live record or view
// can carry, so the delete still beats the last live version in sinks
// that order by external version (a DELETE with a lower sequence would be
// refused there, and the document would stay for good). The price: a
// sink that keeps tombstones (bleve for good, Elasticsearch for
// index.gc_deletes) also refuses a later re-creation of the same id. Where
// ids can come back, publish change events with the entity's version or
// have the resolver return tombstones ([Record.Deleted]).
const TombstoneSequence int64 = 1 << 62

// deleteSequence returns the sequence of the DELETE of it: the highest of
// the coalesced change events' sequences and the version of the
// resolver's tombstone (with joins, as the view's version of a primary
// at that version with nothing joined), or [TombstoneSequence] when both
// are 0.
func (e *Enricher) deleteSequence(it *item, tomb Record) (int64, error) {
	seq := it.ev.Sequence
	if tomb.Deleted {
		seq = max(seq, tomb.Version)
	}
	if seq <= 0 {
		e.m.unversionedDeletes.WithLabelValues(e.entity).Inc()
		e.cfg.log.Warn("delete without a version; publishing it with the tombstone sequence", "entity", e.entity,
			"id", it.id, "sequence", TombstoneSequence)
		return TombstoneSequence, nil
	}
	if len(e.cfg.joins) == 0 {
		return seq, nil
	}
	v, err := ViewVersion(seq)
	if err != nil {
		return 0, fmt.Errorf("enricher: %s %s delete: %w", e.entity, it.id, err)
	}
	return v, nil
}

// attempts counts failed attempts per batch, keyed by the batch's first
// and last coordinates and its length (a retried batch is the same slice
// of the same partitions).
type attempts struct {
	mu sync.Mutex
	n  map[string]int
}

// maxTracked bounds the batches remembered; past it the counts restart
// (batches abandoned by a rebalance would otherwise stay forever).
const maxTracked = 1024

func batchKey(batch []sink.Event) string {
	if len(batch) == 0 {
		return ""
	}
	f, l := &batch[0], &batch[len(batch)-1]
	return f.Topic + "/" + strconv.Itoa(int(f.Partition)) + "/" + strconv.FormatInt(f.Offset, 10) + "-" +
		l.Topic + "/" + strconv.Itoa(int(l.Partition)) + "/" + strconv.FormatInt(l.Offset, 10) + "#" + strconv.Itoa(len(batch))
}

func (a *attempts) fail(batch []sink.Event) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.n == nil || len(a.n) >= maxTracked {
		a.n = map[string]int{}
	}
	k := batchKey(batch)
	a.n[k]++
	return a.n[k]
}

func (a *attempts) forget(batch []sink.Event) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.n) > 0 {
		delete(a.n, batchKey(batch))
	}
}
