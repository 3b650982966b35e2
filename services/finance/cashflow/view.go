package cashflow

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hamba/avro/v2"

	"github.com/slatehq/slate/enricher"
)

// ViewSchema is the record of the cashflow view: a title's budget
// projected month by month along its schedule, in one reporting
// currency.
var ViewSchema = avro.MustParse(`{
  "type": "record", "name": "CashFlow", "namespace": "slate.finance.v1",
  "doc": "A title's budget projected month by month along its schedule, in integer minor units of the reporting currency.",
  "fields": [
    {"name": "title_id", "type": "string"},
    {"name": "currency", "type": "string", "doc": "ISO 4217 code of the reporting currency"},
    {"name": "total", "type": "long", "doc": "the budget in minor units of currency, converted line by line"},
    {"name": "months", "type": {"type": "array", "items": {
      "type": "record", "name": "CashFlowMonth", "fields": [
        {"name": "month", "type": "string", "doc": "YYYY-MM"},
        {"name": "amount", "type": "long"}]}}, "default": []},
    {"name": "scheduled", "type": "boolean", "doc": "false while the title has no schedule: months is empty"},
    {"name": "production_start", "type": "string", "default": ""},
    {"name": "production_end", "type": "string", "default": ""},
    {"name": "release_date", "type": "string", "default": "", "doc": "the first release, the month release profiles count from"},
    {"name": "budget_version", "type": "long"},
    {"name": "schedule_version", "type": "long", "default": 0},
    {"name": "rates_as_of", "type": {"type": "long", "logicalType": "timestamp-millis"}, "doc": "when the exchange rates used were loaded"}
  ]}`).(*avro.RecordSchema)

// View is the [enricher.Deriver] of the cashflow view: it reads a budget
// record (finance's Budget: title_id, line_items of category, amount,
// currency and profile, version) with the title's schedule joined under
// ScheduleField (schedules' Schedule: production_start, production_end,
// releases of territory and date, version), and projects it with
// [Project] into the rates' reporting currency. Rates come from a side
// input, refreshed in the background; a projection uses the rates last
// loaded, and waits (the batch is retried) until a first load succeeded.
type View struct {
	// ScheduleField is the join field of the schedule (default
	// "schedule").
	ScheduleField string
	rates         *enricher.SideInput[*Rates]
}

// NewView returns the cashflow view's deriver over rates; Close closes
// rates.
func NewView(rates *enricher.SideInput[*Rates]) *View {
	return &View{ScheduleField: "schedule", rates: rates}
}

// Schema implements [enricher.Deriver].
func (v *View) Schema() avro.NamedSchema { return ViewSchema }

// Close implements [enricher.Deriver].
func (v *View) Close() error { return v.rates.Close(context.Background()) }

// errNoRates is returned until the rates loaded once.
var errNoRates = enricher.Temporary(errors.New("cashflow: exchange rates not loaded yet"))

// Derive implements [enricher.Deriver].
func (v *View) Derive(_ context.Context, id string, _ int64, rec map[string]any) (map[string]any, error) {
	rates, at := v.rates.Value()
	if rates == nil {
		return nil, errNoRates
	}
	lines, err := lineItems(rec["line_items"])
	if err != nil {
		return nil, err
	}
	out := map[string]any{"title_id": id, "currency": rates.To, "months": []any{}, "scheduled": false,
		"production_start": "", "production_end": "", "release_date": "",
		"budget_version": asInt64(rec["version"]), "schedule_version": int64(0), "rates_as_of": at.UTC()}
	joined, _ := rec[v.ScheduleField].([]any)
	if len(joined) == 0 {
		// Not scheduled yet: the total, and no months.
		var total int64
		for i, l := range lines {
			c, err := rates.Convert(l.Amount)
			if err != nil {
				return nil, fmt.Errorf("line %d (%s): %w", i, l.Category, err)
			}
			total += c.Amount
		}
		out["total"] = total
		return out, nil
	}
	sched, _ := joined[0].(map[string]any)
	s, release, err := schedule(sched)
	if err != nil {
		return nil, err
	}
	p, err := Project(lines, s, rates)
	if err != nil {
		return nil, err
	}
	months := make([]any, len(p.Months))
	for i, m := range p.Months {
		months[i] = map[string]any{"month": m.Month.String(), "amount": m.Amount}
	}
	out["total"], out["months"], out["scheduled"] = p.Total, months, true
	out["production_start"], out["production_end"] = sched["production_start"], sched["production_end"]
	out["release_date"], out["schedule_version"] = release, asInt64(sched["version"])
	return out, nil
}

// lineItems reads the line items of a budget record.
func lineItems(v any) ([]LineItem, error) {
	raw, _ := v.([]any)
	lines := make([]LineItem, 0, len(raw))
	for i, r := range raw {
		m, _ := r.(map[string]any)
		cat, _ := m["category"].(string)
		cur, _ := m["currency"].(string)
		prof, _ := m["profile"].(string)
		p, err := ParseProfile(prof)
		if err != nil {
			return nil, fmt.Errorf("line %d (%s): %w", i, cat, err)
		}
		lines = append(lines, LineItem{Category: cat, Amount: Money{Amount: asInt64(m["amount"]), Currency: cur}, Profile: p})
	}
	return lines, nil
}

// schedule reads a schedule record: its dates are ISO dates (YYYY-MM-DD),
// and the first of its releases is the release profiles count from.
func schedule(m map[string]any) (Schedule, string, error) {
	date := func(field string, v any) (time.Time, error) {
		s, _ := v.(string)
		t, err := time.Parse(time.DateOnly, s)
		if err != nil {
			return time.Time{}, fmt.Errorf("%w: schedule %s %q: want YYYY-MM-DD", ErrMoney, field, s)
		}
		return t, nil
	}
	var s Schedule
	var err error
	if s.ProductionStart, err = date("production_start", m["production_start"]); err != nil {
		return s, "", err
	}
	if s.ProductionEnd, err = date("production_end", m["production_end"]); err != nil {
		return s, "", err
	}
	var releases []string
	rs, _ := m["releases"].([]any)
	for _, r := range rs {
		rm, _ := r.(map[string]any)
		if d, _ := rm["date"].(string); d != "" {
			releases = append(releases, d)
		}
	}
	if len(releases) > 0 {
		first := slices.Min(releases) // ISO dates order as strings
		if s.Release, err = date("releases.date", first); err != nil {
			return s, "", err
		}
		return s, first, nil
	}
	return s, "", nil
}

func asInt64(v any) int64 {
	switch n := v.(type) {
	case int64:
		return n
	case int32:
		return int64(n)
	case int:
		return int64(n)
	}
	return 0
}
