package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/slatehq/slate/schema/registry"
)

func registryCmd() *cobra.Command {
	var port int
	var host, brokers string
	cmd := &cobra.Command{
		Use:   "registry",
		Short: "Serve a Confluent-compatible schema registry (REST API)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log, err := newLogger(cmd)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			opts := []registry.Option{registry.WithLogger(log)}
			if brokers != "" {
				store, err := registry.NewKafkaStore(ctx, strings.Split(brokers, ","), registry.KafkaLogger(log))
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
			lis, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
			if err != nil {
				return err
			}
			hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				_ = hs.Shutdown(sctx)
			}()
			log.Info("schema registry listening", "addr", lis.Addr().String())
			if err := hs.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&port, "port", 8081, "port to listen on")
	cmd.Flags().StringVar(&host, "host", "127.0.0.1", "address to listen on")
	cmd.Flags().StringVar(&brokers, "brokers", "", "Kafka bootstrap servers; schemas are stored durably in the _schemas topic there")
	return cmd
}
