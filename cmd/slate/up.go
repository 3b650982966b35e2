package main

import (
	"context"
	"errors"
	"fmt"
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
	)
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run the whole system on embedded defaults",
		Long: `up starts the embedded Kafka broker, the schema registry, the titles service,
the title enricher, the sink consumer (dedupe in memory or, with --redis, in
Redis; the Hive audit table; the embedded search index) and a
workload that creates, updates and deletes titles. With --duration it stops
by itself, prints a summary and exits 0 only if every change reached the sink.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd)
			if err != nil {
				return err
			}
			if rate <= 0 {
				return fmt.Errorf("--rate %v: must be positive", rate)
			}
			cfg.Log = log
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
				"metrics", "http://"+s.HTTPAddr+"/metrics", "hive", s.HiveRoot)

			wctx := ctx
			if duration > 0 {
				var cancel context.CancelFunc
				wctx, cancel = context.WithTimeout(ctx, duration)
				defer cancel()
			}
			w := stack.NewWorkload(s.Titles, rate)
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
	f.StringVar(&cfg.DataDir, "data-dir", ".slate", "where the broker log and the Hive table live")
	f.StringVar(&cfg.Brokers, "brokers", "", "an external Kafka cluster; empty runs the embedded broker")
	f.IntVar(&cfg.KafkaPort, "kafka-port", 9092, "embedded broker port")
	f.StringVar(&cfg.RegistryURL, "registry-url", "", "an external schema registry; empty runs slate's own")
	f.IntVar(&cfg.RegistryPort, "registry-port", 8081, "schema registry port")
	f.IntVar(&cfg.TitlesPort, "titles-port", 50051, "titles gRPC service port")
	f.IntVar(&cfg.HTTPPort, "http-port", 9464, "port of /metrics and /healthz")
	f.StringVar(&cfg.Redis, "redis", "", "keep the dedupe store in Redis: host:port, or a comma list of cluster nodes (empty: in memory)")
	f.StringVar(&cfg.RedisKeyPrefix, "redis-key-prefix", dedupe.DefaultKeyPrefix, "prefix of the dedupe keys in Redis")
	f.BoolVar(&cfg.Transactional, "transactional", false, "run the enricher exactly once (Kafka transactions)")
	f.DurationVar(&duration, "duration", 0, "stop after this long and print a summary (0 runs until Ctrl-C)")
	f.Float64Var(&rate, "rate", 50, "workload writes per second")
	f.DurationVar(&settle, "settle", 30*time.Second, "with --duration, how long to wait for the pipeline to drain")
	return cmd
}

func progress(ctx context.Context, s *stack.Stack, w *stack.Workload, info func(string, ...any)) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			info("progress", "published", w.Writes(), "materialized", s.Enricher.Published(),
				"written", s.Tracker.Written(), "duplicates", s.Duplicates.Load())
		}
	}
}

// summarize waits for the pipeline to catch up with the workload and
// prints the summary; it fails if some change never reached the sink.
func summarize(ctx context.Context, s *stack.Stack, w *stack.Workload, settle time.Duration, out interface{ Write([]byte) (int, error) }) error {
	want := w.Expected()
	deadline := time.Now().Add(settle)
	missing := s.Tracker.Missing(want)
	for len(missing) > 0 && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(100 * time.Millisecond)
		missing = s.Tracker.Missing(want)
	}
	fmt.Fprintf(out, "slate up summary\n")
	fmt.Fprintf(out, "  changes published      %d\n", w.Writes())
	fmt.Fprintf(out, "  events materialized    %d\n", s.Enricher.Published())
	fmt.Fprintf(out, "  events written (sink)  %d\n", s.Tracker.Written())
	fmt.Fprintf(out, "  duplicates dropped     %d (dedupe store: %s)\n", s.Duplicates.Load(), s.DedupeAt)
	fmt.Fprintf(out, "  titles in step         %d/%d\n", len(want)-len(missing), len(want))
	fmt.Fprintf(out, "  hive table             %s/%s\n", s.HiveRoot, s.HiveTable)
	if n, err := s.Search.Count(ctx, "title"); err == nil {
		fmt.Fprintf(out, "  search index (bleve)   %d titles in %s\n", n, s.Search.Dir())
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
	return nil
}
