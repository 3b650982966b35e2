package enricher

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/hamba/avro/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/schema"
)

// Record is the current state of one entity as its owner returned it.
type Record struct {
	// Version is the owner's version of the entity; it becomes the
	// materialized event's sequence (and the sinks' external version).
	Version int64
	// Schema is the Avro schema of Value; it is registered under its full
	// name (RecordNameStrategy).
	Schema avro.NamedSchema
	// Value is the entity, encodable with Schema.
	Value any
}

// Resolver looks up the current records of entities by id. An id missing
// from the result was deleted at the source. A Resolver must be safe for
// concurrent use.
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
// all of them; *producer.Producer implements it.
type Publisher interface {
	Publish(ctx context.Context, topic string, envs ...schema.Envelope) error
}

var (
	eventsIn = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_enricher_events_total",
		Help: "Change events consumed, by entity type.",
	}, []string{"entity"})
	lookups = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_enricher_lookups_total",
		Help: "Entity ids looked up after coalescing, by entity type.",
	}, []string{"entity"})
	materialized = promauto.NewCounterVec(prometheus.CounterOpts{
		Name: "slate_enricher_materialized_total",
		Help: "Materialized events published, by entity type and TYPE.",
	}, []string{"entity", "type"})
	lookupBatch = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Name:    "slate_enricher_lookup_batch_size",
		Help:    "Ids per resolver call, by entity type.",
		Buckets: prometheus.ExponentialBuckets(1, 2, 12),
	}, []string{"entity"})
)

// ErrConfig is wrapped by every configuration error of [New].
var ErrConfig = errors.New("enricher: invalid config")

type config struct {
	source    string
	maxLookup int
	log       *slog.Logger
}

// Option configures [New].
type Option func(*config)

// WithSource sets the envelope source of materialized events (default
// //slate/enricher).
func WithSource(s string) Option { return func(c *config) { c.source = s } }

// WithMaxLookup bounds the ids of one resolver call (default 500); larger
// batches are split.
func WithMaxLookup(n int) Option { return func(c *config) { c.maxLookup = n } }

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.log = l } }

// Enricher materializes one entity type. It is safe for concurrent use if
// its Resolver and Publisher are.
type Enricher struct {
	entity string
	topic  string
	r      Resolver
	pub    Publisher
	reg    schema.Registry
	cfg    config

	published atomic.Int64
}

// New returns an enricher of entityType's change events that publishes to
// studio.<entityType>.materialized.
func New(entityType string, r Resolver, pub Publisher, reg schema.Registry, opts ...Option) (*Enricher, error) {
	cfg := config{source: "//slate/enricher", maxLookup: 500, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(&cfg)
	}
	switch {
	case entityType == "":
		return nil, fmt.Errorf("%w: entity type is empty", ErrConfig)
	case r == nil || pub == nil || reg == nil:
		return nil, fmt.Errorf("%w: resolver, publisher and registry are all required", ErrConfig)
	case cfg.maxLookup < 1:
		return nil, fmt.Errorf("%w: max lookup %d, need at least 1", ErrConfig, cfg.maxLookup)
	}
	return &Enricher{entity: entityType, topic: schema.MaterializedTopic(entityType), r: r, pub: pub, reg: reg, cfg: cfg}, nil
}

// Published returns how many materialized events this enricher published.
func (e *Enricher) Published() int64 { return e.published.Load() }

// Topic returns the output topic.
func (e *Enricher) Topic() string { return e.topic }

// Handle coalesces the batch's events by subject (many events for one id
// become one lookup), resolves the current records, and publishes one
// materialized event per id, in the order each id last appeared. It returns
// after every output is acknowledged.
func (e *Enricher) Handle(ctx context.Context, batch []sink.Event) error {
	eventsIn.WithLabelValues(e.entity).Add(float64(len(batch)))
	last := make(map[string]*sink.Event, len(batch))
	first := make(map[string]schema.Op, len(batch))
	var ids []string
	for i := range batch {
		ev := &batch[i]
		if ev.EntityType != e.entity {
			e.cfg.log.Warn("event of another entity type skipped", "want", e.entity, "got", ev.EntityType,
				"topic", ev.Topic, "partition", ev.Partition, "offset", ev.Offset)
			continue
		}
		if _, seen := last[ev.Subject]; !seen {
			ids = append(ids, ev.Subject)
			first[ev.Subject] = ev.Type
		}
		last[ev.Subject] = ev
	}
	if len(ids) == 0 {
		return nil
	}
	records := make(map[string]Record, len(ids))
	for start := 0; start < len(ids); start += e.cfg.maxLookup {
		chunk := ids[start:min(start+e.cfg.maxLookup, len(ids))]
		lookups.WithLabelValues(e.entity).Add(float64(len(chunk)))
		lookupBatch.WithLabelValues(e.entity).Observe(float64(len(chunk)))
		got, err := e.r.Resolve(ctx, e.entity, chunk)
		if err != nil {
			return fmt.Errorf("enricher: resolve %d %s ids: %w", len(chunk), e.entity, err)
		}
		for id, rec := range got {
			records[id] = rec
		}
	}
	out := make([]schema.Envelope, 0, len(ids))
	for _, id := range ids {
		env, err := e.materialize(ctx, last[id], first[id], records, id)
		if err != nil {
			return err
		}
		out = append(out, env)
	}
	if err := e.pub.Publish(ctx, e.topic, out...); err != nil {
		return fmt.Errorf("enricher: publish %d records: %w", len(out), err)
	}
	for i := range out {
		materialized.WithLabelValues(e.entity, string(out[i].Type)).Inc()
	}
	e.published.Add(int64(len(out)))
	return nil
}

// materialize builds the output envelope of one id from the last of its
// coalesced events (ev) and the op of the first (firstOp). A missing record
// is a DELETE carrying the change event's sequence. Otherwise the batch
// created the entity if its first event was a CREATE (or SNAPSHOT), and
// updated it if not; the sequence is the version the owner returned, not
// the event's.
func (e *Enricher) materialize(ctx context.Context, ev *sink.Event, firstOp schema.Op, records map[string]Record, id string) (schema.Envelope, error) {
	rec, ok := records[id]
	op := schema.OpUpdate
	switch {
	case !ok:
		op = schema.OpDelete
	case firstOp == schema.OpCreate || firstOp == schema.OpSnapshot:
		op = firstOp
	}
	env := schema.NewEnvelope(e.cfg.source, op, e.entity, id)
	env.Time = ev.Time
	env.TraceParent = ev.TraceParent
	if !ok {
		env.Sequence = ev.Sequence
		return env, nil
	}
	env.Sequence = rec.Version
	data, ref, err := schema.EncodeData(ctx, e.reg, rec.Schema.FullName(), rec.Schema, rec.Value)
	if err != nil {
		return env, fmt.Errorf("enricher: %s %s: %w", e.entity, id, err)
	}
	env.Data, env.DataSchema, env.DataContentType = data, ref, schema.ContentTypeAvro
	return env, nil
}
