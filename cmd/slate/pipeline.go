package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"

	"github.com/slatehq/slate/runner"
)

// pipelineFlags are the flags of slate enrich and slate sink.
type pipelineFlags struct {
	config       string
	pipeline     string
	httpAddr     string
	insecureBind bool
	brokers      string
	registryURL  string
}

// enrichCmd and sinkCmd run the pipelines of one kind from slate.yaml.
func enrichCmd() *cobra.Command {
	return pipelineCmd(runner.KindEnrich, "127.0.0.1:9467", "Run enrich pipelines from a YAML file",
		`enrich runs the enrich pipelines of --config (all of them, or the one named by
--pipeline): each consumes ID-only change events as a member of the consumer
group named after it, asks its gRPC services for the records (any unary
method, through server reflection or a descriptor set) and publishes the
materialized records.`)
}

func sinkCmd() *cobra.Command {
	return pipelineCmd(runner.KindSink, "127.0.0.1:9466", "Run sink pipelines from a YAML file",
		`sink runs the sink pipelines of --config (all of them, or the one named by
--pipeline): each consumes materialized topics as a member of its consumer
group, drops duplicates (dedupe in memory or Redis) and writes every event to
its sinks (es, bleve, hive, kafka).`)
}

func pipelineCmd(kind, defaultAddr, short, long string) *cobra.Command {
	var (
		f   pipelineFlags
		cfg *runner.Config
	)
	cmd := &cobra.Command{
		Use:   kind,
		Short: short,
		Long: long + `

It serves /metrics (Prometheus) and /healthz on --http-addr. /healthz answers
200 once every pipeline joined its consumer group (its input topics must
exist) and every resolver's service answers, 503 with the reason before
and while not. It runs until
SIGINT or SIGTERM: then in-flight batches finish, offsets are committed, the
consumers leave their groups and it exits 0.

Settings are taken, highest first, from the flags (--kafka-brokers,
--registry-url), the environment (SLATE_KAFKA_BROKERS, SLATE_REGISTRY_URL),
the file, then the defaults. Errors about the file name the setting by its
YAML path (enrich[0].resolvers.titles.target).`,
		Args: cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error {
			var err error
			cfg, err = f.load(kind)
			return err
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			lis, err := net.Listen("tcp", f.httpAddr)
			if err != nil {
				return fmt.Errorf("--http-addr %s: %w", f.httpAddr, err)
			}
			metrics := prometheus.NewRegistry()
			metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
			var running atomic.Pointer[runner.Runner]
			mux := http.NewServeMux()
			mux.Handle("GET /metrics", promhttp.HandlerFor(metrics, promhttp.HandlerOpts{}))
			mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
				healthz(w, func() error {
					r := running.Load()
					if r == nil {
						return errors.New("starting")
					}
					return r.Ready()
				})
			})
			srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
			served := make(chan error, 1)
			go func() { served <- srv.Serve(lis) }()
			defer func() {
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = srv.Shutdown(sctx)
				<-served
			}()
			log.Info("metrics listening", "addr", lis.Addr().String())
			r, err := runner.Start(ctx, cfg, runner.Which{Kind: kind, Name: f.pipeline}, runner.WithLogger(log), runner.WithRegisterer(metrics))
			if err != nil {
				if ctx.Err() != nil {
					// Stopped (SIGINT, SIGTERM) before the pipelines ran:
					// as clean a stop as one after the start.
					log.Info("slate "+kind+" stopped during its start", "config", f.config)
					return nil
				}
				return fmt.Errorf("%s: %w", f.config, err)
			}
			running.Store(r)
			log.Info("slate "+kind+" is running", "pipelines", r.Pipelines(), "config", f.config)
			return r.Wait()
		},
	}
	fs := cmd.Flags()
	fs.StringVar(&f.config, "config", "slate.yaml", "the pipelines' YAML file")
	fs.StringVar(&f.pipeline, "pipeline", "", "run only the "+kind+" pipeline of this name (empty: all of them)")
	fs.StringVar(&f.httpAddr, "http-addr", defaultAddr, "host:port of /metrics and /healthz (port 0 picks a free one)")
	fs.BoolVar(&f.insecureBind, "insecure-bind", false, "allow a non-loopback --http-addr (/metrics has no authentication)")
	fs.StringVar(&f.brokers, "kafka-brokers", "", "Kafka bootstrap brokers, replacing kafka.brokers of the file")
	fs.StringVar(&f.registryURL, "registry-url", "", "schema registry URL, replacing registry.url of the file")
	return cmd
}

// load checks the flags and loads the config they name, naming the first
// bad flag or setting.
func (f *pipelineFlags) load(kind string) (*runner.Config, error) {
	host, port, err := net.SplitHostPort(f.httpAddr)
	if err != nil {
		return nil, fmt.Errorf("--http-addr %q: %w", f.httpAddr, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return nil, fmt.Errorf("--http-addr %q: port %q is not a number", f.httpAddr, port)
	}
	if err := validatePort("http-addr", n); err != nil {
		return nil, err
	}
	if host == "" {
		host = "0.0.0.0"
	}
	if err := checkOpenBind("--http-addr", host, f.insecureBind); err != nil {
		return nil, err
	}
	if f.config == "" {
		return nil, errors.New("--config: required (the pipelines' YAML file)")
	}
	b, err := os.ReadFile(f.config)
	if err != nil {
		return nil, fmt.Errorf("--config: %w", err)
	}
	cfg, err := runner.Decode(bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("--config %s: %w", f.config, err)
	}
	cfg.ApplyEnv(os.LookupEnv)
	if f.brokers != "" {
		cfg.Kafka.Brokers = f.brokers
	}
	if f.registryURL != "" {
		cfg.Registry.URL = f.registryURL
	}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("--config %s: %w", f.config, err)
	}
	if err := cfg.Has(runner.Which{Kind: kind, Name: f.pipeline}); err != nil {
		if f.pipeline != "" {
			return nil, fmt.Errorf("--pipeline %s: %w", f.pipeline, err)
		}
		return nil, fmt.Errorf("--config %s: %w", f.config, err)
	}
	return cfg, nil
}

// healthz answers 200 "ok" when ready returns nil, else 503 with the
// reason: a readiness probe, for load balancers and orchestrators.
func healthz(w http.ResponseWriter, ready func() error) {
	if err := ready(); err != nil {
		http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}
