package stack_test

import (
	"context"
	"testing"
	"time"

	"github.com/slatehq/slate/consumer/sink/bleve"
	"github.com/slatehq/slate/internal/stack"
	"github.com/slatehq/slate/internal/testenv"
	financev1 "github.com/slatehq/slate/proto/finance/v1"
	schedulesv1 "github.com/slatehq/slate/proto/schedules/v1"
	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
	"github.com/slatehq/slate/schema"
)

// view reads a view's document from the bleve sink of a sink pipeline.
func view(t *testing.T, s *stack.Stack, pipeline, entity, id string) (map[string]any, int64) {
	t.Helper()
	sk, ok := s.Runner.Sink(pipeline, "bleve")
	if !ok {
		t.Fatalf("pipeline %s has no bleve sink", pipeline)
	}
	doc, v, found, err := sk.(*bleve.Sink).Get(context.Background(), entity, id)
	if err != nil {
		t.Fatal(err)
	}
	if !found {
		return nil, 0
	}
	return doc, v
}

// months returns the months of a cashflow document, month -> amount.
func months(doc map[string]any) map[string]int64 {
	out := map[string]int64{}
	ms, _ := doc["months"].([]any)
	for _, m := range ms {
		mm, _ := m.(map[string]any)
		month, _ := mm["month"].(string)
		switch a := mm["amount"].(type) {
		case float64:
			out[month] = int64(a)
		case int64:
			out[month] = a
		}
	}
	return out
}

func schedule(id, release string, version int64) *schedulesv1.PutScheduleRequest {
	req := &schedulesv1.PutScheduleRequest{Schedule: &schedulesv1.Schedule{TitleId: id,
		ProductionStart: "2026-09-01", ProductionEnd: "2026-11-30",
		Releases: []*schedulesv1.Release{{Territory: "US", Date: release}}}}
	if version > 0 {
		req.ExpectedVersion = &version
	}
	return req
}

// A release date moved in the schedules service reaches both views: the
// cashflow's prints-and-advertising months move with it by exactly the
// amounts of the largest-remainder rule, and the title view shows the new
// date at a higher version. Then July -> June -> July with the change
// events replayed out of order and twice: the views end on July at the
// highest version, and the sinks' dedupe drops the repeats.
func TestStudioViewsFollowAMovedRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system")
	}
	s := startStack(t, false)
	ctx := context.Background()
	created, err := s.Titles.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: &titlesv1.Title{
		Name: "Slate", Kind: "FEATURE", Status: "PRODUCTION", ReleaseDate: "2027-07-16"}})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetTitle().GetId()
	if _, err := s.Schedules.PutSchedule(ctx, schedule(id, "2027-07-16", 0)); err != nil {
		t.Fatal(err)
	}
	// 3,000,000.01 USD over the three months before release: 1,000,000.01
	// in the first, 1,000,000.00 in the others; 900,000.00 GBP of crew at
	// 1.2710 over the three production months.
	if _, err := s.Finance.PutBudget(ctx, &financev1.PutBudgetRequest{Budget: &financev1.Budget{TitleId: id, LineItems: []*financev1.LineItem{
		{Category: "p&a", Amount: 3_000_000_01, Currency: "USD", Profile: "before_release:3"},
		{Category: "crew", Amount: 900_000_00, Currency: "GBP", Profile: "production"},
	}}}); err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{"2026-09": 381_300_00, "2026-10": 381_300_00, "2026-11": 381_300_00,
		"2027-04": 1_000_000_01, "2027-05": 1_000_000_00, "2027-06": 1_000_000_00}
	equal := func(a, b map[string]int64) bool {
		if len(a) != len(b) {
			return false
		}
		for k, v := range a {
			if b[k] != v {
				return false
			}
		}
		return true
	}
	var doc map[string]any
	testenv.WaitFor(t, 30*time.Second, "the July cash flow", func() bool {
		doc, _ = view(t, s, "cashflow-sink", "cashflow", id)
		return doc != nil && equal(months(doc), want)
	})
	_, titleBefore := view(t, s, "title-sink", "title", id)

	moved := time.Now()
	if _, err := s.Schedules.PutSchedule(ctx, schedule(id, "2027-06-10", 1)); err != nil {
		t.Fatal(err)
	}
	june := map[string]int64{"2026-09": 381_300_00, "2026-10": 381_300_00, "2026-11": 381_300_00,
		"2027-03": 1_000_000_01, "2027-04": 1_000_000_00, "2027-05": 1_000_000_00}
	testenv.WaitFor(t, 30*time.Second, "the June cash flow", func() bool {
		doc, _ = view(t, s, "cashflow-sink", "cashflow", id)
		return doc != nil && equal(months(doc), june)
	})
	t.Logf("the cash flow followed the move in %s", time.Since(moved).Round(time.Millisecond))
	testenv.WaitFor(t, 30*time.Second, "the title view at the June release", func() bool {
		doc, v := view(t, s, "title-sink", "title", id)
		scheds, _ := doc["schedule"].([]any)
		if doc == nil || v <= titleBefore || len(scheds) != 1 {
			return false
		}
		rel, _ := scheds[0].(map[string]any)["releases"].([]any)
		return len(rel) == 1 && rel[0].(map[string]any)["date"] == "2027-06-10"
	})

	// Back to July; then the schedule's change events again, out of order
	// and each twice, as a producer's retries and a race would publish them.
	if _, err := s.Schedules.PutSchedule(ctx, schedule(id, "2027-07-16", 2)); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the July cash flow again", func() bool {
		doc, _ = view(t, s, "cashflow-sink", "cashflow", id)
		return doc != nil && equal(months(doc), want) && doc["schedule_version"] == float64(3)
	})
	_, cashflowV := view(t, s, "cashflow-sink", "cashflow", id)
	dropped := s.Counter("slate_consumer_duplicates_total", map[string]string{"group": "cashflow-sink"})
	for _, seq := range []int64{3, 1, 2, 1, 3, 2} {
		if err := s.Producer.PublishChange(ctx, "schedule", id, schema.OpUpdate, seq); err != nil {
			t.Fatal(err)
		}
	}
	testenv.WaitFor(t, 30*time.Second, "the replayed events' duplicates dropped", func() bool {
		return s.Counter("slate_consumer_duplicates_total", map[string]string{"group": "cashflow-sink"}) > dropped
	})
	doc, v := view(t, s, "cashflow-sink", "cashflow", id)
	if !equal(months(doc), want) || v != cashflowV {
		t.Errorf("after the replay: version %d (want %d), months %v (want July's)", v, cashflowV, months(doc))
	}
}
