package cashflow_test

import (
	"context"
	"errors"
	"testing"

	"github.com/hamba/avro/v2"

	"github.com/slatehq/slate/enricher"
	"github.com/slatehq/slate/services/finance/cashflow"
)

func budgetRecord() map[string]any {
	return map[string]any{"title_id": "t1", "version": int64(3), "line_items": []any{
		map[string]any{"category": "crew", "amount": int64(90_000_00), "currency": "USD", "profile": "production"},
		map[string]any{"category": "p&a", "amount": int64(10_000_00), "currency": "GBP", "profile": "before_release:2"},
	}}
}

func scheduleRecord(release string) map[string]any {
	return map[string]any{"title_id": "t1", "version": int64(7), "production_start": "2027-01-10", "production_end": "2027-03-20",
		"releases": []any{map[string]any{"territory": "GB", "date": "2027-08-01"}, map[string]any{"territory": "US", "date": release}}}
}

func TestViewDerivesTheProjection(t *testing.T) {
	ctx := context.Background()
	rates, err := enricher.NewSideInput("rates", func(context.Context) (*cashflow.Rates, error) {
		return cashflow.NewRates("USD", cashflow.Rate{From: "GBP", To: "USD", Units: 125, Scale: 2})
	})
	if err != nil {
		t.Fatal(err)
	}
	v := cashflow.NewView(rates)
	defer v.Close()
	rec := budgetRecord()
	if _, err := v.Derive(ctx, "t1", 1, rec); err == nil || !enricher.IsRetryable(err) {
		t.Fatalf("before the rates loaded: %v, want a retryable error", err)
	}
	if err := rates.Refresh(ctx); err != nil {
		t.Fatal(err)
	}

	rec["schedule"] = []any{scheduleRecord("2027-07-16")}
	july, err := v.Derive(ctx, "t1", 1, rec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := avro.Marshal(cashflow.ViewSchema, july); err != nil {
		t.Fatalf("the derived record does not encode: %v", err)
	}
	want := []any{
		map[string]any{"month": "2027-01", "amount": int64(30_000_00)}, map[string]any{"month": "2027-02", "amount": int64(30_000_00)},
		map[string]any{"month": "2027-03", "amount": int64(30_000_00)},
		map[string]any{"month": "2027-05", "amount": int64(6_250_00)}, map[string]any{"month": "2027-06", "amount": int64(6_250_00)},
	}
	if july["total"] != int64(102_500_00) || july["release_date"] != "2027-07-16" || july["schedule_version"] != int64(7) ||
		july["budget_version"] != int64(3) || len(july["months"].([]any)) != len(want) {
		t.Fatalf("july: %v", july)
	}
	for i, m := range want {
		if got := july["months"].([]any)[i].(map[string]any); got["month"] != m.(map[string]any)["month"] || got["amount"] != m.(map[string]any)["amount"] {
			t.Errorf("month %d: %v, want %v", i, got, m)
		}
	}

	// The release moves to June: the P&A months move a month earlier.
	rec["schedule"] = []any{scheduleRecord("2027-06-10")}
	june, err := v.Derive(ctx, "t1", 1, rec)
	if err != nil {
		t.Fatal(err)
	}
	if m := june["months"].([]any)[3].(map[string]any); m["month"] != "2027-04" || m["amount"] != int64(6_250_00) {
		t.Errorf("june release, first P&A month %v, want 2027-04 with 6,250.00", m)
	}

	// Without a schedule: the total, no months.
	delete(rec, "schedule")
	none, err := v.Derive(ctx, "t1", 1, rec)
	if err != nil || none["scheduled"] != false || none["total"] != int64(102_500_00) || len(none["months"].([]any)) != 0 {
		t.Errorf("unscheduled: %v %v", none, err)
	}

	// A currency without a rate fails for good, naming the line.
	rec["line_items"] = append(rec["line_items"].([]any), map[string]any{"category": "vfx", "amount": int64(1), "currency": "JPY", "profile": "production"})
	if _, err := v.Derive(ctx, "t1", 1, rec); err == nil || enricher.IsRetryable(err) || !errors.Is(err, cashflow.ErrMoney) {
		t.Errorf("a line without a rate: %v", err)
	}
}
