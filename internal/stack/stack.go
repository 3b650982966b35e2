// Package stack wires slate's parts into the whole local system that
// `slate up` runs and the end-to-end tests drive: embedded broker, schema
// registry, the titles service, the title enricher and the sink consumer
// (dedupe, Hive audit table, embedded search index), with /metrics and
// /healthz. Every part listens on 127.0.0.1; [Security] turns on TLS,
// mutual TLS, broker SASL and registry basic auth for all of them and for
// the stack's own clients.
package stack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/slatehq/slate/consumer"
	"github.com/slatehq/slate/consumer/sink"
	"github.com/slatehq/slate/consumer/sink/bleve"
	"github.com/slatehq/slate/graphql"
	"github.com/slatehq/slate/internal/broker"
	"github.com/slatehq/slate/producer"
	financev1 "github.com/slatehq/slate/proto/finance/v1"
	schedulesv1 "github.com/slatehq/slate/proto/schedules/v1"
	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
	"github.com/slatehq/slate/runner"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/schema/registry"
	"github.com/slatehq/slate/services/titles"
)

// Config says where the stack listens and keeps its data. Ports of 0 pick
// free ones (the tests' choice); `slate up` uses the documented defaults.
type Config struct {
	DataDir      string // Hive table root and broker data; required
	Brokers      string // an external Kafka cluster; empty starts the embedded broker
	KafkaPort    int
	RegistryURL  string // an external registry; empty starts slate's own
	RegistryPort int
	TitlesPort   int
	// SchedulesPort and FinancePort are the ports of the schedules and
	// finance services.
	SchedulesPort int
	FinancePort   int
	HTTPPort      int // /metrics and /healthz
	// GraphQLPort is the port of the GraphQL API of the views.
	GraphQLPort int
	// GraphQL holds the API's limits (depth, complexity, page size,
	// minVersion wait); zero ones take their defaults. Its stores, metrics
	// and readiness are the stack's.
	GraphQL graphql.Config
	// HTTPHost is the address /metrics and /healthz listen on (default
	// 127.0.0.1). A non-loopback one needs Security.ClientCAFile (mutual
	// TLS), or InsecureBind to serve them to anyone.
	HTTPHost string
	// InsecureBind lets HTTPHost be a non-loopback address without mutual
	// TLS.
	InsecureBind bool
	// Security turns on TLS and authentication for every part.
	Security   Security
	Partitions int // partitions of auto-created topics on the embedded broker
	// Pipelines is the path of a slate.yaml whose pipelines run instead
	// of the embedded ones ([DefaultPipelines]).
	Pipelines string
	// Transactional runs every enricher exactly once: its outputs and
	// input offsets commit in one Kafka transaction.
	Transactional bool
	// Redis keeps every sink pipeline's dedupe store in Redis: host:port
	// of one server, or a comma list of Redis Cluster nodes. Empty keeps
	// what the pipelines say (memory, in the embedded ones).
	Redis string
	// RedisKeyPrefix is the prefix of the dedupe keys in Redis (default
	// dedupe.DefaultKeyPrefix).
	RedisKeyPrefix string
	Log            *slog.Logger
	// ExtraSinks receive every deduplicated title after the sinks of the
	// pipeline that reads the materialized titles; each needs a name
	// (consumer.Named).
	ExtraSinks []sink.Sink
	// Studio holds the settings of the studio's services and views (see
	// studio.go).
	Studio
}

// ErrInsecureBind is wrapped by [Config.Validate] when /metrics and
// /healthz would listen beyond the loopback interface without mutual TLS.
var ErrInsecureBind = errors.New("stack: refusing to serve /metrics on a non-loopback address without client authentication")

// Validate reports the first setting that cannot work; it reads the
// files Security names.
func (c *Config) Validate() error {
	switch {
	case c.DataDir == "":
		return errors.New("stack: data dir is empty")
	case c.KafkaPort < 0 || c.RegistryPort < 0 || c.TitlesPort < 0 || c.HTTPPort < 0 || c.SchedulesPort < 0 || c.FinancePort < 0 || c.GraphQLPort < 0:
		return errors.New("stack: ports must not be negative")
	}
	if err := c.Studio.validate(); err != nil {
		return err
	}
	if err := c.Security.Validate(); err != nil {
		return err
	}
	if err := c.GraphQL.ValidateLimits(); err != nil {
		return err
	}
	if _, _, err := c.pipelines(); err != nil {
		return err
	}
	if h := c.httpHost(); !isLoopback(h) && c.Security.ClientCAFile == "" && !c.InsecureBind {
		return fmt.Errorf("%w: --http-host %s is reachable from other machines; set --tls-client-ca (mutual TLS), or pass --insecure-bind to serve it open", ErrInsecureBind, h)
	}
	return nil
}

func (c *Config) httpHost() string {
	if c.HTTPHost == "" {
		return "127.0.0.1"
	}
	return c.HTTPHost
}

// Stack is a running system.
type Stack struct {
	Brokers     string
	RegistryURL string
	TitlesAddr  string
	HTTPAddr    string
	HiveRoot    string
	HiveTable   string

	Titles titlesv1.TitlesClient
	// SchedulesAddr and FinanceAddr are where the studio's other services
	// listen; Schedules and Finance are clients of them.
	SchedulesAddr string
	FinanceAddr   string
	Schedules     schedulesv1.SchedulesClient
	Finance       financev1.FinanceClient
	// GraphQLURL is where the GraphQL API of the views is served (GraphiQL
	// at /, the API at /query); empty when the pipelines lack the views.
	GraphQLURL string
	// Runner runs the pipelines.
	Runner *runner.Runner
	// Pipelines is the configuration they run from.
	Pipelines *runner.Config
	// TitleSink is the name of the sink pipeline that reads the
	// materialized titles, which the Tracker follows.
	TitleSink string
	// Dedupe is its dedupe store.
	Dedupe consumer.DedupeStore
	// DedupeAt says where the dedupe store lives ("memory", or the Redis
	// address).
	DedupeAt string
	// Search is its embedded Elasticsearch-compatible index of titles, if
	// it has a bleve sink.
	Search  *bleve.Sink
	Tracker *Tracker
	// Cashflows follows the cashflow view, when slate.yaml has one (nil
	// otherwise).
	Cashflows *Tracker
	Registry  *schema.RegistryClient
	Producer  *producer.Producer // the titles service's
	// Disorder is what the services publish through when
	// Config.Studio.Disorder is set (nil otherwise).
	Disorder *Disorder
	// Gatherer reads the metrics of the stack's parts.
	Gatherer prometheus.Gatherer

	cfg       Config
	sec       *loaded
	pipelines []byte // the text of slate.yaml
	closers   []func(context.Context) error
	group     *errgroup.Group
	cancel    context.CancelFunc
	metrics   *prometheus.Registry // what /metrics serves
}

// Start starts every part and returns when all of them listen. Stop it
// with [Stack.Stop].
func Start(ctx context.Context, cfg Config) (_ *Stack, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Partitions == 0 {
		cfg.Partitions = 4
	}
	log := cfg.Log
	ctx, cancel := context.WithCancel(ctx)
	g, gctx := errgroup.WithContext(ctx)
	sec, err := cfg.Security.load()
	if err != nil {
		cancel()
		return nil, err
	}
	s := &Stack{cfg: cfg, sec: sec, group: g, cancel: cancel, Tracker: NewTracker(), metrics: prometheus.NewRegistry()}
	s.metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	defer func() {
		if err != nil {
			_ = s.Stop(context.Background())
		}
	}()
	external := cfg.Brokers != ""

	// First, so that a bad pipelines file fails the start at once.
	var early *runner.Config
	if s.pipelines, early, err = cfg.pipelines(); err != nil {
		return s, err
	}

	s.Brokers = cfg.Brokers
	if s.Brokers == "" {
		b, err := broker.Start(append([]broker.Option{broker.WithPort(cfg.KafkaPort), broker.WithPartitions(cfg.Partitions),
			broker.WithDataDir(filepath.Join(cfg.DataDir, "kafka")), broker.WithLogger(log)}, sec.brokerOptions()...)...)
		if err != nil {
			return s, err
		}
		s.onStop(func(context.Context) error { b.Close(); return nil })
		s.Brokers = b.Addr()
	}

	s.RegistryURL = cfg.RegistryURL
	if s.RegistryURL == "" {
		// Schemas live in the _schemas topic, as with Confluent's registry,
		// so a restarted stack serves the same ids.
		store, err := registry.NewKafkaStore(gctx, []string{s.Brokers},
			append(StoreOptions(sec.kafka(s.Brokers, external)), registry.KafkaLogger(log))...)
		if err != nil {
			return s, err
		}
		s.onStop(func(context.Context) error { store.Close(); return nil })
		ropts := []registry.Option{registry.WithLogger(log), registry.WithStore(store)}
		lc := registry.ListenConfig{Port: cfg.RegistryPort, CertFile: sec.CertFile, KeyFile: sec.KeyFile,
			ClientCAFile: sec.ClientCAFile, RequireClientCert: sec.ClientCAFile != ""}
		if sec.RegistryUserInfo != "" {
			users, err := sec.registryUsers()
			if err != nil {
				return s, err
			}
			ropts = append(ropts, registry.WithUsers(users))
			lc.Authenticated = true
		}
		reg, err := registry.New(gctx, ropts...)
		if err != nil {
			return s, err
		}
		hs, err := lc.HTTPServer(reg)
		if err != nil {
			return s, err
		}
		// The scheme first: a plaintext http.Server gets a TLS
		// configuration of its own (for HTTP/2) once it serves.
		url := scheme(hs)
		addr, err := s.serveHTTP(gctx, "registry", "127.0.0.1", cfg.RegistryPort, hs)
		if err != nil {
			return s, err
		}
		s.RegistryURL = url + addr
	}
	if s.Registry, err = schema.NewRegistryClient(s.RegistryURL, sec.registryClientOptions()...); err != nil {
		return s, err
	}

	// The titles service and its producer.
	// The services publish under the pipelines' topic prefix.
	if s.Producer, err = s.newProducer("//studio/titles", "slate-titles", producer.WithTopicPrefix(early.TopicPrefix)); err != nil {
		return s, err
	}
	// Titles are kept under the data directory, beside the stores of the
	// studio's other services, so that a restart serves them again.
	studioDir := filepath.Join(cfg.DataDir, "studio")
	if err := os.MkdirAll(studioDir, 0o755); err != nil {
		return s, fmt.Errorf("stack: studio data: %w", err)
	}
	ts, err := titles.OpenBoltStore(filepath.Join(studioDir, "titles.db"))
	if err != nil {
		return s, fmt.Errorf("stack: titles store: %w", err)
	}
	s.onStop(func(context.Context) error { return ts.Close() })
	lis, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(cfg.TitlesPort))
	if err != nil {
		return s, fmt.Errorf("stack: titles listen: %w", err)
	}
	s.TitlesAddr = lis.Addr().String()
	srv := titles.NewServer(s.publisher(), titles.WithStore(ts))
	var sopts []titles.ServeOption
	creds := insecure.NewCredentials()
	if sec.server != nil {
		sopts = append(sopts, titles.WithTLS(sec.server))
		creds = credentials.NewTLS(sec.client.Clone())
	}
	g.Go(func() error { return titles.Serve(gctx, lis, srv, sopts...) })
	log.Info("titles service listening", "addr", s.TitlesAddr, "tls", sec.server != nil, "mtls", sec.authenticatesClients())
	conn, err := grpc.NewClient(s.TitlesAddr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return s, fmt.Errorf("stack: titles client: %w", err)
	}
	s.onStop(func(context.Context) error { return conn.Close() })
	s.Titles = titlesv1.NewTitlesClient(conn)

	// The studio's other services: schedules and finance.
	if err := s.startStudio(gctx); err != nil {
		return s, err
	}

	// The pipelines, from slate.yaml (the embedded one or --config).
	if err := s.startPipelines(ctx); err != nil {
		return s, err
	}
	if err := s.startGraphQL(gctx); err != nil {
		return s, err
	}

	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		if err := s.Runner.Ready(); err != nil {
			http.Error(w, "not ready: "+err.Error(), http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	ms := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, TLSConfig: sec.server}
	if s.HTTPAddr, err = s.serveHTTP(gctx, "metrics", cfg.httpHost(), cfg.HTTPPort, ms); err != nil {
		return s, err
	}
	return s, nil
}

// MetricsURL returns the URL of /metrics.
func (s *Stack) MetricsURL() string {
	if s.sec.server != nil {
		return "https://" + s.HTTPAddr + "/metrics"
	}
	return "http://" + s.HTTPAddr + "/metrics"
}

func (s *Stack) onStop(f func(context.Context) error) { s.closers = append(s.closers, f) }

func (s *Stack) newProducer(source, clientID string, extra ...producer.Option) (*producer.Producer, error) {
	opts := append([]producer.Option{producer.WithBrokers(s.Brokers), producer.WithRegistry(s.Registry),
		producer.WithSource(source), producer.WithClientID(clientID), producer.WithLogger(s.cfg.Log)},
		runner.ProducerOptions(s.sec.kafka(s.Brokers, s.cfg.Brokers != ""))...)
	opts = append(opts, extra...)
	p, err := producer.New(opts...)
	if err != nil {
		return nil, err
	}
	s.onStop(p.Close)
	return p, nil
}

// scheme is the URL scheme of srv.
func scheme(srv *http.Server) string {
	if srv.TLSConfig != nil {
		return "https://"
	}
	return "http://"
}

// serveHTTP serves srv on host:port, over TLS when srv has a TLS
// configuration, until ctx ends.
func (s *Stack) serveHTTP(ctx context.Context, name, host string, port int, srv *http.Server) (string, error) {
	lis, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
	if err != nil {
		return "", fmt.Errorf("stack: %s listen: %w", name, err)
	}
	secure := srv.TLSConfig != nil // before Serve sets one for HTTP/2
	s.group.Go(func() error {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return srv.Shutdown(sctx)
	})
	s.group.Go(func() error {
		if err := registry.Serve(srv, lis); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("stack: %s: %w", name, err)
		}
		return nil
	})
	s.cfg.Log.Info(name+" listening", "addr", lis.Addr().String(), "tls", secure)
	return lis.Addr().String(), nil
}

// Stop stops every part: the consumers finish their batch and leave their
// groups, producers flush, then the broker stops.
func (s *Stack) Stop(ctx context.Context) error {
	s.cancel()
	err := s.group.Wait()
	for i := len(s.closers) - 1; i >= 0; i-- {
		if cerr := s.closers[i](ctx); cerr != nil && !errors.Is(cerr, producer.ErrClosed) {
			err = errors.Join(err, cerr)
		}
	}
	s.closers = nil
	return err
}
