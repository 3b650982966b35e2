package finance_test

import (
	"context"
	"errors"
	"net"
	"path/filepath"
	"testing"

	financev1 "github.com/slatehq/slate/proto/finance/v1"
	"github.com/slatehq/slate/schema"
	"github.com/slatehq/slate/services/finance"
	"github.com/slatehq/slate/services/finance/cashflow"
	"github.com/slatehq/slate/services/internal/servicetest"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
)

// serve runs srv over gRPC for the test's lifetime and returns a client.
func serve(t *testing.T, srv *finance.Server) financev1.FinanceClient {
	t.Helper()
	conn := servicetest.Serve(t, func(ctx context.Context, lis net.Listener) error { return finance.Serve(ctx, lis, srv) })
	return financev1.NewFinanceClient(conn)
}

// serveBolt runs a Server on a BoltStore and returns a client and the
// recorder of its events.
func serveBolt(t *testing.T) (financev1.FinanceClient, *servicetest.Recorder) {
	t.Helper()
	rec := &servicetest.Recorder{}
	return serve(t, finance.NewServer(rec, openBolt(t, filepath.Join(t.TempDir(), "finance.db")))), rec
}

func ev(entityType, id string, op schema.Op, seq int64) servicetest.Change {
	return servicetest.Change{EntityType: entityType, ID: id, Op: op, Seq: seq}
}

func pbBudget(id string) *financev1.Budget {
	return &financev1.Budget{TitleId: id,
		LineItems: []*financev1.LineItem{
			{Category: "cast", Amount: 12_000_000_00, Currency: "USD", Profile: "production"},
			{Category: "p&a", Amount: 3_000_000_00, Currency: "EUR", Profile: "before_release:06"},
			{Category: "residuals", Amount: 900_000_000, Currency: "JPY", Profile: "after_release:12"},
		},
		Actuals: []*financev1.Actual{
			{Category: "cast", Month: "2027-02", Amount: 1_500_000_00, Currency: "USD"},
			{Month: "2027-03", Amount: 20_000_00, Currency: "GBP"},
		}}
}

func TestWritesPublishOneEventEach(t *testing.T) {
	ctx := servicetest.Ctx(t)
	c, rec := serveBolt(t)

	put, err := c.PutBudget(ctx, &financev1.PutBudgetRequest{Budget: pbBudget("t1")})
	if err != nil {
		t.Fatal(err)
	}
	if got := put.GetBudget(); got.GetVersion() != 1 || got.GetUpdatedAt() == nil || got.GetLineItems()[1].GetProfile() != "before_release:6" {
		t.Fatalf("PutBudget = %v, want version 1 with profiles in canonical form", got)
	}
	rec.WantChanges(t, ev("budget", "t1", schema.OpCreate, 1))

	again := pbBudget("t1")
	again.LineItems[0].Amount = 13_000_000_00
	if put, err = c.PutBudget(ctx, &financev1.PutBudgetRequest{Budget: again, ExpectedVersion: proto.Int64(1)}); err != nil || put.GetBudget().GetVersion() != 2 {
		t.Fatalf("PutBudget over version 1 = %v, %v", put, err)
	}
	rec.WantChanges(t, ev("budget", "t1", schema.OpUpdate, 2))

	got, err := c.GetBudget(ctx, &financev1.GetBudgetRequest{TitleId: "t1"})
	if err != nil || got.GetBudget().GetLineItems()[0].GetAmount() != 13_000_000_00 || len(got.GetBudget().GetActuals()) != 2 {
		t.Fatalf("GetBudget = %v, %v", got, err)
	}
	batch, err := c.BatchGetBudgets(ctx, &financev1.BatchGetBudgetsRequest{Ids: []string{"t1", "nope", "t1"}})
	if err != nil || len(batch.GetBudgets()) != 1 || batch.GetBudgets()[0].GetVersion() != 2 ||
		len(batch.GetMissingIds()) != 1 || batch.GetMissingIds()[0] != "nope" {
		t.Fatalf("BatchGetBudgets = %v, %v", batch, err)
	}

	del, err := c.DeleteBudget(ctx, &financev1.DeleteBudgetRequest{TitleId: "t1"})
	if err != nil || del.GetVersion() != 3 {
		t.Fatalf("DeleteBudget = %v, %v; want version 3", del, err)
	}
	rec.WantChanges(t, ev("budget", "t1", schema.OpDelete, 3))
	// A deleted budget is not found, but a batch read answers its
	// tombstone at the delete's version.
	_, err = c.GetBudget(ctx, &financev1.GetBudgetRequest{TitleId: "t1"})
	servicetest.WantCode(t, err, codes.NotFound)
	batch, err = c.BatchGetBudgets(ctx, &financev1.BatchGetBudgetsRequest{Ids: []string{"t1", "nope"}})
	if err != nil || len(batch.GetBudgets()) != 1 || !proto.Equal(batch.GetBudgets()[0], &financev1.Budget{TitleId: "t1", Version: 3, Deleted: true}) ||
		len(batch.GetMissingIds()) != 1 || batch.GetMissingIds()[0] != "nope" {
		t.Fatalf("BatchGetBudgets after the delete = %v, %v; want the tombstone of t1 at version 3", batch, err)
	}

	for i, r := range []string{"1.08", "1.08345"} {
		pr, err := c.PutRate(ctx, &financev1.PutRateRequest{Rate: &financev1.Rate{FromCurrency: "EUR", ToCurrency: "USD", Rate: r}})
		if err != nil || pr.GetRate().GetVersion() != int64(i+1) {
			t.Fatalf("PutRate %s = %v, %v", r, pr, err)
		}
	}
	rec.WantChanges(t, ev("rate", "EUR-USD", schema.OpCreate, 1), ev("rate", "EUR-USD", schema.OpUpdate, 2))
}

func TestListRatesFeedTheProjection(t *testing.T) {
	ctx := servicetest.Ctx(t)
	c, _ := serveBolt(t)
	for _, r := range []*financev1.Rate{
		{FromCurrency: "EUR", ToCurrency: "USD", Rate: "1.08345"},
		{FromCurrency: "JPY", ToCurrency: "USD", Rate: "0.0067"},
		{FromCurrency: "GBP", ToCurrency: "USD", Rate: "1.27"},
		{FromCurrency: "USD", ToCurrency: "EUR", Rate: "0.92"},
	} {
		if _, err := c.PutRate(ctx, &financev1.PutRateRequest{Rate: r}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := c.ListRates(ctx, &financev1.ListRatesRequest{ToCurrency: "USD"})
	if err != nil {
		t.Fatal(err)
	}
	var rates []cashflow.Rate
	for _, r := range list.GetRates() {
		cr, err := finance.Rate{From: r.GetFromCurrency(), To: r.GetToCurrency(), Rate: r.GetRate()}.Cashflow()
		if err != nil {
			t.Fatal(err)
		}
		rates = append(rates, cr)
	}
	if len(rates) != 3 || rates[0].From != "EUR" || rates[1].From != "GBP" || rates[2].From != "JPY" {
		t.Fatalf("ListRates(USD) = %v, want EUR, GBP, JPY", list.GetRates())
	}
	rs, err := cashflow.NewRates("USD", rates...)
	if err != nil {
		t.Fatal(err)
	}
	// 10000 cents × 1.08345 = 10834.5 cents, rounded half to even.
	got, err := rs.Convert(cashflow.Money{Amount: 100_00, Currency: "EUR"})
	if err != nil || got.Amount != 108_34 || got.Currency != "USD" {
		t.Fatalf("100.00 EUR at the listed rate = %v, %v; want 108.34 USD", got, err)
	}
}

func TestInvalidRequestsLeaveTheStoreUnchanged(t *testing.T) {
	ctx := servicetest.Ctx(t)
	c, rec := serveBolt(t)
	if _, err := c.PutBudget(ctx, &financev1.PutBudgetRequest{Budget: pbBudget("t1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRate(ctx, &financev1.PutRateRequest{Rate: &financev1.Rate{FromCurrency: "EUR", ToCurrency: "USD", Rate: "1.08"}}); err != nil {
		t.Fatal(err)
	}
	rec.Take()

	with := func(f func(b *financev1.Budget)) *financev1.PutBudgetRequest {
		b := pbBudget("t1")
		f(b)
		return &financev1.PutBudgetRequest{Budget: b}
	}
	for _, tc := range []struct {
		name  string
		req   *financev1.PutBudgetRequest
		field string
	}{
		{"no budget", &financev1.PutBudgetRequest{}, "budget"},
		{"no title id", with(func(b *financev1.Budget) { b.TitleId = "" }), "budget.title_id"},
		{"unknown currency", with(func(b *financev1.Budget) { b.LineItems[1].Currency = "XYZ" }), "budget.line_items[1].currency"},
		{"lower-case currency", with(func(b *financev1.Budget) { b.LineItems[0].Currency = "usd" }), "budget.line_items[0].currency"},
		{"negative amount", with(func(b *financev1.Budget) { b.LineItems[2].Amount = -1 }), "budget.line_items[2].amount"},
		{"bad profile", with(func(b *financev1.Budget) { b.LineItems[0].Profile = "during_production" }), "budget.line_items[0].profile"},
		{"profile without months", with(func(b *financev1.Budget) { b.LineItems[1].Profile = "before_release" }), "budget.line_items[1].profile"},
		{"profile with zero months", with(func(b *financev1.Budget) { b.LineItems[1].Profile = "before_release:0" }), "budget.line_items[1].profile"},
		{"no category", with(func(b *financev1.Budget) { b.LineItems[0].Category = " " }), "budget.line_items[0].category"},
		{"category twice", with(func(b *financev1.Budget) { b.LineItems[2].Category = "cast" }), "budget.line_items[2].category"},
		{"actual of no line item", with(func(b *financev1.Budget) { b.Actuals[0].Category = "catering" }), "budget.actuals[0].category"},
		{"actual not a month", with(func(b *financev1.Budget) { b.Actuals[1].Month = "2027-13" }), "budget.actuals[1].month"},
		{"negative actual", with(func(b *financev1.Budget) { b.Actuals[1].Amount = -5 }), "budget.actuals[1].amount"},
		{"actual in an unknown currency", with(func(b *financev1.Budget) { b.Actuals[0].Currency = "" }), "budget.actuals[0].currency"},
		{"expected version zero", &financev1.PutBudgetRequest{Budget: pbBudget("t1"), ExpectedVersion: proto.Int64(0)}, "expected_version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.PutBudget(ctx, tc.req)
			servicetest.WantField(t, err, tc.field)
		})
	}

	for _, tc := range []struct {
		name, from, to, rate, field string
	}{
		{"unknown from currency", "EURO", "USD", "1.08", "rate.from_currency"},
		{"unknown to currency", "EUR", "XXX", "1.08", "rate.to_currency"},
		{"same currency", "USD", "USD", "1", "rate.to_currency"},
		{"negative rate", "EUR", "USD", "-1.08", "rate.rate"},
		{"zero rate", "EUR", "USD", "0.000", "rate.rate"},
		{"exponent", "EUR", "USD", "1e3", "rate.rate"},
		{"empty rate", "EUR", "USD", "", "rate.rate"},
		{"two points", "EUR", "USD", "1.0.8", "rate.rate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.PutRate(ctx, &financev1.PutRateRequest{Rate: &financev1.Rate{FromCurrency: tc.from, ToCurrency: tc.to, Rate: tc.rate}})
			servicetest.WantField(t, err, tc.field)
		})
	}
	_, err := c.PutRate(ctx, &financev1.PutRateRequest{})
	servicetest.WantField(t, err, "rate")
	_, err = c.ListRates(ctx, &financev1.ListRatesRequest{ToCurrency: "dollars"})
	servicetest.WantField(t, err, "to_currency")

	_, err = c.PutBudget(ctx, &financev1.PutBudgetRequest{Budget: pbBudget("t1"), ExpectedVersion: proto.Int64(9)})
	servicetest.WantCode(t, err, codes.FailedPrecondition)
	_, err = c.DeleteBudget(ctx, &financev1.DeleteBudgetRequest{TitleId: "t1", ExpectedVersion: proto.Int64(9)})
	servicetest.WantCode(t, err, codes.FailedPrecondition)
	_, err = c.PutBudget(ctx, &financev1.PutBudgetRequest{Budget: pbBudget("t2"), ExpectedVersion: proto.Int64(1)})
	servicetest.WantCode(t, err, codes.NotFound)
	_, err = c.GetBudget(ctx, &financev1.GetBudgetRequest{TitleId: "t2"})
	servicetest.WantCode(t, err, codes.NotFound)
	_, err = c.DeleteBudget(ctx, &financev1.DeleteBudgetRequest{TitleId: "t2"})
	servicetest.WantCode(t, err, codes.NotFound)
	_, err = c.BatchGetBudgets(ctx, &financev1.BatchGetBudgetsRequest{Ids: make([]string, finance.MaxBatchGet+1)})
	servicetest.WantField(t, err, "ids")

	got, err := c.GetBudget(ctx, &financev1.GetBudgetRequest{TitleId: "t1"})
	if err != nil || got.GetBudget().GetVersion() != 1 || got.GetBudget().GetLineItems()[2].GetAmount() != 900_000_000 {
		t.Fatalf("after the refused requests GetBudget = %v, %v; want version 1 as put", got, err)
	}
	rates, err := c.ListRates(ctx, &financev1.ListRatesRequest{ToCurrency: "USD"})
	if err != nil || len(rates.GetRates()) != 1 || rates.GetRates()[0].GetRate() != "1.08" || rates.GetRates()[0].GetVersion() != 1 {
		t.Fatalf("after the refused requests ListRates = %v, %v; want EUR at 1.08, version 1", rates, err)
	}
	rec.WantChanges(t)
}

func TestPublishFailureKeepsTheWrite(t *testing.T) {
	ctx := servicetest.Ctx(t)
	c, rec := serveBolt(t)
	rec.FailWith(errors.New("broker down"))
	_, err := c.PutBudget(ctx, &financev1.PutBudgetRequest{Budget: pbBudget("t1")})
	servicetest.WantCode(t, err, codes.Unavailable)
	rec.FailWith(nil)
	got, err := c.GetBudget(ctx, &financev1.GetBudgetRequest{TitleId: "t1"})
	if err != nil || got.GetBudget().GetVersion() != 1 {
		t.Fatalf("GetBudget after a failed publish = %v, %v; want the write applied", got, err)
	}
}

func TestServerOnPostgresPublishesThroughTheOutbox(t *testing.T) {
	ctx := servicetest.Ctx(t)
	codec := newCodec(t)
	pool := pgPool(t)
	c := serve(t, finance.NewServer(nil, pgStore(t, pool, codec)))
	if _, err := c.PutBudget(ctx, &financev1.PutBudgetRequest{Budget: pbBudget("t1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PutRate(ctx, &financev1.PutRateRequest{Rate: &financev1.Rate{FromCurrency: "GBP", ToCurrency: "USD", Rate: "1.27"}}); err != nil {
		t.Fatal(err)
	}
	bad := pbBudget("t2")
	bad.LineItems[0].Amount = -1
	_, err := c.PutBudget(ctx, &financev1.PutBudgetRequest{Budget: bad})
	servicetest.WantField(t, err, "budget.line_items[0].amount")
	wantEvents(t, outboxEvents(t, pool, codec),
		event{"budget", "t1", schema.OpCreate, 1},
		event{"rate", "GBP-USD", schema.OpCreate, 1})
	if n := budgetRows(t, pool, "t2"); n != 0 {
		t.Fatalf("%d rows of the refused budget", n)
	}
}

func TestServeHealth(t *testing.T) {
	ctx := servicetest.Ctx(t)
	srv := finance.NewServer(&servicetest.Recorder{}, openBolt(t, filepath.Join(t.TempDir(), "finance.db")))
	conn := servicetest.Serve(t, func(ctx context.Context, lis net.Listener) error { return finance.Serve(ctx, lis, srv) })
	h, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: "slate.finance.v1.Finance"})
	if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v", h, err)
	}
	err = servicetest.InvokeRaw(ctx, conn, "/slate.finance.v1.Finance/PutRate", []byte{0x0a, 0x05, 0x0a})
	servicetest.WantCode(t, err, codes.InvalidArgument)
}

func TestNewServerNeedsAPublisherForABoltStore(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("NewServer(nil, bolt store) did not panic")
		}
	}()
	finance.NewServer(nil, openBolt(t, filepath.Join(t.TempDir(), "finance.db")))
}
