package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/slatehq/slate/schema/registry"
)

func registryCmd() *cobra.Command {
	var (
		lc                  registry.ListenConfig
		brokers, usersFile  string
		readOnly            bool
		maxBytes, maxFields int
		kf                  kafkaFlags
	)
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Serve a Confluent-compatible schema registry (REST API)",
		Long: `registry serves slate's schema registry. It listens on 127.0.0.1 unless told
otherwise; a non-loopback --host needs --users-file (HTTP basic auth) or
--tls-require-client-cert (mutual TLS), or --insecure-bind to serve it open.`,
		Args: cobra.NoArgs,
		PreRunE: func(*cobra.Command, []string) error {
			if brokers == "" {
				if kf.set() {
					return errors.New("--kafka-* flags configure the client of the _schemas topic: they need --brokers")
				}
				return nil
			}
			return kf.validate(brokers)
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			opts := []registry.Option{registry.WithLogger(log), registry.WithReadOnly(readOnly),
				registry.WithMaxSchemaBytes(maxBytes), registry.WithMaxFields(maxFields)}
			if usersFile != "" {
				users, err := registry.LoadUsers(usersFile)
				if err != nil {
					return err
				}
				opts = append(opts, registry.WithUsers(users))
				lc.Authenticated = true
			}
			// Refuse an open non-loopback bind before touching Kafka.
			if err := lc.Validate(); err != nil {
				return err
			}
			if brokers != "" {
				// As long as the other commands wait for a broker at start.
				sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				store, err := registry.NewKafkaStore(sctx, strings.Split(brokers, ","),
					append(kf.storeOptions(brokers), registry.KafkaLogger(log))...)
				cancel()
				if err != nil {
					return err
				}
				defer store.Close()
				opts = append(opts, registry.WithStore(store))
			} else {
				log.Warn("no --brokers: schemas are kept in memory and lost on exit")
			}
			srv, err := registry.New(ctx, opts...)
			if err != nil {
				return err
			}
			hs, err := lc.HTTPServer(srv)
			if err != nil {
				return err
			}
			lis, err := net.Listen("tcp", lc.Addr())
			if err != nil {
				return err
			}
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = hs.Shutdown(sctx)
			}()
			log.Info("schema registry listening", "addr", lis.Addr().String(), "tls", hs.TLSConfig != nil,
				"basic_auth", usersFile != "", "read_only", readOnly)
			if err := registry.Serve(hs, lis); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&lc.Port, "port", 8081, "port to listen on")
	f.StringVar(&lc.Host, "host", "127.0.0.1", "address to listen on; a non-loopback one needs authentication or --insecure-bind")
	f.StringVar(&brokers, "brokers", "", "Kafka bootstrap servers; schemas are stored durably in the _schemas topic there")
	kf.bind(f)
	f.StringVar(&lc.CertFile, "tls-cert", "", "PEM certificate: serve HTTPS")
	f.StringVar(&lc.KeyFile, "tls-key", "", "PEM private key of --tls-cert")
	f.StringVar(&lc.ClientCAFile, "tls-client-ca", "", "PEM CA bundle that signs client certificates")
	f.BoolVar(&lc.RequireClientCert, "tls-require-client-cert", false, "require a client certificate signed by --tls-client-ca (mutual TLS)")
	f.StringVar(&usersFile, "users-file", "", "HTTP basic auth users, one 'name: password[,readonly]' a line (password plaintext or bcrypt)")
	f.BoolVar(&lc.InsecureBind, "insecure-bind", false, "allow a non-loopback --host without authentication")
	f.BoolVar(&readOnly, "read-only", false, "serve in READONLY mode: every change is refused (42205)")
	f.IntVar(&maxBytes, "max-schema-bytes", registry.DefaultMaxSchemaBytes, "largest schema accepted, in bytes (42209 above)")
	f.IntVar(&maxFields, "max-schema-fields", registry.DefaultMaxFields, "most record fields a schema may declare (42209 above)")
	return cmd
}
