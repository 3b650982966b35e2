package enricher

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/hamba/avro/v2"
)

// A Deriver computes a view's record from the record the pipeline built:
// the primary's, with its joins. It is the step where a view's arithmetic
// runs (a projection, a summary), in the pipeline, never in the services
// at write time. It must be safe for concurrent use.
type Deriver interface {
	// Schema is the schema of the records Derive returns.
	Schema() avro.NamedSchema
	// Derive returns the derived record of entity id at version from the
	// generic form of the built record (Avro field names to values, as
	// hamba/avro decodes them). An error [IsRetryable] counts is retried
	// with the batch; any other error fails the batch like a lookup error,
	// and a record that keeps failing is dead-lettered.
	Derive(ctx context.Context, id string, version int64, record map[string]any) (map[string]any, error)
	// Close releases what the deriver holds (side inputs, connections).
	Close() error
}

// DeriveFactory builds a [Deriver] from the settings of a pipeline's
// derive entry. Its errors about a setting should name it.
type DeriveFactory func(ctx context.Context, settings map[string]string) (Deriver, error)

var (
	derivesMu sync.RWMutex
	derives   = map[string]DeriveFactory{}
)

// RegisterDerive makes a deriver available to pipelines under name, the
// way Kafka Connect names its transforms: a pipeline's `derive: {name:
// studio.cashflow}` builds it with f. Register from an init function of
// the package that owns the arithmetic, and import that package in the
// binary that runs the pipelines. It panics when name is empty or taken.
func RegisterDerive(name string, f DeriveFactory) {
	derivesMu.Lock()
	defer derivesMu.Unlock()
	if name == "" || f == nil {
		panic("enricher: RegisterDerive with an empty name or a nil factory")
	}
	if _, dup := derives[name]; dup {
		panic("enricher: RegisterDerive called twice for " + name)
	}
	derives[name] = f
}

// Derives returns the names of the registered derivers, sorted.
func Derives() []string {
	derivesMu.RLock()
	defer derivesMu.RUnlock()
	return slices.Sorted(maps.Keys(derives))
}

// NewDerive builds the deriver registered under name.
func NewDerive(ctx context.Context, name string, settings map[string]string) (Deriver, error) {
	derivesMu.RLock()
	f, ok := derives[name]
	derivesMu.RUnlock()
	if !ok {
		have := "none are"
		if names := Derives(); len(names) > 0 {
			have = fmt.Sprintf("registered: %v", names)
		}
		return nil, fmt.Errorf("%w: no deriver is registered as %q (%s)", ErrConfig, name, have)
	}
	return f(ctx, settings)
}

// WithDerive computes each published record with d, after the joins: the
// output record is d's, in d's schema, at the version of the built record
// (the primary's, or the view version of a join). Deletes are published as
// they are.
func WithDerive(d Deriver) Option { return func(c *config) { c.derive = d } }

// derived returns the record d derives from rec.
func (e *Enricher) derived(ctx context.Context, id string, rec Record) (Record, error) {
	v, err := toMap(rec.Schema, rec.Value)
	if err != nil {
		return rec, fmt.Errorf("enricher: %s %s: %w", e.entity, id, err)
	}
	out, err := e.cfg.derive.Derive(ctx, id, rec.Version, v)
	if err != nil {
		return rec, fmt.Errorf("enricher: %s %s: derive %s: %w", e.entity, id, e.cfg.derive.Schema().FullName(), err)
	}
	return Record{Version: rec.Version, Schema: e.cfg.derive.Schema(), Value: out}, nil
}
