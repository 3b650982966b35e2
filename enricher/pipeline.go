package enricher

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/hamba/avro/v2"
	"gopkg.in/yaml.v3"

	"github.com/slatehq/slate/schema"
)

// Resolver method kinds of a [ResolverSpec].
const (
	// MethodBatchGet is one call per chunk of ids (BatchGet<Entity>).
	MethodBatchGet = "batch_get"
	// MethodGet is one unary call per id (Get<Entity>); see [PerID].
	MethodGet = "get"
	// MethodDependents maps changed ids to dependent ids, for fan-out.
	MethodDependents = "dependents"
)

// Pipeline is an enricher's definition as loaded from YAML:
//
//	entity_type: title
//	primary: titles
//	resolvers:
//	  titles:    {target: "titles:9090", method: batch_get}
//	  schedules: {target: "schedules:9090", method: batch_get}
//	  scheduled: {target: "schedules:9090", method: dependents}
//	joins:
//	  - {field: schedules, resolver: schedules, entity_type: schedule}
//	fan_out:
//	  - {entity_type: schedule, resolver: scheduled}
//
// Unset fields take the defaults of [Pipeline.Defaults]. Targets are not
// dialled here: the caller turns each resolver spec into a [Resolver] or
// [Dependents] and passes them to [Pipeline.Options].
type Pipeline struct {
	// Name names the pipeline (default <entity_type>-enricher); it is the
	// natural consumer group.
	Name string `yaml:"name"`
	// EntityType is the entity materialized. Required.
	EntityType string `yaml:"entity_type"`
	// Inputs are the topics consumed (default the changes topic of the
	// entity type and of every fan-out source).
	Inputs []string `yaml:"inputs"`
	// Output is the output topic (default studio.<entity_type>.materialized).
	Output string `yaml:"output"`
	// Primary names the resolver of the entity itself (default: the
	// resolver named like the entity type).
	Primary string `yaml:"primary"`
	// PrimaryEntityType is the entity type of the primary's records when
	// the view has an entity type of its own (a cashflow view of
	// budgets): its change events are the view's own ([WithPrimaryEntity]).
	// Default: the entity type.
	PrimaryEntityType string `yaml:"primary_entity_type"`
	// Resolvers are the services looked up, by name. Required.
	Resolvers map[string]ResolverSpec `yaml:"resolvers"`
	// Joins add other entities' records to the output record.
	Joins []JoinSpec `yaml:"joins"`
	// FanOut re-materializes dependents when another entity changes.
	FanOut []FanOutSpec `yaml:"fan_out"`
	// Derive computes the output record from the built one with a
	// registered deriver ([RegisterDerive]); empty publishes the built
	// record.
	Derive DeriveSpec `yaml:"derive"`
	// Concurrency is [WithConcurrency] (default 4).
	Concurrency int `yaml:"concurrency"`
	// MaxLookup is [WithMaxLookup] (default 500).
	MaxLookup int `yaml:"max_lookup"`
	// Retry is [WithRetry].
	Retry RetrySpec `yaml:"retry"`
	// Breaker is [WithBreaker].
	Breaker BreakerSpec `yaml:"breaker"`
	// DeadLetter is [WithDeadLetterAfter]; enabled, it needs a publisher.
	DeadLetter DeadLetterSpec `yaml:"dead_letter"`
	// Transactional runs the pipeline exactly once: outputs and input
	// offsets commit in one Kafka transaction. The runner then builds the
	// producer with producer.WithTransactionalID, wraps the enricher with
	// [NewTransactional] and runs it with consumer.WithTransactional.
	Transactional bool `yaml:"transactional"`
	// TransactionalID is the transactional producer's transactional.id
	// (only with Transactional; default <client id>-<host>-<pid>). Give
	// each instance a stable id of its own (say ${HOSTNAME}-titles in a
	// StatefulSet): a restarted instance then aborts the transaction its
	// predecessor left open when it starts, instead of leaving
	// read_committed consumers of the output waiting for the broker's
	// transaction timeout. Two running instances with one id fence each
	// other.
	TransactionalID string `yaml:"transactional_id"`
}

// ResolverSpec is one service the pipeline asks: which unary method of
// which gRPC service to call and where in its messages the ids, records,
// versions and tombstones are. It is also the Spec of the generic gRPC
// resolver (enricher/grpcresolver), which calls services slate has no
// generated code for. Field names are the protobuf names (snake_case) of
// top-level fields of the message concerned.
type ResolverSpec struct {
	// Target is the gRPC target (host:port or a resolver URI). Required.
	Target string `yaml:"target"`
	// Method is the kind of method: [MethodBatchGet] (default),
	// [MethodGet] or [MethodDependents].
	Method string `yaml:"method"`
	// RPC is the full method name, <package>.<Service>/<Method>, as in
	// studio.titles.v1.Titles/BatchGetTitles (a leading slash, or a dot in
	// place of the slash, is accepted). The method must be unary. Required.
	RPC string `yaml:"rpc"`
	// IDsField is the request field carrying the ids: a repeated string
	// for batch_get and dependents (default "ids"), a string for get
	// (default "id").
	IDsField string `yaml:"ids_field"`
	// RecordsField is the response field holding the records: a repeated
	// message for batch_get (required); for get a message field, or empty
	// when the response itself is the record. Not for dependents.
	RecordsField string `yaml:"records_field"`
	// IDField is the record's id, a string (default "id"). A batch_get
	// record answers the id it carries; ids asked for and not answered
	// were deleted at the source. Not for dependents.
	IDField string `yaml:"id_field"`
	// VersionField is the record's version, an integer field (int32,
	// int64, uint32, uint64 and their sint/fixed forms; a uint64 above
	// the int64 range fails the record). Empty (the default): records
	// carry version 0, which the enricher treats as no version. Not for
	// dependents.
	VersionField string `yaml:"version_field"`
	// DeletedField is an optional bool of the record marking a tombstone
	// ([Record.Deleted]): the owner deleted the entity at the record's
	// version. Not for dependents.
	DeletedField string `yaml:"deleted_field"`
	// DependentsField is, for dependents (required), the response field
	// mapping each changed id to its dependents' ids, in one of two forms:
	//
	//	map<string, Ids> dependents = 1;   // message Ids { repeated string ids = 1; }
	//	repeated Edge dependents = 1;      // message Edge { string id = 1; repeated string ids = 2; }
	//
	// A map's key is the changed id; an entry of the repeated form names
	// it in DependentsKeyField. Either way the dependents' ids are the
	// repeated string DependentsIDsField of the value.
	DependentsField string `yaml:"dependents_field"`
	// DependentsKeyField is the changed id of an entry of the repeated
	// form of DependentsField, a string (default "id").
	DependentsKeyField string `yaml:"dependents_key_field"`
	// DependentsIDsField is the dependents' ids in a value of
	// DependentsField, a repeated string (default "ids").
	DependentsIDsField string `yaml:"dependents_ids_field"`
	// DescriptorSet is the path of a file descriptor set holding the
	// service, as written by protoc --descriptor_set_out=FILE
	// --include_imports. Empty (the default): the descriptors come from
	// the target's server reflection (grpc.reflection.v1, or v1alpha when
	// the server has only that).
	DescriptorSet string `yaml:"descriptor_set"`
	// TLS dials the target over TLS; nil dials in plaintext.
	TLS *ClientTLS `yaml:"tls"`
	// Timeout bounds one call (default 5s); a get resolver bounds each of
	// its unary calls by it.
	Timeout time.Duration `yaml:"timeout"`
}

// ClientTLS is the client side of TLS: whom to trust and what certificate
// to present. Paths are of PEM files.
type ClientTLS struct {
	// CAFile is the bundle of the CAs that sign the server's certificate;
	// empty trusts the system's roots.
	CAFile string `yaml:"ca_file"`
	// CertFile and KeyFile are the certificate and key the client
	// presents (mutual TLS); both or neither.
	CertFile string `yaml:"cert_file"`
	KeyFile  string `yaml:"key_file"`
	// ServerName is the name the server's certificate must carry (default:
	// the host dialled).
	ServerName string `yaml:"server_name"`
}

// Config reads the files and returns the TLS configuration, TLS 1.2 or
// newer. Its errors name the setting (ca_file, cert_file).
func (t *ClientTLS) Config() (*tls.Config, error) {
	c := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
	if t.CAFile != "" {
		pem, err := os.ReadFile(t.CAFile)
		if err != nil {
			return nil, fmt.Errorf("ca_file: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file: %s holds no PEM certificate", t.CAFile)
		}
	}
	switch {
	case t.CertFile != "" && t.KeyFile != "":
		cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("cert_file: %w", err)
		}
		c.Certificates = []tls.Certificate{cert}
	case t.CertFile != "" || t.KeyFile != "":
		return nil, errors.New("cert_file: cert_file and key_file go together (mutual TLS)")
	}
	return c, nil
}

// JoinSpec is one [Join].
type JoinSpec struct {
	// Field is the output field. Required.
	Field string `yaml:"field"`
	// Resolver names a batch_get or get resolver. Required.
	Resolver string `yaml:"resolver"`
	// EntityType is the joined entity type (default: the field).
	EntityType string `yaml:"entity_type"`
}

// DeriveSpec names a registered [Deriver] and its settings.
type DeriveSpec struct {
	// Name is the name it was registered under. Empty: no derive step.
	Name string `yaml:"name"`
	// Settings are passed to its [DeriveFactory].
	Settings map[string]string `yaml:"settings"`
}

// FanOutSpec is one [FanOut].
type FanOutSpec struct {
	// EntityType is the source entity type. Required.
	EntityType string `yaml:"entity_type"`
	// Resolver names a dependents resolver. Required unless same_id.
	Resolver string `yaml:"resolver"`
	// SameID says a change of the source re-materializes the view of the
	// same id ([FanOut.SameID]); then there is no resolver.
	SameID bool `yaml:"same_id"`
}

// RetrySpec is a [RetryPolicy].
type RetrySpec struct {
	Attempts int           `yaml:"attempts"`
	Base     time.Duration `yaml:"base"`
	Max      time.Duration `yaml:"max"`
}

// BreakerSpec configures the circuit breakers.
type BreakerSpec struct {
	Failures int           `yaml:"failures"`
	Cooldown time.Duration `yaml:"cooldown"`
}

// DeadLetterSpec configures dead letters.
type DeadLetterSpec struct {
	Enabled  bool `yaml:"enabled"`
	Attempts int  `yaml:"attempts"`
}

// LoadPipeline reads a YAML pipeline, rejecting unknown fields, applies
// the defaults and validates it.
func LoadPipeline(r io.Reader) (*Pipeline, error) {
	dec := yaml.NewDecoder(r)
	dec.KnownFields(true)
	var p Pipeline
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("%w: pipeline: %w", ErrConfig, err)
	}
	p.Defaults()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

// LoadPipelineFile is [LoadPipeline] of a file.
func LoadPipelineFile(path string) (*Pipeline, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("enricher: pipeline: %w", err)
	}
	p, err := LoadPipeline(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return p, nil
}

// Defaults fills the unset fields.
func (p *Pipeline) Defaults() {
	if p.Name == "" && p.EntityType != "" {
		p.Name = p.EntityType + "-enricher"
	}
	if p.Output == "" && p.EntityType != "" {
		p.Output = schema.MaterializedTopic(p.EntityType)
	}
	if p.PrimaryEntityType == "" {
		p.PrimaryEntityType = p.EntityType
	}
	if p.Primary == "" {
		p.Primary = p.PrimaryEntityType
	}
	if len(p.Inputs) == 0 && p.EntityType != "" {
		p.Inputs = []string{schema.ChangesTopic(p.PrimaryEntityType)}
		for _, f := range p.FanOut {
			if f.EntityType != "" {
				p.Inputs = append(p.Inputs, schema.ChangesTopic(f.EntityType))
			}
		}
	}
	for name, r := range p.Resolvers {
		if r.Method == "" {
			r.Method = MethodBatchGet
		}
		if r.Timeout == 0 {
			r.Timeout = 5 * time.Second
		}
		p.Resolvers[name] = r
	}
	for i := range p.Joins {
		if p.Joins[i].EntityType == "" {
			p.Joins[i].EntityType = p.Joins[i].Field
		}
	}
	if p.Concurrency == 0 {
		p.Concurrency = DefaultConcurrency
	}
	if p.MaxLookup == 0 {
		p.MaxLookup = DefaultMaxLookup
	}
	p.Retry = RetrySpec(RetryPolicy(p.Retry).withDefaults())
	if p.Breaker.Failures == 0 {
		p.Breaker.Failures = DefaultBreakerFailures
	}
	if p.Breaker.Cooldown == 0 {
		p.Breaker.Cooldown = DefaultBreakerCooldown
	}
	if p.DeadLetter.Attempts == 0 {
		p.DeadLetter.Attempts = DefaultDeadLetterAfter
	}
}

// FieldError is a pipeline setting that cannot work, named by its YAML
// path within the pipeline ("resolvers.titles.target"), so that a caller
// embedding pipelines in a larger file can name it by its full path. It
// wraps [ErrConfig].
type FieldError struct {
	// Field is the YAML path of the setting within the pipeline.
	Field string
	// Problem says what is wrong with it ("required").
	Problem string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%v: pipeline %s: %s", ErrConfig, e.Field, e.Problem)
}

// Unwrap returns [ErrConfig].
func (e *FieldError) Unwrap() error { return ErrConfig }

// Validate checks the pipeline and names the first bad field by its YAML
// path; the error is a [*FieldError].
func (p *Pipeline) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &FieldError{Field: field, Problem: fmt.Sprintf(format, args...)}
	}
	switch {
	case p.EntityType == "":
		return bad("entity_type", "required")
	case p.Output == "":
		return bad("output", "required")
	case len(p.Inputs) == 0:
		return bad("inputs", "needs at least one topic")
	case len(p.Resolvers) == 0:
		return bad("resolvers", "needs at least one resolver")
	case p.Concurrency < 1:
		return bad("concurrency", "%d, need at least 1", p.Concurrency)
	case p.MaxLookup < 1:
		return bad("max_lookup", "%d, need at least 1", p.MaxLookup)
	case p.Retry.Attempts < 1:
		return bad("retry.attempts", "%d, need at least 1", p.Retry.Attempts)
	case p.Retry.Max < p.Retry.Base:
		return bad("retry.max", "%v is below retry.base %v", p.Retry.Max, p.Retry.Base)
	case p.Breaker.Failures < 1:
		return bad("breaker.failures", "%d, need at least 1", p.Breaker.Failures)
	case p.Breaker.Cooldown <= 0:
		return bad("breaker.cooldown", "%v, need > 0", p.Breaker.Cooldown)
	case p.DeadLetter.Attempts < 1:
		return bad("dead_letter.attempts", "%d, need at least 1", p.DeadLetter.Attempts)
	case p.TransactionalID != "" && !p.Transactional:
		return bad("transactional_id", "%q is set but transactional is not", p.TransactionalID)
	case len(p.TransactionalID) > 249 || strings.ContainsFunc(p.TransactionalID, unicode.IsSpace):
		return bad("transactional_id", "%.40q: at most 249 characters, no spaces", p.TransactionalID)
	}
	for i, in := range p.Inputs {
		if in == "" {
			return bad(fmt.Sprintf("inputs[%d]", i), "is empty")
		}
	}
	names := make([]string, 0, len(p.Resolvers))
	for name := range p.Resolvers {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		r := p.Resolvers[name]
		switch {
		case r.Target == "":
			return bad("resolvers."+name+".target", "required")
		case !slices.Contains([]string{MethodBatchGet, MethodGet, MethodDependents}, r.Method):
			return bad("resolvers."+name+".method", "%q, want batch_get, get or dependents", r.Method)
		case r.Timeout < 0:
			return bad("resolvers."+name+".timeout", "%v is negative", r.Timeout)
		}
	}
	lookup := func(field, name string) error {
		r, ok := p.Resolvers[name]
		switch {
		case name == "":
			return bad(field, "required")
		case !ok:
			return bad(field, "names no resolver: %q", name)
		case r.Method == MethodDependents:
			return bad(field, "resolver %q is a dependents resolver, need batch_get or get", name)
		}
		return nil
	}
	if err := lookup("primary", p.Primary); err != nil {
		return err
	}
	fields := map[string]bool{}
	for i, j := range p.Joins {
		at := fmt.Sprintf("joins[%d]", i)
		switch {
		case j.Field == "":
			return bad(at+".field", "required")
		case fields[j.Field]:
			return bad(at+".field", "%q is used twice", j.Field)
		}
		fields[j.Field] = true
		if err := lookup(at+".resolver", j.Resolver); err != nil {
			return err
		}
	}
	if p.Derive.Name == "" && len(p.Derive.Settings) > 0 {
		return bad("derive.name", "required when derive.settings are set")
	}
	if p.Derive.Name != "" && !slices.Contains(Derives(), p.Derive.Name) {
		have := "none are registered in this binary"
		if names := Derives(); len(names) > 0 {
			have = fmt.Sprintf("registered: %v", names)
		}
		return bad("derive.name", "%q is not a registered deriver (%s)", p.Derive.Name, have)
	}
	sources := map[string]bool{}
	for i, f := range p.FanOut {
		at := fmt.Sprintf("fan_out[%d]", i)
		r, ok := p.Resolvers[f.Resolver]
		switch {
		case f.EntityType == "":
			return bad(at+".entity_type", "required")
		case f.EntityType == p.EntityType || f.EntityType == p.PrimaryEntityType:
			return bad(at+".entity_type", "%q is the pipeline's own entity type", f.EntityType)
		case sources[f.EntityType]:
			return bad(at+".entity_type", "%q is used twice", f.EntityType)
		case f.SameID && f.Resolver != "":
			return bad(at+".resolver", "same_id fans out to the same id: no resolver")
		case f.SameID:
		case f.Resolver == "":
			return bad(at+".resolver", "required")
		case !ok:
			return bad(at+".resolver", "names no resolver: %q", f.Resolver)
		case r.Method != MethodDependents:
			return bad(at+".resolver", "resolver %q has method %s, need dependents", f.Resolver, r.Method)
		}
		sources[f.EntityType] = true
	}
	return nil
}

// Bindings are the live objects behind a pipeline's names.
type Bindings struct {
	// Resolvers by resolver name, for the batch_get and get resolvers.
	Resolvers map[string]Resolver
	// Dependents by resolver name, for the dependents resolvers.
	Dependents map[string]Dependents
	// Schemas of the joined records, by join field.
	Schemas map[string]avro.NamedSchema
	// DeadLetter publishes dead letters when dead_letter.enabled.
	DeadLetter DeadLetterPublisher
	// Derive is the deriver of derive.name.
	Derive Deriver
}

// Options returns the primary resolver and the options of [New] that
// the pipeline describes. It fails, naming the field, when a binding is
// missing.
func (p *Pipeline) Options(b Bindings) (Resolver, []Option, error) {
	primary, ok := b.Resolvers[p.Primary]
	if !ok {
		return nil, nil, fmt.Errorf("%w: pipeline primary: resolver %q is not bound", ErrConfig, p.Primary)
	}
	opts := []Option{
		WithOutputTopic(p.Output),
		WithConcurrency(p.Concurrency),
		WithMaxLookup(p.MaxLookup),
		WithRetry(RetryPolicy(p.Retry)),
		WithBreaker(p.Breaker.Failures, p.Breaker.Cooldown),
		WithDeadLetterAfter(p.DeadLetter.Attempts),
	}
	primary = p.withTimeout(p.Primary, primary)
	for i, j := range p.Joins {
		r, ok := b.Resolvers[j.Resolver]
		if !ok {
			return nil, nil, fmt.Errorf("%w: pipeline joins[%d].resolver: resolver %q is not bound", ErrConfig, i, j.Resolver)
		}
		s, ok := b.Schemas[j.Field]
		if !ok {
			return nil, nil, fmt.Errorf("%w: pipeline joins[%d].field: no schema bound for %q", ErrConfig, i, j.Field)
		}
		r = p.withTimeout(j.Resolver, r)
		opts = append(opts, WithJoin(Join{Field: j.Field, EntityType: j.EntityType, Resolver: r, Schema: s}))
	}
	if p.PrimaryEntityType != "" && p.PrimaryEntityType != p.EntityType {
		opts = append(opts, WithPrimaryEntity(p.PrimaryEntityType))
	}
	for i, f := range p.FanOut {
		if f.SameID {
			opts = append(opts, WithFanOut(FanOut{EntityType: f.EntityType, SameID: true}))
			continue
		}
		d, ok := b.Dependents[f.Resolver]
		if !ok {
			return nil, nil, fmt.Errorf("%w: pipeline fan_out[%d].resolver: dependents %q is not bound", ErrConfig, i, f.Resolver)
		}
		if t := p.Resolvers[f.Resolver].Timeout; t > 0 {
			inner := d
			d = DependentsFunc(func(ctx context.Context, ids []string) (map[string][]string, error) {
				ctx, cancel := context.WithTimeout(ctx, t)
				defer cancel()
				return inner.Dependents(ctx, ids)
			})
		}
		opts = append(opts, WithFanOut(FanOut{EntityType: f.EntityType, Dependents: d}))
	}
	if p.Derive.Name != "" {
		if b.Derive == nil {
			return nil, nil, fmt.Errorf("%w: pipeline derive.name: deriver %q is not bound", ErrConfig, p.Derive.Name)
		}
		opts = append(opts, WithDerive(b.Derive))
	}
	if p.DeadLetter.Enabled {
		if b.DeadLetter == nil {
			return nil, nil, fmt.Errorf("%w: pipeline dead_letter.enabled: no dead-letter publisher bound", ErrConfig)
		}
		opts = append(opts, WithDeadLetter(b.DeadLetter))
	}
	return primary, opts, nil
}

// withTimeout bounds each call of r by the timeout of resolver name.
func (p *Pipeline) withTimeout(name string, r Resolver) Resolver {
	t := p.Resolvers[name].Timeout
	if t <= 0 {
		return r
	}
	return ResolverFunc(func(ctx context.Context, entityType string, ids []string) (map[string]Record, error) {
		ctx, cancel := context.WithTimeout(ctx, t)
		defer cancel()
		return r.Resolve(ctx, entityType, ids)
	})
}
