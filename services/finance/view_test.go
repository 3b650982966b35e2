package finance_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/internal/testenv"
	financev1 "github.com/slatehq/slate/proto/finance/v1"
	"github.com/slatehq/slate/services/finance"
	"github.com/slatehq/slate/services/internal/servicetest"
)

// The studio.cashflow deriver reads its rates from the finance service's
// ListRates, and projects a budget with its schedule joined; a rate added
// later is used after the next refresh.
func TestCashflowDeriverReadsRatesFromFinance(t *testing.T) {
	ctx := servicetest.Ctx(t)
	srv := finance.NewServer(&servicetest.Recorder{}, openBolt(t, filepath.Join(t.TempDir(), "f.db")))
	if _, err := srv.PutRate(ctx, &financev1.PutRateRequest{Rate: &financev1.Rate{FromCurrency: "EUR", ToCurrency: "USD", Rate: "1.1"}}); err != nil {
		t.Fatal(err)
	}
	addr := servicetest.Run(t, func(ctx context.Context, lis net.Listener) error { return finance.Serve(ctx, lis, srv) })
	d, err := enricher.NewDerive(ctx, finance.DeriveCashflow, map[string]string{"rates_target": addr, "refresh": "50ms"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	rec := map[string]any{"title_id": "t1", "version": int64(2), "line_items": []any{
		map[string]any{"category": "cast", "amount": int64(100_00), "currency": "EUR", "profile": "production"},
		map[string]any{"category": "vfx", "amount": int64(300), "currency": "JPY", "profile": "production"},
	}, "schedule": []any{map[string]any{"title_id": "t1", "version": int64(1), "production_start": "2027-01-01",
		"production_end": "2027-02-28", "releases": []any{map[string]any{"territory": "US", "date": "2027-07-16"}}}}}
	if _, err := d.Derive(ctx, "t1", 1, rec); err == nil || !strings.Contains(err.Error(), "no rate JPY→USD") {
		t.Fatalf("a line without a rate: %v", err)
	}
	if _, err := srv.PutRate(ctx, &financev1.PutRateRequest{Rate: &financev1.Rate{FromCurrency: "JPY", ToCurrency: "USD", Rate: "0.0066"}}); err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	testenv.WaitFor(t, 10*time.Second, "the JPY rate", func() bool {
		out, err = d.Derive(ctx, "t1", 1, rec)
		return err == nil
	})
	// 100.00 EUR × 1.1 = 110.00 USD; ¥300 × 0.0066 = 1.98 USD; over two months.
	if out["total"] != int64(111_98) || len(out["months"].([]any)) != 2 || out["currency"] != "USD" {
		t.Errorf("projection %v", out)
	}
}

func TestCashflowDeriverSettings(t *testing.T) {
	ctx := context.Background()
	for want, settings := range map[string]map[string]string{
		"settings.rates_target: required":               {},
		"settings.reporting_currency: ":                 {"rates_target": "x:1", "reporting_currency": "usd"},
		"settings.refresh: \"soon\"":                    {"rates_target": "x:1", "refresh": "soon"},
		"settings.colour: unknown setting":              {"rates_target": "x:1", "colour": "red"},
		"settings.tls_ca_file: ca_file: open /nonexist": {"rates_target": "x:1", "tls_ca_file": "/nonexistent/ca.pem"},
	} {
		_, err := enricher.NewDerive(ctx, finance.DeriveCashflow, settings)
		if err == nil || !errors.Is(err, enricher.ErrConfig) || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: err %v, want %q", settings, err, want)
		}
	}
}
