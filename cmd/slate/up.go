package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"

	"github.com/slatehq/slate/dedupe"
	"github.com/slatehq/slate/internal/stack"
)

func upCmd() *cobra.Command {
	var (
		cfg      stack.Config
		duration time.Duration
		rate     float64
		settle   time.Duration
		secure   bool
		print    bool
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the whole system on embedded defaults",
		Long: `up starts the embedded Kafka broker, the schema registry, the titles service,
the pipelines of slate.yaml and a workload that creates, updates and deletes
titles. With --duration it stops by itself, prints a summary and exits 0 only
if every change reached the sink.

The pipelines run through the same runner as slate enrich and slate sink: by
default those of an embedded slate.yaml (print it with --print-config), the
title enricher, which reads the titles service through its server reflection,
and the title sink (dedupe in memory or, with --redis, in Redis; the Hive audit
table; the embedded search index). --config runs the pipelines of your own
file instead; one of its sink pipelines must read studio.title.materialized.
` + "`${SLATE_UP_BROKERS}`" + `, ` + "`${SLATE_UP_REGISTRY_URL}`" + `, ` + "`${SLATE_UP_TITLES_ADDR}`" + ` and
` + "`${SLATE_UP_DATA_DIR}`" + ` in the file are where slate up's parts are.

Every part listens on 127.0.0.1. --tls-cert/--tls-key serve TLS on all of
them, --tls-client-ca requires client certificates (mutual TLS), --sasl-user
and --sasl-password put the embedded broker on SASL, and
--registry-basic-auth-user-info puts the registry on HTTP basic auth; the
stack's own clients use the same settings. --secure does all of it with a
throwaway CA and random accounts, for a local demo (see SECURITY.md).`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if print {
				return nil
			}
			c := cfg
			if secure {
				if err := secureConflicts(cfg); err != nil {
					return err
				}
				// --secure serves every part with mutual TLS.
				c.Security, c.InsecureBind = stack.Security{}, true
			}
			return c.Validate()
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			if print {
				_, err := cmd.OutOrStdout().Write(stack.DefaultPipelines)
				return err
			}
			log, err := newLogger(cmd)
			if err != nil {
				return err
			}
			if rate <= 0 {
				return fmt.Errorf("--rate %v: must be positive", rate)
			}
			cfg.Log = log
			if secure {
				dir := filepath.Join(cfg.DataDir, "tls")
				if cfg.Security, err = stack.DemoSecurity(dir); err != nil {
					return err
				}
				log.Info("secure: throwaway CA, certificates and accounts; clients need the CA, the client certificate and the accounts",
					"dir", dir, "credentials", filepath.Join(dir, "credentials"))
			}
			ctx := cmd.Context()
			s, err := stack.Start(ctx, cfg)
			if err != nil {
				return err
			}
			defer func() {
				sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
				defer cancel()
				if err := s.Stop(sctx); err != nil {
					log.Warn("stop", "err", err)
				}
			}()
			log.Info("slate is up", "kafka", s.Brokers, "registry", s.RegistryURL, "titles", s.TitlesAddr,
				"metrics", s.MetricsURL(), "graphql", s.GraphQLURL, "hive", s.HiveRoot)

			wctx := ctx
			if duration > 0 {
				var cancel context.CancelFunc
				wctx, cancel = context.WithTimeout(ctx, duration)
				defer cancel()
			}
			w := stack.NewWorkload(s.Titles, rate).WithStudio(s.Schedules, s.Finance)
			if s.Disorder != nil {
				w = w.WithDisorder(s.Disorder)
			}
			g, gctx := errgroup.WithContext(wctx)
			g.Go(func() error { return w.Run(gctx) })
			g.Go(func() error { progress(gctx, s, w, log.Info); return nil })
			if err := g.Wait(); err != nil {
				return err
			}
			if duration == 0 || ctx.Err() != nil {
				return nil // stopped by Ctrl-C
			}
			return summarize(ctx, s, w, settle, cmd.OutOrStdout())
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", ".slate", "where the broker log, the Hive table and the search index live")
	f.StringVar(&cfg.Pipelines, "config", "", "run the pipelines of this slate.yaml instead of the embedded ones")
	f.BoolVar(&print, "print-config", false, "print the embedded slate.yaml and exit")
	f.StringVar(&cfg.Brokers, "brokers", "", "an external Kafka cluster; empty runs the embedded broker")
	f.IntVar(&cfg.KafkaPort, "kafka-port", 9092, "embedded broker port")
	f.StringVar(&cfg.RegistryURL, "registry-url", "", "an external schema registry; empty runs slate's own")
	f.IntVar(&cfg.RegistryPort, "registry-port", 8081, "schema registry port")
	f.IntVar(&cfg.TitlesPort, "titles-port", 50051, "titles gRPC service port")
	f.IntVar(&cfg.SchedulesPort, "schedules-port", 50052, "schedules gRPC service port")
	f.IntVar(&cfg.FinancePort, "finance-port", 50053, "finance gRPC service port")
	f.IntVar(&cfg.HTTPPort, "http-port", 9464, "port of /metrics and /healthz")
	graphqlFlags(f, &cfg)
	f.StringVar(&cfg.HTTPHost, "http-host", "127.0.0.1", "address of /metrics and /healthz; a non-loopback one needs --tls-client-ca or --insecure-bind")
	f.BoolVar(&cfg.InsecureBind, "insecure-bind", false, "allow a non-loopback --http-host without mutual TLS")
	sec := &cfg.Security
	f.StringVar(&sec.CertFile, "tls-cert", "", "PEM certificate every server of the stack presents (broker, registry, titles, metrics)")
	f.StringVar(&sec.KeyFile, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&sec.CAFile, "tls-ca", "", "PEM CA bundle the stack's clients trust (empty: the system's)")
	f.StringVar(&sec.ClientCAFile, "tls-client-ca", "", "PEM CA bundle of client certificates: every server requires one (mutual TLS)")
	f.StringVar(&sec.ClientCertFile, "tls-client-cert", "", "PEM client certificate the stack's own clients present")
	f.StringVar(&sec.ClientKeyFile, "tls-client-key", "", "PEM private key of --tls-client-cert")
	f.StringVar(&sec.SASLMechanism, "sasl-mechanism", "SCRAM-SHA-256", "Kafka SASL mechanism: PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512")
	f.StringVar(&sec.SASLUser, "sasl-user", "", "Kafka SASL user: the embedded broker requires it, every client uses it")
	f.StringVar(&sec.SASLPassword, "sasl-password", "", "password of --sasl-user (prefer SLATE_SASL_PASSWORD: flags show in ps)")
	f.StringVar(&sec.RegistryUserInfo, "registry-basic-auth-user-info", "", "user:password the registry requires and its clients send (prefer SLATE_REGISTRY_BASIC_AUTH_USER_INFO)")
	f.BoolVar(&secure, "secure", false, "generate a throwaway CA, certificates and accounts and turn on all of the above (local demo)")
	f.StringVar(&cfg.Redis, "redis", "", "keep every sink pipeline's dedupe store in Redis: host:port, or a comma list of cluster nodes (empty: as slate.yaml says)")
	f.StringVar(&cfg.RedisKeyPrefix, "redis-key-prefix", dedupe.DefaultKeyPrefix, "prefix of the dedupe keys in Redis")
	f.BoolVar(&cfg.Transactional, "transactional", false, "run every enricher exactly once (Kafka transactions)")
	f.DurationVar(&duration, "duration", 0, "stop after this long and print a summary (0 runs until Ctrl-C)")
	f.Float64Var(&rate, "rate", 50, "workload writes per second")
	f.DurationVar(&cfg.FreshnessSLA, "freshness-sla", stack.DefaultFreshnessSLA, "how soon after a source change the views must follow it; the summary and slate_view_freshness_breaches_total report the events that came later")
	f.BoolVar(&cfg.Disorder, "disorder", true, "the services publish every change event twice and the workload's flagship's middle release move last, as retries and races would; false publishes each once, in order")
	f.DurationVar(&cfg.DuplicateAfter, "duplicate-after", stack.DefaultDuplicateAfter, "with --disorder, the pause between a change event and its duplicate")
	f.DurationVar(&settle, "settle", 30*time.Second, "with --duration, how long to wait for the pipeline to drain")
	return cmd
}

// secureConflicts refuses --secure together with settings it would
// replace, or with external servers its accounts do not exist on.
func secureConflicts(cfg stack.Config) error {
	sec := cfg.Security
	for _, f := range []struct{ flag, value string }{
		{"--tls-cert", sec.CertFile}, {"--tls-key", sec.KeyFile}, {"--tls-ca", sec.CAFile},
		{"--tls-client-ca", sec.ClientCAFile}, {"--tls-client-cert", sec.ClientCertFile}, {"--tls-client-key", sec.ClientKeyFile},
		{"--sasl-user", sec.SASLUser}, {"--sasl-password", sec.SASLPassword},
		{"--registry-basic-auth-user-info", sec.RegistryUserInfo}, {"--brokers", cfg.Brokers}, {"--registry-url", cfg.RegistryURL},
	} {
		if f.value != "" {
			return fmt.Errorf("--secure generates its own certificates and accounts for the embedded servers: drop %s", f.flag)
		}
	}
	return nil
}

func progress(ctx context.Context, s *stack.Stack, w *stack.Workload, info func(string, ...any)) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			info("progress", "published", w.Writes(), "materialized", materialized(s),
				"written", s.Tracker.Written(), "duplicates", duplicates(s))
		}
	}
}

// summarize waits for the pipeline to catch up with the workload and
// prints the summary; it fails if some change never reached the sink.
func summarize(ctx context.Context, s *stack.Stack, w *stack.Workload, settle time.Duration, out interface{ Write([]byte) (int, error) }) error {
	want, budgets := w.Expected(), w.Budgets()
	deadline := time.Now().Add(settle)
	missing := s.Tracker.Missing(want)
	var late map[string]stack.Expectation // cashflows behind their budget
	if s.Cashflows != nil {
		late = s.Cashflows.Missing(budgets)
	}
	for (len(missing) > 0 || len(late) > 0) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		missing = s.Tracker.Missing(want)
		if s.Cashflows != nil {
			late = s.Cashflows.Missing(budgets)
		}
	}
	fmt.Fprintf(out, "slate up summary\n")
	fmt.Fprintf(out, "  changes published      %d\n", w.Writes())
	fmt.Fprintf(out, "  events materialized    %d\n", materialized(s))
	fmt.Fprintf(out, "  events written (sink)  %d\n", s.Tracker.Written())
	fmt.Fprintf(out, "  duplicates dropped     %d (dedupe store: %s)\n", duplicates(s), s.DedupeAt)
	fmt.Fprintf(out, "  titles in step         %d/%d (title view)\n", len(want)-len(missing), len(want))
	if s.Cashflows != nil {
		fmt.Fprintf(out, "  cash flows in step     %d/%d (cashflow view, by budget version)\n", len(budgets)-len(late), len(budgets))
	}
	fresh := func(view string, f stack.Freshness) {
		fmt.Fprintf(out, "  freshness (%s)%*s p50 %s, p99 %s, max %s over %d events; %d later than the SLA of %s\n", view,
			max(0, 9-len(view)), "", round(f.P50), round(f.P99), round(f.Max), f.Events, f.Breaches, f.SLA)
	}
	fresh("titles", s.Tracker.Freshness())
	if s.Cashflows != nil {
		fresh("cashflow", s.Cashflows.Freshness())
	}
	fmt.Fprintf(out, "  hive table             %s/%s\n", s.HiveRoot, s.HiveTable)
	if s.Search != nil {
		if n, err := s.Search.Count(ctx, "title"); err == nil {
			fmt.Fprintf(out, "  search index (bleve)   %d titles in %s\n", n, s.Search.Dir())
		}
	}
	if w.Writes() == 0 {
		return errors.New("the workload published nothing")
	}
	if len(missing) > 0 {
		for id, got := range missing {
			fmt.Fprintf(out, "  not in step: title %s: want %+v, sink has %+v\n", id, want[id], got)
		}
		return fmt.Errorf("%d of %d titles did not reach the sink within %s", len(missing), len(want), settle)
	}
	if len(late) > 0 {
		for id, got := range late {
			fmt.Fprintf(out, "  not in step: cashflow %s: want budget %+v, sink has %+v\n", id, budgets[id], got)
		}
		return fmt.Errorf("%d of %d cash flows did not reach the sink within %s", len(late), len(budgets), settle)
	}
	return nil
}

// round rounds d for the summary.
func round(d time.Duration) time.Duration {
	if d > time.Second {
		return d.Round(10 * time.Millisecond)
	}
	return d.Round(100 * time.Microsecond)
}

// materialized is the number of records the stack's enrichers published.
func materialized(s *stack.Stack) int64 {
	return int64(s.Counter("slate_enricher_materialized_total", nil))
}

// duplicates is the number of events the sink pipelines' dedupe stores
// dropped.
func duplicates(s *stack.Stack) int64 {
	return int64(s.Counter("slate_consumer_duplicates_total", nil))
}
