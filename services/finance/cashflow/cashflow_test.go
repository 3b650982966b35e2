package cashflow_test

import (
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slatehq/slate/services/finance/cashflow"
)

func rate(t testing.TB, from, to, s string) cashflow.Rate {
	t.Helper()
	r, err := cashflow.ParseRate(from, to, s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestConvertRoundsOnceHalfToEven(t *testing.T) {
	for _, tt := range []struct {
		from, to, rate string
		amount, want   int64
	}{
		{"EUR", "USD", "1.08345", 100_00, 108_34}, // 10,834.5 cents: a tie, to the even 10,834
		{"EUR", "USD", "1.08345", 100_000_00, 108_345_00},
		{"USD", "JPY", "151.5", 1, 2},                // 1.515 yen -> 2
		{"USD", "JPY", "150.5", 1, 2},                // 1.505 -> 2
		{"USD", "JPY", "250", 1, 2},                  // 2.5 yen: tie, to even 2
		{"USD", "JPY", "350", 1, 4},                  // 3.5 yen: tie, to even 4
		{"JPY", "USD", "0.0066", 1_000_000, 6600_00}, // ¥1,000,000 -> $6,600.00
		{"KWD", "USD", "3.2541", 1_000, 325},         // 1.000 KWD -> 3.2541 USD -> 3.25
		{"GBP", "EUR", "1.17", 0, 0},
	} {
		got, err := rate(t, tt.from, tt.to, tt.rate).Convert(cashflow.Money{Amount: tt.amount, Currency: tt.from})
		if err != nil || got.Amount != tt.want || got.Currency != tt.to {
			t.Errorf("%d %s at %s: %v %v, want %d %s", tt.amount, tt.from, tt.rate, got, err, tt.want, tt.to)
		}
	}
}

func TestBadMoneyIsRefused(t *testing.T) {
	for _, tt := range []struct {
		name string
		err  func() error
		want string
	}{
		{"unknown currency", func() error { _, err := cashflow.MinorUnits("XYZ"); return err }, `"XYZ" is not a currency`},
		{"lower-case currency", func() error { _, err := cashflow.MinorUnits("usd"); return err }, `"usd" is not a currency`},
		{"zero rate", func() error { _, err := cashflow.ParseRate("EUR", "USD", "0.000"); return err }, "is not positive"},
		{"signed rate", func() error { _, err := cashflow.ParseRate("EUR", "USD", "-1.1"); return err }, "want a decimal"},
		{"exponent", func() error { _, err := cashflow.ParseRate("EUR", "USD", "1e3"); return err }, "want a decimal"},
		{"too precise", func() error { _, err := cashflow.ParseRate("EUR", "USD", "1.0000000000001"); return err }, "more than 12 decimal places"},
		{"wrong rate", func() error {
			_, err := rate(t, "EUR", "USD", "1.1").Convert(cashflow.Money{Amount: 1, Currency: "GBP"})
			return err
		}, "converting 0.01 GBP with the rate EUR→USD 1.1"},
		{"overflow", func() error {
			_, err := rate(t, "USD", "KRW", "1400").Convert(cashflow.Money{Amount: 1 << 62, Currency: "USD"})
			return err
		}, "out of range"},
		{"profile", func() error { _, err := cashflow.ParseProfile("before_release"); return err }, "want 1 to 240 months"},
		{"profile kind", func() error { _, err := cashflow.ParseProfile("whenever"); return err }, "want production, at_release"},
		{"schedule", func() error {
			return cashflow.Schedule{ProductionStart: day(2027, 5, 1), ProductionEnd: day(2027, 4, 1)}.Validate()
		}, "production ends 2027-04-01, before it starts 2027-05-01"},
	} {
		if err := tt.err(); err == nil || !errors.Is(err, cashflow.ErrMoney) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err %v, want ErrMoney with %q", tt.name, err, tt.want)
		}
	}
}

func TestMoneyString(t *testing.T) {
	for m, want := range map[cashflow.Money]string{
		{Amount: 1234, Currency: "USD"}: "12.34 USD", {Amount: -5, Currency: "EUR"}: "-0.05 EUR",
		{Amount: 7, Currency: "JPY"}: "7 JPY", {Amount: 1, Currency: "KWD"}: "0.001 KWD",
	} {
		if got := m.String(); got != want {
			t.Errorf("%#v: %q, want %q", m, got, want)
		}
	}
}

func TestSpreadIsLargestRemainder(t *testing.T) {
	if got := cashflow.Spread(100, 3); !slices.Equal(got, []int64{34, 33, 33}) {
		t.Errorf("100 over 3: %v", got)
	}
	if got := cashflow.Spread(-7, 4); !slices.Equal(got, []int64{-2, -2, -2, -1}) {
		t.Errorf("-7 over 4: %v", got)
	}
}

func day(y int, m time.Month, d int) time.Time { return time.Date(y, m, d, 0, 0, 0, 0, time.UTC) }

func month(t testing.TB, s string) cashflow.Month {
	t.Helper()
	m, err := cashflow.ParseMonth(s)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// A budget of two currencies along a schedule: production months, prints
// and advertising before the July release.
func TestProject(t *testing.T) {
	rates, err := cashflow.NewRates("USD", rate(t, "GBP", "USD", "1.25"))
	if err != nil {
		t.Fatal(err)
	}
	s := cashflow.Schedule{ProductionStart: day(2027, 1, 10), ProductionEnd: day(2027, 3, 20), Release: day(2027, 7, 16)}
	p, err := cashflow.Project([]cashflow.LineItem{
		{Category: "crew", Amount: cashflow.Money{Amount: 100_000_00, Currency: "USD"}, Profile: cashflow.Profile{Kind: cashflow.Production}},
		{Category: "p&a", Amount: cashflow.Money{Amount: 10_000_01, Currency: "GBP"}, Profile: cashflow.Profile{Kind: cashflow.BeforeRelease, Months: 2}},
	}, s, rates)
	if err != nil {
		t.Fatal(err)
	}
	want := []cashflow.MonthAmount{
		{Month: month(t, "2027-01"), Amount: 33_333_34}, {Month: month(t, "2027-02"), Amount: 33_333_33},
		{Month: month(t, "2027-03"), Amount: 33_333_33},
		{Month: month(t, "2027-05"), Amount: 6_250_01}, {Month: month(t, "2027-06"), Amount: 6_250_00},
	}
	// 10,000.01 GBP × 1.25 = 12,500.0125 USD -> 12,500.01; over 2 months 6,250.01 + 6,250.00.
	if p.Currency != "USD" || p.Total != 112_500_01 || !slices.Equal(p.Months, want) {
		t.Errorf("projection %+v, want total 112,500.01 USD over %v", p, want)
	}
	if _, err := cashflow.Project([]cashflow.LineItem{{Category: "x", Amount: cashflow.Money{Amount: 1, Currency: "EUR"},
		Profile: cashflow.Profile{Kind: cashflow.AtRelease}}}, s, rates); err == nil || !strings.Contains(err.Error(), "no rate EUR→USD") {
		t.Errorf("a line without a rate: %v", err)
	}
	if _, err := cashflow.Project([]cashflow.LineItem{{Category: "x", Amount: cashflow.Money{Amount: -1, Currency: "USD"},
		Profile: cashflow.Profile{Kind: cashflow.AtRelease}}}, s, rates); err == nil || !strings.Contains(err.Error(), "is negative") {
		t.Errorf("a negative line: %v", err)
	}
}

var currencies = []string{"USD", "EUR", "GBP", "JPY", "KWD", "INR"}

func randomBudget(r *rand.Rand) ([]cashflow.LineItem, cashflow.Schedule, *cashflow.Rates) {
	report := currencies[r.IntN(len(currencies))]
	var rs []cashflow.Rate
	for _, c := range currencies {
		if c != report {
			rs = append(rs, cashflow.Rate{From: c, To: report, Units: 1 + r.Int64N(10_000_000), Scale: 4 + r.IntN(5)})
		}
	}
	rates, err := cashflow.NewRates(report, rs...)
	if err != nil {
		panic(err)
	}
	start := time.Date(2025+r.IntN(6), time.Month(1+r.IntN(12)), 1+r.IntN(28), 0, 0, 0, 0, time.UTC)
	end := start.AddDate(0, r.IntN(36), 0)
	s := cashflow.Schedule{ProductionStart: start, ProductionEnd: end, Release: end.AddDate(0, r.IntN(24), 0)}
	kinds := []cashflow.ProfileKind{cashflow.Production, cashflow.BeforeRelease, cashflow.AtRelease, cashflow.AfterRelease}
	lines := make([]cashflow.LineItem, 1+r.IntN(10))
	for i := range lines {
		p := cashflow.Profile{Kind: kinds[r.IntN(len(kinds))]}
		if p.Kind == cashflow.BeforeRelease || p.Kind == cashflow.AfterRelease {
			p.Months = 1 + r.IntN(24)
		}
		lines[i] = cashflow.LineItem{Category: "line", Profile: p,
			Amount: cashflow.Money{Amount: r.Int64N(100_000_000_000), Currency: currencies[r.IntN(len(currencies))]}}
	}
	return lines, s, rates
}

// For random budgets, schedules and rates: the months sum exactly to the
// budget converted line by line, and moving the schedule by k months
// moves every amount by exactly k months.
func TestProjectionProperties(t *testing.T) {
	r := rand.New(rand.NewPCG(20261207, 1))
	for i := range 2000 {
		lines, s, rates := randomBudget(r)
		p, err := cashflow.Project(lines, s, rates)
		if err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		var want, sum int64
		for _, l := range lines {
			c, err := rates.Convert(l.Amount)
			if err != nil {
				t.Fatal(err)
			}
			want += c.Amount
		}
		for _, m := range p.Months {
			sum += m.Amount
		}
		if sum != want || p.Total != want {
			t.Fatalf("case %d: months sum to %d, total %d, want %d", i, sum, p.Total, want)
		}

		k := r.IntN(25) - 12
		moved := cashflow.Schedule{ProductionStart: s.ProductionStart.AddDate(0, k, 0),
			ProductionEnd: s.ProductionEnd.AddDate(0, k, 0), Release: s.Release.AddDate(0, k, 0)}
		q, err := cashflow.Project(lines, moved, rates)
		if err != nil {
			t.Fatalf("case %d moved by %d: %v", i, k, err)
		}
		if len(q.Months) != len(p.Months) {
			t.Fatalf("case %d moved by %d: %d months, want %d", i, k, len(q.Months), len(p.Months))
		}
		for j, m := range p.Months {
			if q.Months[j] != (cashflow.MonthAmount{Month: m.Month + cashflow.Month(k), Amount: m.Amount}) {
				t.Fatalf("case %d moved by %d: month %d is %+v, want %s with %d", i, k, j, q.Months[j], m.Month+cashflow.Month(k), m.Amount)
			}
		}
	}
}
