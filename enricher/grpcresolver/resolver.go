package grpcresolver

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/hamba/avro/v2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/slatehq/slate/enricher"
)

// Defaults of [New].
const (
	// DefaultParallel is how many unary calls a get resolver makes at a
	// time within one Resolve.
	DefaultParallel = 8
	// DefaultStartTimeout bounds what New does over the network:
	// reaching the target and reading its server reflection.
	DefaultStartTimeout = 10 * time.Second
)

type config struct {
	creds        credentials.TransportCredentials
	dialOpts     []grpc.DialOption
	callOpts     []grpc.CallOption
	parallel     int
	startTimeout time.Duration
	log          *slog.Logger
}

// Option configures [New].
type Option func(*config)

// WithTransportCredentials sets the connection's credentials (default
// plaintext, insecure.NewCredentials).
func WithTransportCredentials(c credentials.TransportCredentials) Option {
	return func(cfg *config) { cfg.creds = c }
}

// WithTLS connects over TLS with c (with c.Certificates set, mTLS); it is
// [WithTransportCredentials] of credentials.NewTLS(c).
func WithTLS(c *tls.Config) Option {
	return WithTransportCredentials(credentials.NewTLS(c))
}

// WithDialOptions adds options of grpc.NewClient (interceptors, per-RPC
// credentials, keepalive, a service config). They come after the
// transport credentials, so one of them may replace those. Repeated uses
// add up.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(cfg *config) { cfg.dialOpts = append(cfg.dialOpts, opts...) }
}

// WithCallOptions adds options of every call to the method (a larger
// grpc.MaxCallRecvMsgSize, grpc.WaitForReady). Repeated uses add up.
func WithCallOptions(opts ...grpc.CallOption) Option {
	return func(cfg *config) { cfg.callOpts = append(cfg.callOpts, opts...) }
}

// WithParallel sets how many unary calls a get resolver makes at a time
// within one Resolve (default [DefaultParallel]).
func WithParallel(n int) Option { return func(cfg *config) { cfg.parallel = n } }

// WithStartTimeout bounds New's network work (default
// [DefaultStartTimeout]); New's context bounds it too.
func WithStartTimeout(d time.Duration) Option { return func(cfg *config) { cfg.startTimeout = d } }

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(cfg *config) { cfg.log = l } }

// Resolver calls one unary method of a service it has no generated code
// for. Built with kind batch_get or get it is an [enricher.Resolver], with
// kind dependents an [enricher.Dependents]; the other interface's method
// fails. It is safe for concurrent use.
type Resolver struct {
	spec   Spec
	method string // /package.Service/Method
	conn   *grpc.ClientConn
	cfg    config

	req, resp protoreflect.MessageDescriptor
	ids       protoreflect.FieldDescriptor

	// batch_get and get
	records protoreflect.FieldDescriptor // nil: for get, the response is the record
	id      protoreflect.FieldDescriptor
	version protoreflect.FieldDescriptor // may be nil
	deleted protoreflect.FieldDescriptor // may be nil
	schema  *avro.RecordSchema
	conv    *msgConv
	perID   enricher.Resolver

	// dependents
	deps    protoreflect.FieldDescriptor
	depKey  protoreflect.FieldDescriptor // nil for the map form
	depsIDs protoreflect.FieldDescriptor
}

var (
	_ enricher.Resolver   = (*Resolver)(nil)
	_ enricher.Dependents = (*Resolver)(nil)
)

// New connects to spec.Target, loads the method's descriptors (from
// spec.DescriptorSet, or from the target's server reflection), checks
// every setting of spec against them and derives the Avro schema of the
// records. An error about a setting wraps [ErrSpec] and names the setting
// (by its YAML name) and the cause; a target that cannot be reached fails
// with an error for which [enricher.IsRetryable] is true. Close the
// resolver when done. spec.TLS dials over TLS; [WithTLS] and
// [WithTransportCredentials] replace it.
func New(ctx context.Context, spec Spec, opts ...Option) (*Resolver, error) {
	cfg := config{creds: insecure.NewCredentials(), parallel: DefaultParallel,
		startTimeout: DefaultStartTimeout, log: slog.New(slog.DiscardHandler)}
	if spec.TLS != nil {
		tc, err := spec.TLS.Config()
		if err != nil {
			return nil, fmt.Errorf("%w: tls.%w", ErrSpec, err)
		}
		cfg.creds = credentials.NewTLS(tc)
	}
	for _, o := range opts {
		o(&cfg)
	}
	switch {
	case cfg.creds == nil:
		return nil, fmt.Errorf("%w: transport credentials are nil", ErrSpec)
	case cfg.parallel < 1:
		return nil, fmt.Errorf("%w: parallel %d, need at least 1", ErrSpec, cfg.parallel)
	case cfg.startTimeout <= 0:
		return nil, fmt.Errorf("%w: start timeout %v, need > 0", ErrSpec, cfg.startTimeout)
	}
	if cfg.log == nil {
		cfg.log = slog.New(slog.DiscardHandler)
	}
	spec = withDefaults(spec)
	service, method, err := check(spec)
	if err != nil {
		return nil, err
	}

	var files *protoregistry.Files
	source := "descriptor_set " + spec.DescriptorSet
	if spec.DescriptorSet != "" {
		// Read the file first: a bad file is a setting to fix, whatever
		// the target does.
		if files, err = loadDescriptorSet(spec.DescriptorSet); err != nil {
			return nil, err
		}
	}
	conn, err := grpc.NewClient(spec.Target, append([]grpc.DialOption{grpc.WithTransportCredentials(cfg.creds)}, cfg.dialOpts...)...)
	if err != nil {
		return nil, specError("target", "%q: %v", spec.Target, err)
	}
	r := &Resolver{spec: spec, method: "/" + service + "/" + method, conn: conn, cfg: cfg}
	if err := r.start(ctx, files, source, service, method); err != nil {
		conn.Close()
		return nil, err
	}
	return r, nil
}

// start loads the descriptors, when files is nil, and binds the spec.
func (r *Resolver) start(ctx context.Context, files *protoregistry.Files, source, service, method string) error {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.startTimeout)
	defer cancel()
	if files != nil {
		if err := checkReachable(ctx, r.conn, r.spec.Target); err != nil {
			return err
		}
	} else {
		var (
			api string
			err error
		)
		files, api, err = reflectDescriptors(ctx, r.conn, r.spec.Target, service)
		if err != nil {
			return err
		}
		source = "the target's server reflection (" + api + ")"
	}
	md, err := findMethod(files, source, service, method)
	if err != nil {
		return err
	}
	if err := r.bind(md); err != nil {
		return err
	}
	if r.spec.Method == enricher.MethodGet {
		r.perID = enricher.PerID(r.get, r.cfg.parallel)
	}
	r.cfg.log.InfoContext(ctx, "grpc resolver ready", "target", r.spec.Target, "rpc", r.method,
		"method", r.spec.Method, "descriptors", source)
	return nil
}

// bind checks the spec's fields against the method's messages.
func (r *Resolver) bind(md protoreflect.MethodDescriptor) error {
	s := r.spec
	r.req, r.resp = md.Input(), md.Output()
	var err error
	if s.Method == enricher.MethodGet {
		r.ids, err = lookupField("ids_field", r.req, s.IDsField, shapeString)
	} else {
		r.ids, err = lookupField("ids_field", r.req, s.IDsField, shapeRepeatedString)
	}
	if err != nil {
		return err
	}
	if s.Method == enricher.MethodDependents {
		return r.bindDependents()
	}
	rec := r.resp
	switch {
	case s.Method == enricher.MethodBatchGet:
		if r.records, err = lookupField("records_field", r.resp, s.RecordsField, shapeRepeatedMessage); err != nil {
			return err
		}
		rec = r.records.Message()
	case s.RecordsField != "":
		if r.records, err = lookupField("records_field", r.resp, s.RecordsField, shapeMessage); err != nil {
			return err
		}
		rec = r.records.Message()
	}
	setting := "records_field"
	if r.records == nil {
		setting = "rpc"
	}
	if wellKnown(rec) != wkNone {
		return specError(setting, "the records are %s, a well-known type, not a record message", rec.FullName())
	}
	if r.id, err = lookupField("id_field", rec, s.IDField, shapeString); err != nil {
		return err
	}
	if s.VersionField != "" {
		if r.version, err = lookupField("version_field", rec, s.VersionField, shapeInteger); err != nil {
			return err
		}
	}
	if s.DeletedField != "" {
		if r.deleted, err = lookupField("deleted_field", rec, s.DeletedField, shapeBool); err != nil {
			return err
		}
	}
	if r.schema, r.conv, err = deriveRecord(rec); err != nil {
		return specError(setting, "record %s has no Avro schema: %v", rec.FullName(), err)
	}
	return nil
}

func (r *Resolver) bindDependents() error {
	s := r.spec
	f, err := lookupField("dependents_field", r.resp, s.DependentsField, shapeAny)
	if err != nil {
		return err
	}
	r.deps = f
	var value protoreflect.MessageDescriptor
	switch {
	case f.IsMap():
		if f.MapKey().Kind() != protoreflect.StringKind || f.MapValue().Kind() != protoreflect.MessageKind {
			return specError("dependents_field", "%s is %s; want map<string, M> or repeated M", describeField(f), describeShape(f))
		}
		value = f.MapValue().Message()
	case f.IsList() && f.Kind() == protoreflect.MessageKind:
		value = f.Message()
		if r.depKey, err = lookupField("dependents_key_field", value, s.DependentsKeyField, shapeString); err != nil {
			return err
		}
	default:
		return specError("dependents_field", "%s is %s; want map<string, M> or repeated M", describeField(f), describeShape(f))
	}
	r.depsIDs, err = lookupField("dependents_ids_field", value, s.DependentsIDsField, shapeRepeatedString)
	return err
}

// Schema returns the Avro schema of the records' values (nil for a
// dependents resolver), for a caller to register it or to use it as a
// join's schema.
func (r *Resolver) Schema() avro.NamedSchema {
	if r.schema == nil {
		return nil
	}
	return r.schema
}

// Close closes the connection.
func (r *Resolver) Close() error { return r.conn.Close() }

// Reachable reports, for a readiness probe, whether the target answers:
// nil while the connection is ready, connecting or idle (an idle one is
// asked to connect), an error naming the target while it is failing.
func (r *Resolver) Reachable() error {
	switch st := r.conn.GetState(); st {
	case connectivity.TransientFailure, connectivity.Shutdown:
		return fmt.Errorf("grpcresolver: target %s is unreachable (%s)", r.spec.Target, st)
	case connectivity.Idle:
		r.conn.Connect()
	}
	return nil
}

// Resolve implements [enricher.Resolver]: batch_get makes one call with
// all ids; get makes one call per id, [WithParallel] at a time, and an id
// answered NOT_FOUND (or, for a get whose records_field is set, with that
// field unset) is left out. A record marked by the deleted_field is a
// tombstone. entityType is not sent: the method decides what it returns.
func (r *Resolver) Resolve(ctx context.Context, entityType string, ids []string) (map[string]enricher.Record, error) {
	switch r.spec.Method {
	case enricher.MethodGet:
		return r.perID.Resolve(ctx, entityType, ids)
	case enricher.MethodBatchGet:
		return r.batchGet(ctx, ids)
	}
	return nil, fmt.Errorf("grpcresolver: %s is a dependents resolver; it does not resolve records", r.method)
}

// callIDs calls the method with ids in the request's ids field.
func (r *Resolver) callIDs(ctx context.Context, ids []string) (*dynamicpb.Message, error) {
	req := dynamicpb.NewMessage(r.req)
	l := req.Mutable(r.ids).List()
	for _, id := range ids {
		l.Append(protoreflect.ValueOfString(id))
	}
	resp := dynamicpb.NewMessage(r.resp)
	if err := r.invoke(ctx, req, resp); err != nil {
		return nil, fmt.Errorf("grpcresolver: %s of %d ids: %w", r.method, len(ids), err)
	}
	return resp, nil
}

func (r *Resolver) batchGet(ctx context.Context, ids []string) (map[string]enricher.Record, error) {
	resp, err := r.callIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	recs := resp.Get(r.records).List()
	out := make(map[string]enricher.Record, recs.Len())
	for i := range recs.Len() {
		m := recs.Get(i).Message()
		id := m.Get(r.id).String()
		if id == "" {
			return nil, fmt.Errorf("grpcresolver: %s: record %d of %s has an empty %s", r.method, i, r.spec.RecordsField, r.spec.IDField)
		}
		rec, err := r.record(m)
		if err != nil {
			return nil, fmt.Errorf("grpcresolver: %s: record %q: %w", r.method, id, err)
		}
		out[id] = rec
	}
	return out, nil
}

// get is the [enricher.GetFunc] of a get resolver.
func (r *Resolver) get(ctx context.Context, _ string, id string) (enricher.Record, bool, error) {
	req := dynamicpb.NewMessage(r.req)
	req.Set(r.ids, protoreflect.ValueOfString(id))
	resp := dynamicpb.NewMessage(r.resp)
	if err := r.invoke(ctx, req, resp); err != nil {
		return enricher.Record{}, false, fmt.Errorf("grpcresolver: %s of %q: %w", r.method, id, err)
	}
	var m protoreflect.Message = resp
	if r.records != nil {
		if !resp.Has(r.records) {
			return enricher.Record{}, false, nil
		}
		m = resp.Get(r.records).Message()
	} else if m.Get(r.id).String() == "" {
		// An empty response stands for no record.
		return enricher.Record{}, false, nil
	}
	rec, err := r.record(m)
	if err != nil {
		return enricher.Record{}, false, fmt.Errorf("grpcresolver: %s: record %q: %w", r.method, id, err)
	}
	return rec, true, nil
}

// record converts one record message.
func (r *Resolver) record(m protoreflect.Message) (enricher.Record, error) {
	var rec enricher.Record
	if r.version != nil {
		v := m.Get(r.version)
		switch r.version.Kind() {
		case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
			u := v.Uint()
			if u > math.MaxInt64 {
				return rec, fmt.Errorf("%s %d is above the int64 range", r.spec.VersionField, u)
			}
			rec.Version = int64(u)
		default:
			rec.Version = v.Int()
		}
	}
	if r.deleted != nil && m.Get(r.deleted).Bool() {
		rec.Deleted = true
		return rec, nil
	}
	value, err := r.conv.convert(m)
	if err != nil {
		return rec, err
	}
	rec.Schema, rec.Value = r.schema, value
	return rec, nil
}

// Dependents implements [enricher.Dependents] for a dependents resolver:
// one call with all ids. Repeated entries of one id add up.
func (r *Resolver) Dependents(ctx context.Context, ids []string) (map[string][]string, error) {
	if r.spec.Method != enricher.MethodDependents {
		return nil, fmt.Errorf("grpcresolver: %s is a %s resolver, not a dependents one", r.method, r.spec.Method)
	}
	resp, err := r.callIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := map[string][]string{}
	addIDs := func(key string, m protoreflect.Message) {
		l := m.Get(r.depsIDs).List()
		for i := range l.Len() {
			out[key] = append(out[key], l.Get(i).String())
		}
	}
	v := resp.Get(r.deps)
	if r.deps.IsMap() {
		v.Map().Range(func(k protoreflect.MapKey, v protoreflect.Value) bool {
			addIDs(k.String(), v.Message())
			return true
		})
		return out, nil
	}
	entries := v.List()
	for i := range entries.Len() {
		m := entries.Get(i).Message()
		addIDs(m.Get(r.depKey).String(), m)
	}
	return out, nil
}

func (r *Resolver) invoke(ctx context.Context, req, resp *dynamicpb.Message) error {
	ctx, cancel := context.WithTimeout(ctx, r.spec.Timeout)
	defer cancel()
	return r.conn.Invoke(ctx, r.method, req, resp, r.cfg.callOpts...)
}
