package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/elastic/go-elasticsearch/v8"
	"github.com/hamba/avro/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"golang.org/x/sync/errgroup"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/consumer/sink/bleve"
	"github.com/slatehq/slate/consumer/sink/es"
	"github.com/slatehq/slate/consumer/sink/hive"
	kafkasink "github.com/slatehq/slate/consumer/sink/kafka"
	"github.com/slatehq/slate/dedupe"
	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/enricher/grpcresolver"
	"github.com/slatehq/slate/internal/kafkaconf"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
)

// Pipeline kinds of a [Which].
const (
	KindEnrich = "enrich"
	KindSink   = "sink"
	// KindAll selects the pipelines of both kinds, in one process.
	KindAll = "all"
)

// Which selects the pipelines to run: every pipeline of Kind, or only the
// one called Name.
type Which struct {
	// Kind is [KindEnrich], [KindSink] or [KindAll]. Required.
	Kind string
	// Name is the pipeline's name; empty runs all of Kind.
	Name string
}

// Option configures [Start] and [Run].
type Option func(*options)

type options struct {
	log          *slog.Logger
	startTimeout time.Duration
	sinks        map[string][]sink.Sink
	registry     *schema.RegistryClient
	metrics      prometheus.Registerer
}

// WithSinks adds sinks, built by the caller, to the sink pipeline called
// pipeline: they receive every fresh event after the sinks of its YAML
// entry. Each is known by its name (consumer.Named), which must differ
// from the names of the pipeline's other sinks. Start closes them.
func WithSinks(pipeline string, sinks ...sink.Sink) Option {
	return func(o *options) {
		if o.sinks == nil {
			o.sinks = map[string][]sink.Sink{}
		}
		o.sinks[pipeline] = append(o.sinks[pipeline], sinks...)
	}
}

// WithRegistryClient uses c instead of a client built from the registry
// section (for a caller that holds one already, with its own transport).
func WithRegistryClient(c *schema.RegistryClient) Option {
	return func(o *options) { o.registry = c }
}

// WithLogger sets the logger; the default discards.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithStartTimeout bounds how long the start waits for each resolver's
// target and for the brokers (default 10s).
func WithStartTimeout(d time.Duration) Option { return func(o *options) { o.startTimeout = d } }

// WithRegisterer registers the metrics of every consumer, enricher and
// Elasticsearch sink the runner starts (slate_consumer_*, slate_sink_*,
// slate_enricher_*, slate_es_*) on r; the default is
// prometheus.DefaultRegisterer.
func WithRegisterer(r prometheus.Registerer) Option { return func(o *options) { o.metrics = r } }

// Runner is a set of running pipelines.
type Runner struct {
	cfg     *Config
	o       options
	g       *errgroup.Group
	gctx    context.Context
	cancel  context.CancelFunc
	closers []func(context.Context) error
	reg     *schema.RegistryClient
	names   []string
	// consumers and resolvers are what Ready asks.
	consumers map[string]*consumer.Consumer
	resolvers map[string][]*grpcresolver.Resolver
	sinks     map[string]map[string]sink.Sink
	dedupe    map[string]consumer.DedupeStore
}

// Run is [Start], then [Runner.Wait]: it returns nil once ctx ended and
// every pipeline stopped.
func Run(ctx context.Context, cfg *Config, which Which, opts ...Option) error {
	r, err := Start(ctx, cfg, which, opts...)
	if err != nil {
		return err
	}
	return r.Wait()
}

// Start starts the pipelines which selects, each a member of the consumer
// group named after it, and returns once each resolver answered and was
// checked against its service's descriptors and each producer reached the
// brokers. An error about a setting names it by its YAML path. Stop the
// pipelines by ending ctx, then call [Runner.Wait].
func Start(ctx context.Context, cfg *Config, which Which, opts ...Option) (_ *Runner, err error) {
	o := options{log: slog.New(slog.DiscardHandler), startTimeout: 10 * time.Second, metrics: prometheus.DefaultRegisterer}
	for _, opt := range opts {
		opt(&o)
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if cfg == nil {
		return nil, fmt.Errorf("%w: config is nil", ErrConfig)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	enrich, sinks, err := cfg.selected(which)
	if err != nil {
		return nil, err
	}

	rctx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(rctx)
	r := &Runner{cfg: cfg, o: o, g: g, gctx: gctx, cancel: cancel, consumers: map[string]*consumer.Consumer{},
		resolvers: map[string][]*grpcresolver.Resolver{}, sinks: map[string]map[string]sink.Sink{},
		dedupe: map[string]consumer.DedupeStore{}}
	defer func() {
		if err != nil {
			cancel()
			_ = r.Wait()
		}
	}()
	for name := range o.sinks {
		if !slices.ContainsFunc(sinks, func(i int) bool { return cfg.Sink[i].Name == name }) {
			return r, fmt.Errorf("%w: sinks added to pipeline %q, which is not a selected sink pipeline", ErrConfig, name)
		}
	}
	if r.reg = o.registry; r.reg == nil {
		ropts, err := cfg.Registry.clientOptions()
		if err != nil {
			return r, fmt.Errorf("%w: %w", ErrConfig, err)
		}
		if r.reg, err = schema.NewRegistryClient(cfg.Registry.URL, ropts...); err != nil {
			return r, fmt.Errorf("registry.url: %w", err)
		}
	}
	for _, i := range enrich {
		if err := r.startEnrich(ctx, i); err != nil {
			return r, err
		}
	}
	for _, i := range sinks {
		if err := r.startSink(ctx, i); err != nil {
			return r, err
		}
	}
	// The registry answers, and takes the account: a refusal is a setting
	// to fix, found at start rather than on the first record. (Checked
	// last, so that a resolver that does not fit its service is named
	// first.)
	pctx, pcancel := context.WithTimeout(ctx, o.startTimeout)
	_, err = r.reg.Client().GetSubjects(pctx)
	pcancel()
	if err != nil {
		return r, fmt.Errorf("registry: %s does not answer: %w", cfg.Registry.URL, err)
	}
	return r, nil
}

// Pipelines returns the names of the running pipelines.
func (r *Runner) Pipelines() []string { return slices.Clone(r.names) }

// Ready reports, for a readiness probe, whether every pipeline is a
// member of its consumer group with an assignment (which may hold no
// partition) and every resolver's target answers; the error names the
// first pipeline that is not ready and why.
func (r *Runner) Ready() error {
	for _, name := range r.names {
		if !r.consumers[name].Ready() {
			return fmt.Errorf("pipeline %s: not a member of its consumer group yet", name)
		}
		for _, res := range r.resolvers[name] {
			if err := res.Reachable(); err != nil {
				return fmt.Errorf("pipeline %s: %w", name, err)
			}
		}
	}
	return nil
}

// Dedupe returns the dedupe store of the sink pipeline called pipeline.
func (r *Runner) Dedupe(pipeline string) (consumer.DedupeStore, bool) {
	s, ok := r.dedupe[pipeline]
	return s, ok
}

// Sink returns the sink called name of the sink pipeline called pipeline
// (for a caller that reads what it wrote, such as an embedded index).
func (r *Runner) Sink(pipeline, name string) (sink.Sink, bool) {
	s, ok := r.sinks[pipeline][name]
	return s, ok
}

// Wait waits until every pipeline stopped (its context ended, or one of
// them failed), then closes the sinks, producers, resolvers and dedupe
// stores. It returns nil when the pipelines stopped because the context
// ended.
func (r *Runner) Wait() error {
	err := r.g.Wait()
	r.cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := len(r.closers) - 1; i >= 0; i-- {
		if cerr := r.closers[i](ctx); cerr != nil && !errors.Is(cerr, producer.ErrClosed) && !errors.Is(cerr, sink.ErrClosed) {
			err = errors.Join(err, cerr)
		}
	}
	r.closers = nil
	return err
}

func (r *Runner) onStop(f func(context.Context) error) { r.closers = append(r.closers, f) }

// Has reports, as an error naming what is missing, whether which selects
// at least one pipeline of c.
func (c *Config) Has(which Which) error {
	_, _, err := c.selected(which)
	return err
}

// selected returns the indexes of the enrich and sink pipelines which
// selects.
func (c *Config) selected(which Which) (enrich, sinks []int, err error) {
	if !slices.Contains([]string{KindEnrich, KindSink, KindAll}, which.Kind) {
		return nil, nil, fmt.Errorf("%w: kind %q, want %s, %s or %s", ErrConfig, which.Kind, KindEnrich, KindSink, KindAll)
	}
	if which.Kind != KindSink {
		for i, p := range c.Enrich {
			if which.Name == "" || p.Name == which.Name {
				enrich = append(enrich, i)
			}
		}
	}
	if which.Kind != KindEnrich {
		for i, p := range c.Sink {
			if which.Name == "" || p.Name == which.Name {
				sinks = append(sinks, i)
			}
		}
	}
	if len(enrich)+len(sinks) == 0 {
		if which.Name != "" {
			have := "none"
			if names := c.names(which.Kind); len(names) > 0 {
				have = strings.Join(names, ", ")
			}
			return nil, nil, fmt.Errorf("%w: no %s pipeline is named %q (have %s)", ErrConfig, which.Kind, which.Name, have)
		}
		return nil, nil, fmt.Errorf("%w: %s: no pipelines", ErrConfig, which.Kind)
	}
	return enrich, sinks, nil
}

func (c *Config) names(kind string) []string {
	var names []string
	if kind != KindSink {
		for _, p := range c.Enrich {
			names = append(names, p.Name)
		}
	}
	if kind != KindEnrich {
		for _, p := range c.Sink {
			names = append(names, p.Name)
		}
	}
	return names
}

// extra is kafka.extra as librdkafka settings.
func (r *Runner) extra() map[string]any {
	cm := map[string]any{}
	for k, v := range r.cfg.Kafka.Extra {
		cm[k] = v
	}
	return cm
}

func (r *Runner) clientID(name string) string {
	if r.cfg.Kafka.ClientID != "" {
		return r.cfg.Kafka.ClientID
	}
	return "slate-" + name
}

func (r *Runner) newProducer(name, source string, extra ...producer.Option) (*producer.Producer, error) {
	k := r.cfg.Kafka
	opts := []producer.Option{producer.WithBrokers(k.Brokers), producer.WithRegistry(r.reg),
		producer.WithSource(source), producer.WithClientID(r.clientID(name)), producer.WithLogger(r.o.log),
		producer.WithStartTimeout(r.o.startTimeout), producer.WithKafkaConfig(r.extra()),
		producer.WithTopicPrefix(r.cfg.TopicPrefix)}
	opts = append(opts, ProducerOptions(k)...)
	p, err := producer.New(append(opts, extra...)...)
	if err != nil {
		return nil, err
	}
	r.onStop(p.Close)
	return p, nil
}

// deadLetterProducer is a non-transactional producer of dead letters
// whose record limit leaves room for the dead-letter headers above the
// brokers' (and the dead-letter topics') limit.
func (r *Runner) deadLetterProducer(name string, topics []string) (*producer.Producer, error) {
	dlqs := make([]string, len(topics))
	for i, t := range topics {
		dlqs[i] = schema.DLQTopic(t)
	}
	return r.newProducer(name+"-dlq", "//slate/dlq", producer.WithBrokerMessageLimit(producer.DeadLetterHeadroom, dlqs...))
}

func (r *Runner) runConsumer(name, group string, h consumer.Handler, topics []string, extra ...consumer.Option) error {
	k := r.cfg.Kafka
	opts := []consumer.Option{consumer.WithBrokers(k.Brokers), consumer.WithGroup(group), consumer.WithTopics(topics...),
		consumer.WithRegistry(r.reg), consumer.WithLogger(r.o.log.With("pipeline", name)),
		consumer.WithStartTimeout(r.o.startTimeout), consumer.WithKafkaConfig(r.extra()), consumer.WithMetrics(r.o.metrics)}
	opts = append(opts, ConsumerOptions(k)...)
	if k.ClientID != "" {
		opts = append(opts, consumer.WithKafkaConfig(map[string]any{"client.id": k.ClientID}))
	}
	c, err := consumer.New(h, append(opts, extra...)...)
	if err != nil {
		return err
	}
	r.names = append(r.names, name)
	r.consumers[name] = c
	r.g.Go(func() error {
		if err := c.Run(r.gctx); err != nil {
			return fmt.Errorf("pipeline %s: %w", name, err)
		}
		return nil
	})
	r.o.log.Info("pipeline started", "pipeline", name, "group", group, "inputs", topics)
	return nil
}

func (r *Runner) startEnrich(ctx context.Context, i int) error {
	p := r.cfg.Enrich[i]
	at := fmt.Sprintf("enrich[%d]", i)
	log := r.o.log.With("pipeline", p.Name)
	b := enricher.Bindings{Resolvers: map[string]enricher.Resolver{}, Dependents: map[string]enricher.Dependents{},
		Schemas: map[string]avro.NamedSchema{}}
	schemas := map[string]avro.NamedSchema{}
	for _, name := range slices.Sorted(maps.Keys(p.Resolvers)) {
		res, err := grpcresolver.New(ctx, p.Resolvers[name],
			grpcresolver.WithLogger(log), grpcresolver.WithStartTimeout(r.o.startTimeout))
		if err != nil {
			return fmt.Errorf("%s.resolvers.%s: %w", at, name, err)
		}
		r.onStop(func(context.Context) error { return res.Close() })
		r.resolvers[p.Name] = append(r.resolvers[p.Name], res)
		if p.Resolvers[name].Method == enricher.MethodDependents {
			b.Dependents[name] = res
		} else {
			b.Resolvers[name] = res
			schemas[name] = res.Schema()
		}
	}
	for _, j := range p.Joins {
		b.Schemas[j.Field] = schemas[j.Resolver]
	}
	if p.Derive.Name != "" {
		d, err := enricher.NewDerive(ctx, p.Derive.Name, p.Derive.Settings)
		if err != nil {
			return fmt.Errorf("%s.derive: %w", at, err)
		}
		r.onStop(func(context.Context) error { return d.Close() })
		b.Derive = d
	}
	var pubOpts []producer.Option
	if p.Transactional {
		id := p.TransactionalID
		if id == "" {
			host, _ := os.Hostname()
			id = fmt.Sprintf("%s-%s-%d", r.clientID(p.Name), host, os.Getpid())
		}
		pubOpts = append(pubOpts, producer.WithTransactionalID(id))
	}
	pub, err := r.newProducer(p.Name, "//slate/enricher/"+p.Name, pubOpts...)
	if err != nil {
		return fmt.Errorf("%s: producer: %w", at, err)
	}
	var copts []consumer.Option
	if p.DeadLetter.Enabled {
		dlq, err := r.deadLetterProducer(p.Name, append(slices.Clone(p.Inputs), p.Output))
		if err != nil {
			return fmt.Errorf("%s.dead_letter: producer: %w", at, err)
		}
		b.DeadLetter = dlq
		copts = append(copts, consumer.WithDeadLetter(dlq))
	}
	primary, eopts, err := p.Options(b)
	if err != nil {
		return fmt.Errorf("%s: %w", at, err)
	}
	eopts = append(eopts, enricher.WithLogger(log), enricher.WithSource("//slate/enricher/"+p.Name),
		enricher.WithTopicPrefix(r.cfg.TopicPrefix), enricher.WithMetrics(r.o.metrics))
	enr, err := enricher.New(p.EntityType, primary, pub, r.reg, eopts...)
	if err != nil {
		return fmt.Errorf("%s: %w", at, err)
	}
	var h consumer.Handler = enr
	if p.Transactional {
		if h, err = enricher.NewTransactional(enr, pub); err != nil {
			return fmt.Errorf("%s.transactional: %w", at, err)
		}
		copts = append(copts, consumer.WithTransactional())
	}
	if err := r.runConsumer(p.Name, p.Name, h, p.Inputs, copts...); err != nil {
		return fmt.Errorf("%s: %w", at, err)
	}
	return nil
}

func (r *Runner) startSink(ctx context.Context, i int) error {
	p := r.cfg.Sink[i]
	at := fmt.Sprintf("sink[%d]", i)
	log := r.o.log.With("pipeline", p.Name)
	store, err := r.dedupeStore(ctx, p.Dedupe, log)
	if err != nil {
		return fmt.Errorf("%s.dedupe: %w", at, err)
	}
	r.dedupe[p.Name] = store
	var sinks []sink.Sink
	own := map[string]sink.Sink{}
	r.sinks[p.Name] = own
	for j, s := range p.Sinks {
		sk, err := r.newSink(ctx, p.Name, s, log)
		if err != nil {
			return fmt.Errorf("%s.sinks[%d]: %w", at, j, err)
		}
		r.onStop(sk.Close)
		sinks = append(sinks, named{Sink: sk, name: s.Name})
		own[s.Name] = sk
	}
	for _, sk := range r.o.sinks[p.Name] {
		r.onStop(sk.Close)
		n, ok := sk.(consumer.Named)
		if !ok {
			return fmt.Errorf("%w: %s: a sink added by WithSinks (%T) has no name (consumer.Named)", ErrConfig, at, sk)
		}
		if _, dup := own[n.Name()]; dup {
			return fmt.Errorf("%w: %s: a sink added by WithSinks is named %q, as is another sink of the pipeline", ErrConfig, at, n.Name())
		}
		sinks = append(sinks, sk)
		own[n.Name()] = sk
	}
	h := consumer.Deduplicate(store, consumer.DedupeConfig{Lease: p.Dedupe.Lease, TTL: p.Dedupe.TTL,
		Group: p.Group, Logger: log}, consumer.ToSinks(sinks...))
	copts := []consumer.Option{consumer.WithConcurrency(p.Concurrency)}
	if p.DeadLetter.Enabled {
		dlq, err := r.deadLetterProducer(p.Name, p.Inputs)
		if err != nil {
			return fmt.Errorf("%s.dead_letter: producer: %w", at, err)
		}
		copts = append(copts, consumer.WithDeadLetter(dlq), consumer.WithMaxAttempts(p.DeadLetter.Attempts))
	}
	if err := r.runConsumer(p.Name, p.Group, h, p.Inputs, copts...); err != nil {
		return fmt.Errorf("%s: %w", at, err)
	}
	return nil
}

// named gives a sink the name of its YAML entry, for the metrics and the
// per-sink dedupe marks.
type named struct {
	sink.Sink
	name string
}

func (n named) Name() string { return n.name }

func (r *Runner) dedupeStore(ctx context.Context, d DedupeSpec, log *slog.Logger) (consumer.DedupeStore, error) {
	if d.Type == DedupeMemory {
		store := dedupe.NewMemory(dedupe.WithLogger(log))
		r.onStop(func(context.Context) error { return store.Close() })
		return store, nil
	}
	ro := &redis.UniversalOptions{Addrs: strings.Split(d.Addr, ","), ClientName: "slate-sink", Username: d.Username, Password: d.Password}
	if d.TLS != nil {
		tc, err := d.TLS.Config()
		if err != nil {
			return nil, fmt.Errorf("tls.%w", err)
		}
		ro.TLSConfig = tc
	}
	rc := redis.NewUniversalClient(ro)
	pctx, cancel := context.WithTimeout(ctx, r.o.startTimeout)
	defer cancel()
	if err := rc.Ping(pctx).Err(); err != nil {
		_ = rc.Close()
		return nil, fmt.Errorf("redis at %s does not answer: %w", d.Addr, err)
	}
	opts := []dedupe.Option{dedupe.WithLogger(log)}
	if d.KeyPrefix != "" {
		opts = append(opts, dedupe.WithKeyPrefix(d.KeyPrefix))
	}
	store, err := dedupe.NewRedis(rc, opts...)
	if err != nil {
		_ = rc.Close()
		return nil, err
	}
	r.onStop(func(context.Context) error { return errors.Join(store.Close(), rc.Close()) })
	return store, nil
}

func (r *Runner) newSink(ctx context.Context, pipeline string, s SinkSpec, log *slog.Logger) (sink.Sink, error) {
	switch s.Type {
	case SinkES:
		ec := elasticsearch.Config{Addresses: []string{s.URL}, Username: s.Username, Password: s.Password, APIKey: s.APIKey}
		if s.TLS != nil {
			tc, err := s.TLS.Config()
			if err != nil {
				return nil, fmt.Errorf("tls.%w", err)
			}
			tr := http.DefaultTransport.(*http.Transport).Clone()
			tr.TLSClientConfig = tc
			ec.Transport = tr
		}
		client, err := elasticsearch.NewClient(ec)
		if err != nil {
			return nil, fmt.Errorf("url: %w", err)
		}
		opts := []es.Option{es.WithRegistry(r.reg), es.WithLogger(log), es.WithMetrics(r.o.metrics)}
		if s.IndexPrefix != "" {
			opts = append(opts, es.WithIndexPrefix(s.IndexPrefix))
		}
		sctx, cancel := context.WithTimeout(ctx, r.o.startTimeout)
		defer cancel()
		return es.New(sctx, client, opts...)
	case SinkBleve:
		return bleve.New(s.Path, bleve.WithRegistry(r.reg), bleve.WithLogger(log))
	case SinkHive:
		return hive.New(s.Root, s.Table, hive.WithRegistry(r.reg), hive.WithLogger(log))
	default: // SinkKafka; Validate allows no other type
		pub, err := r.newProducer(pipeline+"-"+s.Name, "//slate/sink/"+pipeline)
		if err != nil {
			return nil, fmt.Errorf("producer: %w", err)
		}
		return kafkasink.New(pub, kafkasink.ToTopic(s.Topic), kafkasink.WithLogger(log))
	}
}

// ProducerOptions are the producer options of k's SASL and TLS settings,
// for a producer that talks to the brokers of a Config's kafka section.
func ProducerOptions(k kafkaconf.Client) []producer.Option {
	var opts []producer.Option
	if k.SASL.On() {
		opts = append(opts, producer.WithSASL(k.SASL.Mechanism, k.SASL.Username, k.SASL.Password))
	}
	if t := k.TLS; t != nil {
		opts = append(opts, producer.WithTLS(t.CAFile, t.CertFile, t.KeyFile))
	}
	return opts
}

// ConsumerOptions are the options of k's SASL and TLS settings for
// consumer.New and consumer.ReadDeadLetters.
func ConsumerOptions(k kafkaconf.Client) []consumer.Option {
	var opts []consumer.Option
	if k.SASL.On() {
		opts = append(opts, consumer.WithSASL(k.SASL.Mechanism, k.SASL.Username, k.SASL.Password))
	}
	if t := k.TLS; t != nil {
		opts = append(opts, consumer.WithTLS(t.CAFile, t.CertFile, t.KeyFile))
	}
	return opts
}
