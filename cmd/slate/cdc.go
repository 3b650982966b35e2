package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/slatehq/slate/cdc"
	"github.com/slatehq/slate/cdc/mysql"
	"github.com/slatehq/slate/cdc/postgres"
	"github.com/slatehq/slate/producer"
	"github.com/slatehq/slate/schema"
)

func cdcCmd() *cobra.Command {
	var (
		pg          postgres.Config
		my          mysql.Config
		brokers     string
		registryURL string
		noSnapshot  bool
		metricsHost string
		metricsPort int
		insecure    bool
		topicPrefix string
		kf          kafkaFlags
	)
	cmd := &cobra.Command{
		Use:   "cdc",
		Short: "Stream PostgreSQL or MariaDB/MySQL changes and outbox rows to Kafka",
		Long: `cdc captures a PostgreSQL database through a logical replication slot
(pgoutput) and publishes every committed row change to
<prefix>cdc.<db>.<schema>.<table>, keyed by primary key, and every outbox row
(slate_outbox) as the envelope it carries to <prefix><aggregatetype>.changes;
<prefix> is --topic-prefix, studio. by default.
The slot advances only after Kafka acknowledged the events, so a restart
replays and never skips. A new slot starts with a snapshot of the published
tables unless --no-snapshot. Metrics are served on /metrics.

The database needs wal_level=logical and a user allowed to replicate.

With --mysql-dsn it captures a MariaDB or MySQL database through its ROW
binlog instead (as a replica with --server-id), publishing to
<prefix>cdc.<name>.<database>.<table>; acknowledged binlog positions are
stored in --offsets-table of that database, so a restart resumes there.
--pg-dsn and --mysql-dsn (or SLATE_PG_DSN and SLATE_MYSQL_DSN) together
are refused: one slate cdc captures one database.

/metrics and /healthz listen on 127.0.0.1; they have neither TLS nor
authentication, so a non-loopback --metrics-host needs --insecure-bind.`,
		Args: cobra.NoArgs,
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			if err := schema.ValidateTopicPrefix(topicPrefix); err != nil {
				return fmt.Errorf("--topic-prefix: %w", err)
			}
			if err := checkOpenBind("--metrics-host", metricsHost, insecure); err != nil {
				return err
			}
			if err := kf.validate(brokers); err != nil {
				return err
			}
			return checkOneSource(cmd.Flags())
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			reg, err := schema.NewRegistryClient(registryURL)
			if err != nil {
				return err
			}
			promReg := prometheus.NewRegistry()
			m := cdc.NewMetrics(promReg)
			var (
				src    cdc.Source
				srcURI = "//pg"
				attrs  []any
			)
			pg.TopicPrefix, my.TopicPrefix = topicPrefix, topicPrefix
			if my.DSN != "" {
				my.Filter = pg.Filter
				my.Outbox = pg.Outbox
				if err := my.Validate(); err != nil {
					return err
				}
				src, err = mysql.New(my, mysql.WithRegistry(reg), mysql.WithLogger(log), mysql.WithMetrics(m))
				srcURI = "//mysql"
				attrs = []any{"source", "mysql", "flavor", my.Flavor, "name", my.Name, "server_id", my.ServerID}
			} else {
				pg.Snapshot = !noSnapshot
				if err := pg.Validate(); err != nil {
					return err
				}
				src, err = postgres.New(pg, postgres.WithRegistry(reg), postgres.WithLogger(log), postgres.WithMetrics(m))
				attrs = []any{"source", "postgres", "slot", pg.Slot, "publication", pg.Publication}
			}
			if err != nil {
				return err
			}
			p, err := producer.New(append([]producer.Option{producer.WithBrokers(brokers), producer.WithRegistry(reg),
				producer.WithSource(srcURI), producer.WithClientID("slate-cdc"), producer.WithLogger(log),
				producer.WithTopicPrefix(topicPrefix)},
				kf.producerOptions(brokers)...)...)
			if err != nil {
				return err
			}
			defer func() {
				sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				defer cancel()
				_ = p.Close(sctx)
			}()
			r, err := cdc.NewRunner(p, cdc.WithLogger(log), cdc.WithMetrics(m))
			if err != nil {
				return err
			}
			stopHTTP, err := cdcServeMetrics(ctx, net.JoinHostPort(metricsHost, strconv.Itoa(metricsPort)), promReg)
			if err != nil {
				return err
			}
			defer stopHTTP()
			log.Info("cdc starting", append(attrs, "brokers", brokers,
				"registry", registryURL, "metrics", fmt.Sprintf("http://%s:%d/metrics", metricsHost, metricsPort))...)
			return r.Run(ctx, src)
		},
	}
	f := cmd.Flags()
	f.StringVar(&pg.DSN, "pg-dsn", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable", "PostgreSQL connection string of the captured database")
	f.StringVar(&pg.Slot, "slot", "slate", "logical replication slot")
	f.StringVar(&pg.Publication, "publication", "slate", "publication to stream")
	f.BoolVar(&pg.CreateSlot, "create-slot", true, "create the slot when it does not exist")
	f.BoolVar(&pg.CreatePublication, "create-publication", true, "create the publication when it does not exist")
	f.StringSliceVar(&pg.Tables, "tables", nil, "schema.table list of a created publication (default: all tables)")
	f.BoolVar(&noSnapshot, "no-snapshot", false, "skip the initial snapshot of a new slot")
	f.StringVar(&pg.StateTable, "state-table", "slate_cdc_state", `table for snapshot state and heartbeats ("-" for none)`)
	f.DurationVar(&pg.StatusInterval, "status-interval", 10*time.Second, "how often the acknowledged position is confirmed to the server")
	f.DurationVar(&pg.HeartbeatInterval, "heartbeat", time.Minute, "write the state table this often so an idle slot advances (0: off)")
	f.StringVar(&pg.Outbox, "outbox", cdc.OutboxTable, `outbox table ("-": capture it as a plain table)`)
	f.StringVar(&topicPrefix, "topic-prefix", schema.DefaultTopicPrefix,
		"prefix of the topics events go to (<prefix>cdc.<db>.<schema>.<table>, <prefix><aggregatetype>.changes)")
	f.BoolVar(&pg.OutboxDelete, "outbox-delete", false, "delete outbox rows once Kafka acknowledged them")
	f.StringSliceVar(&pg.Filter.IncludeTables, "include-tables", nil, "schema.table globs to capture (default all)")
	f.StringSliceVar(&pg.Filter.ExcludeTables, "exclude-tables", nil, "schema.table globs not to capture")
	f.StringSliceVar(&pg.Filter.ExcludeColumns, "exclude-columns", nil, "schema.table.column globs left out of records")
	f.StringSliceVar(&pg.Filter.MaskColumns, "mask-columns", nil, "schema.table.column globs published as SHA-256 hex")
	f.StringVar(&pg.UnavailableValue, "unavailable-value-placeholder", postgres.DefaultUnavailableValue,
		"value of an unchanged TOASTed column the server did not send (PostgreSQL, REPLICA IDENTITY other than FULL)")
	f.StringVar(&my.DSN, "mysql-dsn", "", "user[:password]@tcp(host:port)/database of a MariaDB/MySQL database to capture instead of PostgreSQL")
	f.StringVar(&my.Flavor, "mysql-flavor", "mariadb", "mariadb or mysql")
	f.StringVar(&my.Name, "mysql-name", "mysql", "name of the MySQL source: the <db> part of topics and its offsets row")
	f.Uint32Var(&my.ServerID, "server-id", 0, "replica server id for the binlog connection (default: random)")
	f.StringVar(&my.OffsetsTable, "offsets-table", "slate_cdc_offsets", "MySQL table storing acknowledged binlog positions")
	f.DurationVar(&my.FlushInterval, "offsets-flush", time.Second, "how often acknowledged MySQL positions are stored")
	f.BoolVar(&my.Snapshot, "mysql-snapshot", false, "on the first MySQL run, read the captured tables in a consistent snapshot before streaming")
	f.StringVar(&brokers, "brokers", "127.0.0.1:9092", "Kafka bootstrap servers")
	kf.bind(f)
	f.StringVar(&registryURL, "registry-url", "http://127.0.0.1:8081", "schema registry URL")
	f.StringVar(&metricsHost, "metrics-host", "127.0.0.1", "address of /metrics and /healthz")
	f.IntVar(&metricsPort, "metrics-port", 9465, "port of /metrics and /healthz")
	f.BoolVar(&insecure, "insecure-bind", false, "allow a non-loopback --metrics-host (served without TLS or authentication)")
	return cmd
}

// cdcServeMetrics serves /metrics and /healthz until ctx ends or stop is called.
func cdcServeMetrics(ctx context.Context, addr string, g prometheus.Gatherer) (stop func(), err error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("metrics listener: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{}))
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(lis) }()
	done := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	return func() { close(done) }, nil
}

// checkOneSource refuses a PostgreSQL and a MySQL source at once, from
// flags or from SLATE_PG_DSN and SLATE_MYSQL_DSN: slate cdc captures one
// database, and taking one of the two silently would stream the wrong one.
func checkOneSource(f *pflag.FlagSet) error {
	pgDSN, _ := f.GetString("pg-dsn")
	myDSN, _ := f.GetString("mysql-dsn")
	if f.Changed("pg-dsn") && pgDSN != "" && myDSN != "" {
		return errors.New("--pg-dsn and --mysql-dsn are both set (by flag or by SLATE_PG_DSN and SLATE_MYSQL_DSN): slate cdc captures one database; unset one")
	}
	return nil
}
