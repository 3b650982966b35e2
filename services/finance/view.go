package finance

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/slatehq/slate/enricher"
	financev1 "github.com/slatehq/slate/proto/finance/v1"
	"github.com/slatehq/slate/services/finance/cashflow"
)

// DeriveCashflow is the name the cashflow view's deriver is registered
// under: an enrich pipeline of budgets with their schedule joined names it
// in `derive: {name: studio.cashflow, settings: {...}}`. Its settings:
//
//   - rates_target: the finance service (host:port), whose ListRates gives
//     the exchange rates. Required.
//   - reporting_currency: the ISO 4217 code the projection is in (default
//     USD).
//   - refresh: how often the rates are reloaded (default 1m). When a reload
//     fails the last rates keep being used, and
//     slate_enricher_side_input_stale{side_input="rates"} is 1.
//   - schedule_field: the join field of the schedule (default schedule).
//   - tls_ca_file, tls_cert_file, tls_key_file: dial rates_target over TLS.
//
// A binary that runs pipelines imports this package for the registration.
const DeriveCashflow = "studio.cashflow"

func init() { enricher.RegisterDerive(DeriveCashflow, newCashflowView) }

// cashflowView is the deriver with the connection of its rates.
type cashflowView struct {
	*cashflow.View
	conn *grpc.ClientConn
	stop chan struct{} // ends the retries of the first load
}

func (v cashflowView) Close() error {
	close(v.stop)
	err := v.View.Close()
	if cerr := v.conn.Close(); err == nil {
		err = cerr
	}
	return err
}

func newCashflowView(ctx context.Context, settings map[string]string) (enricher.Deriver, error) {
	bad := func(setting, format string, args ...any) error {
		return fmt.Errorf("%w: %s: settings.%s: %s", enricher.ErrConfig, DeriveCashflow, setting, fmt.Sprintf(format, args...))
	}
	known := map[string]bool{"rates_target": true, "reporting_currency": true, "refresh": true, "schedule_field": true,
		"tls_ca_file": true, "tls_cert_file": true, "tls_key_file": true}
	for k := range settings {
		if !known[k] {
			return nil, bad(k, "unknown setting (rates_target, reporting_currency, refresh, schedule_field, tls_ca_file, tls_cert_file, tls_key_file)")
		}
	}
	target := settings["rates_target"]
	if target == "" {
		return nil, bad("rates_target", "required (the finance service, host:port)")
	}
	reporting := settings["reporting_currency"]
	if reporting == "" {
		reporting = "USD"
	}
	if _, err := cashflow.MinorUnits(reporting); err != nil {
		return nil, bad("reporting_currency", "%v", err)
	}
	refresh := time.Minute
	if s := settings["refresh"]; s != "" {
		d, err := time.ParseDuration(s)
		if err != nil || d <= 0 {
			return nil, bad("refresh", "%q: want a positive duration such as 1m", s)
		}
		refresh = d
	}
	creds := insecure.NewCredentials()
	if settings["tls_ca_file"] != "" || settings["tls_cert_file"] != "" {
		t := enricher.ClientTLS{CAFile: settings["tls_ca_file"], CertFile: settings["tls_cert_file"], KeyFile: settings["tls_key_file"]}
		tc, err := t.Config()
		if err != nil {
			return nil, bad("tls_"+tlsSetting(err), "%v", err)
		}
		creds = credentials.NewTLS(tc)
	}
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(creds))
	if err != nil {
		return nil, bad("rates_target", "%q: %v", target, err)
	}
	client := financev1.NewFinanceClient(conn)
	load := func(ctx context.Context) (*cashflow.Rates, error) {
		resp, err := client.ListRates(ctx, &financev1.ListRatesRequest{ToCurrency: reporting})
		if err != nil {
			return nil, fmt.Errorf("finance: list rates into %s: %w", reporting, err)
		}
		rates := make([]cashflow.Rate, 0, len(resp.GetRates()))
		for _, r := range resp.GetRates() {
			cr, err := rateFromProto(r).Cashflow()
			if err != nil {
				return nil, err
			}
			rates = append(rates, cr)
		}
		return cashflow.NewRates(reporting, rates...)
	}
	side, err := enricher.NewSideInput("rates", load, enricher.WithRefreshInterval(refresh),
		enricher.WithSideInputLogger(slog.Default().With("deriver", DeriveCashflow)))
	if err != nil {
		conn.Close()
		return nil, err
	}
	v := cashflowView{View: cashflow.NewView(side), conn: conn, stop: make(chan struct{})}
	if f := settings["schedule_field"]; f != "" {
		v.ScheduleField = f
	}
	// Until the rates loaded once, projections are retried; the first
	// load is tried again until it succeeds, the finance service may start
	// after the pipeline.
	if err := side.Start(ctx); err != nil {
		slog.Default().Warn("exchange rates not loaded at start; projections wait for them", "deriver", DeriveCashflow,
			"target", target, "err", err)
		go func() {
			for {
				select {
				case <-v.stop:
					return
				case <-time.After(min(refresh, 2*time.Second)):
				}
				if side.Start(context.Background()) == nil {
					return
				}
			}
		}()
	}
	return v, nil
}

// tlsSetting is the file setting a ClientTLS error names (its errors
// start with it: "ca_file: ...").
func tlsSetting(err error) string {
	setting, _, _ := strings.Cut(err.Error(), ":")
	return setting
}
