package stack

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	dto "github.com/prometheus/client_model/go"

	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/consumer/sink/bleve"
	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/runner"
	"github.com/slatehq/slate/services/titles"
)

// DefaultPipelines is the slate.yaml `slate up` runs unless given its own:
// the title enricher, through the generic gRPC resolver, and the title
// sink (dedupe, Hive audit table, embedded search index).
//
//go:embed slate.yaml
var DefaultPipelines []byte

// pipelinesName names the pipelines' file in errors.
func (c *Config) pipelinesName() string {
	if c.Pipelines == "" {
		return "the embedded slate.yaml"
	}
	return "--config " + c.Pipelines
}

// pipelines returns the text of the pipelines' file, and its settings as
// far as they can be known before anything runs (the addresses of the
// stack's parts are placeholders), checked.
func (c *Config) pipelines() ([]byte, *runner.Config, error) {
	text := DefaultPipelines
	if c.Pipelines != "" {
		var err error
		if text, err = os.ReadFile(c.Pipelines); err != nil {
			return nil, nil, fmt.Errorf("stack: --config: %w", err)
		}
	}
	vars := map[string]string{"SLATE_UP_BROKERS": "127.0.0.1:1", "SLATE_UP_REGISTRY_URL": "http://127.0.0.1:1",
		"SLATE_UP_TITLES_ADDR": "127.0.0.1:1", "SLATE_UP_SCHEDULES_ADDR": "127.0.0.1:1", "SLATE_UP_FINANCE_ADDR": "127.0.0.1:1",
		"SLATE_UP_DATA_DIR": c.DataDir}
	rc, err := c.decode(text, vars)
	if err != nil {
		return nil, nil, err
	}
	return text, rc, nil
}

// decode reads the pipelines with the SLATE_UP_* variables set to vars,
// applies the flags that replace their settings, and validates them.
func (c *Config) decode(text []byte, vars map[string]string) (*runner.Config, error) {
	lookup := func(name string) (string, bool) {
		if v, ok := vars[name]; ok {
			return v, true
		}
		return os.LookupEnv(name)
	}
	rc, err := runner.DecodeWith(bytes.NewReader(text), lookup)
	if err != nil {
		return nil, fmt.Errorf("stack: %s: %w", c.pipelinesName(), err)
	}
	rc.Kafka.Brokers = vars["SLATE_UP_BROKERS"]
	rc.Registry.URL = vars["SLATE_UP_REGISTRY_URL"]
	for i := range rc.Sink {
		if c.Redis != "" {
			rc.Sink[i].Dedupe = runner.DedupeSpec{Type: runner.DedupeRedis, Addr: c.Redis, KeyPrefix: c.RedisKeyPrefix,
				Lease: rc.Sink[i].Dedupe.Lease, TTL: rc.Sink[i].Dedupe.TTL}
		}
	}
	for i := range rc.Enrich {
		rc.Enrich[i].Transactional = rc.Enrich[i].Transactional || c.Transactional
	}
	rc.Defaults()
	if err := rc.Validate(); err != nil {
		return nil, fmt.Errorf("stack: %s: %w", c.pipelinesName(), err)
	}
	if titleSink(rc) < 0 {
		return nil, fmt.Errorf("stack: %s: no sink pipeline reads %s; slate up follows the titles through one",
			c.pipelinesName(), materializedTitles(rc))
	}
	return rc, nil
}

func materializedTitles(rc *runner.Config) string {
	return rc.TopicPrefix + titles.EntityType + ".materialized"
}

// titleSink is the index of the first sink pipeline of the materialized
// titles, or -1.
func titleSink(rc *runner.Config) int {
	return slices.IndexFunc(rc.Sink, func(p runner.SinkPipeline) bool { return slices.Contains(p.Inputs, materializedTitles(rc)) })
}

// startPipelines runs every pipeline of slate.yaml against the stack's
// broker, registry and titles service, with the stack's security, and
// follows the sink pipeline of the materialized titles with the Tracker.
func (s *Stack) startPipelines(ctx context.Context) error {
	rc, err := s.cfg.decode(s.pipelines, map[string]string{"SLATE_UP_BROKERS": s.Brokers,
		"SLATE_UP_REGISTRY_URL": s.RegistryURL, "SLATE_UP_TITLES_ADDR": s.TitlesAddr, "SLATE_UP_SCHEDULES_ADDR": s.SchedulesAddr,
		"SLATE_UP_FINANCE_ADDR": s.FinanceAddr, "SLATE_UP_DATA_DIR": s.cfg.DataDir})
	if err != nil {
		return err
	}
	k := s.sec.kafka(s.Brokers, s.cfg.Brokers != "")
	rc.Kafka.SASL, rc.Kafka.TLS = k.SASL, k.TLS
	if s.sec.server != nil {
		// The stack's services speak TLS: resolvers dial them with its CA
		// and client certificate, unless the file says otherwise.
		for i := range rc.Enrich {
			for name, r := range rc.Enrich[i].Resolvers {
				if r.TLS == nil {
					r.TLS = &enricher.ClientTLS{CAFile: s.sec.CAFile, CertFile: s.sec.ClientCertFile, KeyFile: s.sec.ClientKeyFile}
					rc.Enrich[i].Resolvers[name] = r
				}
			}
		}
	}
	s.Pipelines = rc
	for i := range rc.Enrich {
		p := &rc.Enrich[i]
		if p.Output == materializedTitles(rc) && len(p.Joins) > 0 {
			s.Tracker.Joined = true
		}
		if s.sec.server != nil && p.Derive.Settings["rates_target"] != "" && p.Derive.Settings["tls_ca_file"] == "" {
			// The stack's finance service speaks TLS.
			p.Derive.Settings["tls_ca_file"] = s.sec.CAFile
			p.Derive.Settings["tls_cert_file"], p.Derive.Settings["tls_key_file"] = s.sec.ClientCertFile, s.sec.ClientKeyFile
		}
	}
	sp := rc.Sink[titleSink(rc)]
	s.TitleSink = sp.Name
	s.DedupeAt = sp.Dedupe.Type
	if sp.Dedupe.Type == runner.DedupeRedis {
		s.DedupeAt = "redis " + sp.Dedupe.Addr
	}
	s.Gatherer = s.metrics
	s.Tracker.SLA = s.cfg.freshnessSLA()
	if err := s.Tracker.exportBreaches(s.metrics, titles.EntityType); err != nil {
		return fmt.Errorf("stack: metrics: %w", err)
	}
	follow := append([]sink.Sink{s.Tracker}, s.cfg.ExtraSinks...)
	opts := []runner.Option{runner.WithLogger(s.cfg.Log), runner.WithRegistryClient(s.Registry),
		runner.WithSinks(sp.Name, follow...), runner.WithRegisterer(s.metrics)}
	// The cashflow view, when a sink pipeline other than the titles' reads
	// it, is followed too: its sequence's high half is the budget's version.
	cashflows := rc.TopicPrefix + "cashflow.materialized"
	if at := slices.IndexFunc(rc.Sink, func(p runner.SinkPipeline) bool { return slices.Contains(p.Inputs, cashflows) }); at >= 0 && rc.Sink[at].Name != sp.Name {
		s.Cashflows = NewTracker()
		s.Cashflows.Joined = true
		s.Cashflows.SLA = s.cfg.freshnessSLA()
		if err := s.Cashflows.exportBreaches(s.metrics, "cashflow"); err != nil {
			return fmt.Errorf("stack: metrics: %w", err)
		}
		opts = append(opts, runner.WithSinks(rc.Sink[at].Name, s.Cashflows))
	}
	if err := s.createTopics(ctx, rc); err != nil {
		return err
	}
	r, err := runner.Start(ctx, rc, runner.Which{Kind: runner.KindAll}, opts...)
	if r != nil {
		s.onStop(func(context.Context) error { return r.Wait() })
	}
	if err != nil {
		return fmt.Errorf("stack: %s: %w", s.cfg.pipelinesName(), err)
	}
	s.Runner = r
	s.Dedupe, _ = r.Dedupe(sp.Name)
	for _, spec := range sp.Sinks {
		switch spec.Type {
		case runner.SinkHive:
			if s.HiveRoot == "" {
				s.HiveRoot, s.HiveTable = spec.Root, spec.Table
			}
		case runner.SinkBleve:
			if sk, ok := r.Sink(sp.Name, spec.Name); ok && s.Search == nil {
				s.Search, _ = sk.(*bleve.Sink)
			}
		}
	}
	return nil
}

// Counter returns the sum of the counter called name over the label sets
// that hold every label of match (from the stack's metrics).
func (s *Stack) Counter(name string, match map[string]string) float64 {
	mfs, err := s.Gatherer.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for k, v := range match {
				if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == k && l.GetValue() == v }) {
					continue metrics
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// createTopics creates the topics the pipelines read and write, with the
// stack's partitions, as a deployment does before it starts them: the
// pipelines then join their groups at once (and /healthz says ready)
// instead of waiting for the first change to create them.
func (s *Stack) createTopics(ctx context.Context, rc *runner.Config) error {
	seen := map[string]bool{}
	var specs []kafka.TopicSpecification
	add := func(t string) {
		if !seen[t] {
			seen[t] = true
			specs = append(specs, kafka.TopicSpecification{Topic: t, NumPartitions: s.cfg.Partitions, ReplicationFactor: 1})
		}
	}
	for _, p := range rc.Enrich {
		for _, t := range p.Inputs {
			add(t)
		}
		add(p.Output)
	}
	for _, p := range rc.Sink {
		for _, t := range p.Inputs {
			add(t)
		}
	}
	cm, err := rc.Kafka.ConfigMap()
	if err != nil {
		return fmt.Errorf("stack: topics: %w", err)
	}
	ad, err := kafka.NewAdminClient(&cm)
	if err != nil {
		return fmt.Errorf("stack: topics: %w", err)
	}
	defer ad.Close()
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	res, err := ad.CreateTopics(cctx, specs)
	if err != nil {
		return fmt.Errorf("stack: create topics: %w", err)
	}
	for _, r := range res {
		if c := r.Error.Code(); c != kafka.ErrNoError && c != kafka.ErrTopicAlreadyExists {
			// A cluster that refuses (no rights, auto-creation only) is
			// not fatal: the topics appear with the first change.
			s.cfg.Log.Warn("topic not created", "topic", r.Topic, "err", r.Error)
		}
	}
	return nil
}
