package enricher

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/hamba/avro/v2"
)

// Join adds records of another entity to every materialized record: the
// output is the primary record's fields plus one array field per join
// holding the joined records (empty when there are none). The output
// schema is a record named <primary name>View (or [WithJoinedSchemaName])
// in the primary's namespace, registered under its full name like any
// materialized record.
//
// The output's sequence is the view's version ([ViewVersion]) of the
// primary record's version and the versions of the joined records, so a
// re-materialization caused only by a joined entity's change (through a
// [FanOut]) carries a higher sequence than the output before it, and the
// sinks, which refuse an event whose sequence is not above the one they
// hold, take it. A joined record returned as a tombstone
// ([Record.Deleted]) adds its version but no array element.
type Join struct {
	// Field is the output field of the joined records.
	Field string
	// EntityType is passed to Resolver.
	EntityType string
	// Resolver looks up the joined records by key.
	Resolver Resolver
	// Schema is the Avro schema of the joined records (the array's
	// items).
	Schema avro.NamedSchema
	// Keys returns the keys to look up for one primary record. Nil means
	// the primary id itself (a schedule or budget keyed by title id).
	Keys func(id string, rec Record) []string
}

// WithJoin adds a join; repeated uses add joins in order.
func WithJoin(j Join) Option { return func(c *config) { c.joins = append(c.joins, j) } }

// WithJoinedSchemaName sets the name (in the primary schema's namespace)
// of the output schema of a joining enricher (default <primary name>View).
func WithJoinedSchemaName(name string) Option { return func(c *config) { c.joinedName = name } }

// Dependents maps ids of one entity type to the ids of the enricher's
// entity type that must be re-materialized when they change (a schedule id
// to the title it schedules). An id with no dependents may be absent. It
// must be safe for concurrent use.
type Dependents interface {
	Dependents(ctx context.Context, ids []string) (map[string][]string, error)
}

// DependentsFunc adapts a function to [Dependents].
type DependentsFunc func(ctx context.Context, ids []string) (map[string][]string, error)

// Dependents calls f.
func (f DependentsFunc) Dependents(ctx context.Context, ids []string) (map[string][]string, error) {
	return f(ctx, ids)
}

// FanOut re-materializes dependents: a change event of EntityType (the
// enricher must also consume that type's changes topic) makes the
// enricher look up and publish every id Dependents names for it. A
// dependent whose record is missing is skipped, not deleted.
type FanOut struct {
	EntityType string
	Dependents Dependents
	// SameID says the one dependent of a changed id is the same id (a
	// schedule keyed by its title's id): nothing is looked up, and
	// Dependents must be nil.
	SameID bool
}

// WithFanOut adds a fan-out; one per source entity type.
func WithFanOut(f FanOut) Option { return func(c *config) { c.fanouts = append(c.fanouts, f) } }

// dependents asks f for the dependents of ids, in chunks of maxLookup.
func (e *Enricher) dependents(ctx context.Context, f fanout, ids []string) (map[string][]string, error) {
	out := make(map[string][]string, len(ids))
	if f.SameID {
		for _, id := range ids {
			out[id] = []string{id}
		}
		return out, nil
	}
	for lo := 0; lo < len(ids); lo += e.cfg.maxLookup {
		chunk := ids[lo:min(lo+e.cfg.maxLookup, len(ids))]
		e.m.lookups.WithLabelValues(e.entity, f.br.name).Add(float64(len(chunk)))
		e.m.lookupBatch.WithLabelValues(e.entity, f.br.name).Observe(float64(len(chunk)))
		got, err := call(ctx, e, f.br, len(chunk), func(ctx context.Context) (map[string][]string, error) {
			return f.Dependents.Dependents(ctx, chunk)
		})
		if err != nil {
			return nil, err
		}
		for k, v := range got {
			out[k] = v
		}
	}
	return out, nil
}

// join resolves every join for the records of ids; the result has one map
// per join, primary id -> joined records in key order.
func (e *Enricher) join(ctx context.Context, ids []string, records map[string]Record) ([]map[string][]Record, error) {
	out := make([]map[string][]Record, len(e.cfg.joins))
	for j, jn := range e.cfg.joins {
		keysOf := make(map[string][]string, len(ids))
		var keys []string
		seen := map[string]bool{}
		for _, id := range ids {
			rec, ok := records[id]
			if !ok || rec.Deleted {
				continue
			}
			ks := []string{id}
			if jn.Keys != nil {
				ks = jn.Keys(id, rec)
			}
			keysOf[id] = ks
			for _, k := range ks {
				if !seen[k] {
					seen[k] = true
					keys = append(keys, k)
				}
			}
		}
		found := make(map[string]Record, len(keys))
		for lo := 0; lo < len(keys); lo += e.cfg.maxLookup {
			got, err := e.resolve(ctx, e.joinBr[j], jn.Resolver, jn.EntityType, keys[lo:min(lo+e.cfg.maxLookup, len(keys))])
			if err != nil {
				return nil, err
			}
			for k, r := range got {
				found[k] = r
			}
		}
		m := make(map[string][]Record, len(keysOf))
		for id, ks := range keysOf {
			for _, k := range ks {
				if r, ok := found[k]; ok {
					m[id] = append(m[id], r)
				}
			}
		}
		out[j] = m
	}
	return out, nil
}

// merge returns rec with the joined records of id added as fields (the
// tombstones left out), versioned by [ViewVersion].
func (e *Enricher) merge(id string, rec Record, joined []map[string][]Record) (Record, error) {
	s, err := e.joinedSchema(rec.Schema)
	if err != nil {
		return rec, err
	}
	v, err := toMap(rec.Schema, rec.Value)
	if err != nil {
		return rec, fmt.Errorf("enricher: %s %s: %w", e.entity, id, err)
	}
	var versions []int64
	for j, jn := range e.cfg.joins {
		rs := joined[j][id]
		arr := make([]any, 0, len(rs))
		for _, r := range rs {
			versions = append(versions, r.Version)
			if r.Deleted {
				continue
			}
			m, err := toMap(r.Schema, r.Value)
			if err != nil {
				return rec, fmt.Errorf("enricher: %s %s join %s: %w", e.entity, id, jn.Field, err)
			}
			arr = append(arr, m)
		}
		v[jn.Field] = arr
	}
	version, err := ViewVersion(rec.Version, versions...)
	if err != nil {
		return rec, fmt.Errorf("enricher: %s %s: %w", e.entity, id, err)
	}
	return Record{Version: version, Schema: s, Value: v}, nil
}

// joinedSchema returns (and caches) the output schema for a primary schema.
func (e *Enricher) joinedSchema(primary avro.NamedSchema) (avro.NamedSchema, error) {
	if s, ok := e.joined.Load(primary.FullName()); ok {
		return s.(avro.NamedSchema), nil
	}
	rs, ok := primary.(*avro.RecordSchema)
	if !ok {
		return nil, fmt.Errorf("enricher: joins need a record schema, %s is %s", primary.FullName(), primary.Type())
	}
	fields := make([]*avro.Field, 0, len(rs.Fields())+len(e.cfg.joins))
	// The primary's fields are taken as they are: rebuilding them from
	// Default() fails for defaults hamba/avro keeps in decoded form (a
	// bytes field's "" reads back as nil), and would drop aliases and
	// properties.
	fields = append(fields, rs.Fields()...)
	for _, jn := range e.cfg.joins {
		nf, err := avro.NewField(jn.Field, avro.NewArraySchema(jn.Schema), avro.WithDefault([]any{}))
		if err != nil {
			return nil, fmt.Errorf("enricher: joined schema field %s: %w", jn.Field, err)
		}
		fields = append(fields, nf)
	}
	name := e.cfg.joinedName
	if name == "" {
		name = rs.Name() + "View"
	}
	s, err := avro.NewRecordSchema(name, rs.Namespace(), fields)
	if err != nil {
		return nil, fmt.Errorf("enricher: joined schema %s: %w", name, err)
	}
	view, err := defineOnce(s)
	if err != nil {
		return nil, fmt.Errorf("enricher: joined schema %s: %w", name, err)
	}
	e.joined.Store(primary.FullName(), view)
	return view, nil
}

// defineOnce returns s with each named type (record, enum, fixed) defined
// once and referred to by name after that. The primary's and the joined
// records' schemas are separate objects, and when they hold the same named
// type (a shared enum, a message both services use) s defines it twice,
// which no parser, the registry's included, accepts. Two different
// definitions under one name are an error.
func defineOnce(s avro.NamedSchema) (avro.NamedSchema, error) {
	raw, err := json.Marshal(s)
	if err != nil {
		return nil, err
	}
	var tree any
	if err := json.Unmarshal(raw, &tree); err != nil {
		return nil, err
	}
	seen := map[string]string{} // full name -> its definition's JSON
	tree, err = referSeen(tree, seen)
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal(tree)
	if err != nil {
		return nil, err
	}
	parsed, err := avro.ParseBytesWithCache(out, "", &avro.SchemaCache{})
	if err != nil {
		return nil, err
	}
	named, ok := parsed.(avro.NamedSchema)
	if !ok {
		return nil, fmt.Errorf("not a named schema: %s", parsed.Type())
	}
	return named, nil
}

// referSeen walks a schema's JSON form (as hamba/avro writes it: every
// name in full) and replaces each repeated definition of a named type with
// its name.
func referSeen(n any, seen map[string]string) (any, error) {
	switch v := n.(type) {
	case []any:
		for i := range v {
			x, err := referSeen(v[i], seen)
			if err != nil {
				return nil, err
			}
			v[i] = x
		}
		return v, nil
	case map[string]any:
		typ, _ := v["type"].(string)
		name, _ := v["name"].(string)
		if name != "" && (typ == "record" || typ == "error" || typ == "enum" || typ == "fixed") {
			def, err := json.Marshal(v)
			if err != nil {
				return nil, err
			}
			if prev, ok := seen[name]; ok {
				if prev != string(def) {
					return nil, fmt.Errorf("two different types are named %s", name)
				}
				return name, nil
			}
			seen[name] = string(def)
		}
		for _, k := range []string{"type", "items", "values", "fields"} {
			if c, ok := v[k]; ok {
				x, err := referSeen(c, seen)
				if err != nil {
					return nil, err
				}
				v[k] = x
			}
		}
		return v, nil
	}
	return n, nil
}

// toMap returns v as the generic form of an Avro record.
func toMap(s avro.Schema, v any) (map[string]any, error) {
	if m, ok := v.(map[string]any); ok {
		out := make(map[string]any, len(m)+1)
		for k, x := range m {
			out[k] = x
		}
		return out, nil
	}
	b, err := avro.Marshal(s, v)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := avro.Unmarshal(s, b, &m); err != nil {
		return nil, err
	}
	return m, nil
}
