package stack_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/slatehq/slate/consumer/sink/bleve"
	"github.com/slatehq/slate/internal/stack"
	"github.com/slatehq/slate/internal/testenv"
	financev1 "github.com/slatehq/slate/proto/finance/v1"
	schedulesv1 "github.com/slatehq/slate/proto/schedules/v1"
	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
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

// startStudio starts a stack whose services publish through a Disorder:
// every change event twice, retryAfter apart, as a producer's retry sends
// it.
func startStudio(t *testing.T, retryAfter time.Duration) *stack.Stack {
	t.Helper()
	s, err := stack.Start(context.Background(), stack.Config{DataDir: t.TempDir(),
		Studio: stack.Studio{Disorder: true, DuplicateAfter: retryAfter}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("stop: %v", err)
		}
	})
	return s
}

func equalMonths(a, b map[string]int64) bool {
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

// releaseOf is the US release date of a title view's schedule, "" if it
// has none.
func releaseOf(doc map[string]any) string {
	scheds, _ := doc["schedule"].([]any)
	if len(scheds) != 1 {
		return ""
	}
	rel, _ := scheds[0].(map[string]any)["releases"].([]any)
	if len(rel) != 1 {
		return ""
	}
	d, _ := rel[0].(map[string]any)["date"].(string)
	return d
}

// greenlight creates a title released on release with its schedule and a
// budget: 3,000,000.01 USD of prints and advertising over the three
// months before release (1,000,000.01 in the first, 1,000,000.00 in the
// others) and 900,000.00 GBP of crew at 1.2710 over the three production
// months. It returns the title and the versions of the three records.
func greenlight(t *testing.T, s *stack.Stack, name, release string) (id string, title, sched, budget int64) {
	t.Helper()
	ctx := context.Background()
	created, err := s.Titles.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: &titlesv1.Title{
		Name: name, Kind: "FEATURE", Status: "PRODUCTION", ReleaseDate: release}})
	if err != nil {
		t.Fatal(err)
	}
	id = created.GetTitle().GetId()
	put, err := s.Schedules.PutSchedule(ctx, schedule(id, release, 0))
	if err != nil {
		t.Fatal(err)
	}
	b, err := s.Finance.PutBudget(ctx, &financev1.PutBudgetRequest{Budget: &financev1.Budget{TitleId: id, LineItems: []*financev1.LineItem{
		{Category: "p&a", Amount: 3_000_000_01, Currency: "USD", Profile: "before_release:3"},
		{Category: "crew", Amount: 900_000_00, Currency: "GBP", Profile: "production"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	return id, created.GetTitle().GetVersion(), put.GetSchedule().GetVersion(), b.GetBudget().GetVersion()
}

var (
	july = map[string]int64{"2026-09": 381_300_00, "2026-10": 381_300_00, "2026-11": 381_300_00,
		"2027-04": 1_000_000_01, "2027-05": 1_000_000_00, "2027-06": 1_000_000_00}
	june = map[string]int64{"2026-09": 381_300_00, "2026-10": 381_300_00, "2026-11": 381_300_00,
		"2027-03": 1_000_000_01, "2027-04": 1_000_000_00, "2027-05": 1_000_000_00}
)

// A release date moved in the schedules service reaches both views
// within the freshness SLA: the cashflow's prints-and-advertising months
// move with it by exactly the amounts of the largest-remainder rule, and
// the title view shows the new date at a higher version. The services
// publish every change event twice, and the views' trackers count no
// event later than the SLA.
func TestStudioViewsFollowAMovedRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system")
	}
	s := startStudio(t, 200*time.Millisecond)
	ctx := context.Background()
	sla := stack.DefaultFreshnessSLA
	id, _, _, _ := greenlight(t, s, "Slate", "2027-07-16")
	testenv.WaitFor(t, 30*time.Second, "the July cash flow", func() bool {
		doc, _ := view(t, s, "cashflow-sink", "cashflow", id)
		return doc != nil && equalMonths(months(doc), july)
	})
	_, titleBefore := view(t, s, "title-sink", "title", id)

	moved := time.Now()
	if _, err := s.Schedules.PutSchedule(ctx, schedule(id, "2027-06-10", 1)); err != nil {
		t.Fatal(err)
	}
	var cashflowAfter, titleAfter time.Duration
	testenv.WaitFor(t, 30*time.Second, "both views at the June release", func() bool {
		if doc, _ := view(t, s, "cashflow-sink", "cashflow", id); cashflowAfter == 0 && doc != nil && equalMonths(months(doc), june) {
			cashflowAfter = time.Since(moved)
		}
		if doc, v := view(t, s, "title-sink", "title", id); titleAfter == 0 && v > titleBefore && releaseOf(doc) == "2027-06-10" {
			titleAfter = time.Since(moved)
		}
		return cashflowAfter > 0 && titleAfter > 0
	})
	t.Logf("the move reached the cashflow view in %s, the title view in %s (SLA %s)",
		cashflowAfter.Round(time.Millisecond), titleAfter.Round(time.Millisecond), sla)
	if cashflowAfter > sla || titleAfter > sla {
		t.Errorf("the views followed the move in %s (cashflow) and %s (title), not within the freshness SLA of %s", cashflowAfter, titleAfter, sla)
	}
	for name, tr := range map[string]*stack.Tracker{"title": s.Tracker, "cashflow": s.Cashflows} {
		f := tr.Freshness()
		if f.Events == 0 || f.SLA != sla || f.Breaches != 0 || f.Max > sla {
			t.Errorf("%s view freshness %+v, want events within the SLA of %s", name, f, sla)
		}
		if got := s.Counter("slate_view_freshness_breaches_total", map[string]string{"view": name}); got != 0 {
			t.Errorf("slate_view_freshness_breaches_total{view=%q} = %v, want 0", name, got)
		}
	}
}

// July -> June -> July on a title's release date through the schedules
// service, whose publisher sends the move to June last (a race lost to
// the move back) and every event twice (a producer's retry): on the bus
// the schedule's events are 1, 1, 3, 3, 2, 2. Both views end on July at
// the highest version, and the sinks' dedupe drops the repeats.
func TestStudioViewsEndOnTheLastMoveWhateverTheOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system")
	}
	// A retry a second later: the enrichers materialize the first copy
	// before the second arrives, rather than coalescing the two.
	s := startStudio(t, time.Second)
	ctx := context.Background()
	id, titleV, _, budgetV := greenlight(t, s, "Reorder", "2027-07-16")
	testenv.WaitFor(t, 30*time.Second, "the July cash flow", func() bool {
		doc, _ := view(t, s, "cashflow-sink", "cashflow", id)
		return doc != nil && equalMonths(months(doc), july)
	})
	dropped := map[string]float64{}
	for _, group := range []string{"title-sink", "cashflow-sink"} {
		dropped[group] = s.Counter("slate_consumer_duplicates_total", map[string]string{"group": group})
	}

	s.Disorder.HoldNext("schedule", id)
	if _, err := s.Schedules.PutSchedule(ctx, schedule(id, "2027-06-10", 1)); err != nil {
		t.Fatal(err)
	}
	last, err := s.Schedules.PutSchedule(ctx, schedule(id, "2027-07-16", 2))
	if err != nil {
		t.Fatal(err)
	}
	if v := last.GetSchedule().GetVersion(); v != 3 {
		t.Fatalf("schedule at version %d after two moves, want 3", v)
	}
	// On the bus: each event twice (the same envelope), the move to June
	// last.
	var seqs []int64
	var envIDs []string
	for _, r := range testenv.ReadTopic(t, s.Brokers, s.Registry, "studio.schedule.changes") {
		if r.Key == id {
			seqs, envIDs = append(seqs, r.Env.Sequence), append(envIDs, r.Env.ID)
		}
	}
	if !slices.Equal(seqs, []int64{1, 1, 3, 3, 2, 2}) || envIDs[2] != envIDs[3] || envIDs[4] != envIDs[5] || envIDs[3] == envIDs[4] {
		t.Fatalf("the schedule's change events are %v (ids %v), want 1, 1, 3, 3, 2, 2, each pair one envelope", seqs, envIDs)
	}
	// The views' versions (enricher.ViewVersion): the primary's version
	// times 2^32 plus the joined records' versions.
	wantTitle, wantCashflow := titleV<<32+3+budgetV, budgetV<<32+3
	// Every event is on the bus when the last put returns. In this order:
	// the enrichers committed past the schedule's events (after
	// publishing what they materialized), the sinks past the views'
	// records, the sinks dropped duplicates, and the views are on July.
	testenv.WaitFor(t, 30*time.Second, "every change event consumed, and the duplicates dropped", func() bool {
		if !caughtUp(t, s, "studio.schedule.changes", "title-enricher", "cashflow-enricher") ||
			!caughtUp(t, s, "studio.title.materialized", "title-sink") || !caughtUp(t, s, "studio.cashflow.materialized", "cashflow-sink") {
			return false
		}
		for group, n := range dropped {
			if s.Counter("slate_consumer_duplicates_total", map[string]string{"group": group}) <= n {
				return false
			}
		}
		doc, v := view(t, s, "cashflow-sink", "cashflow", id)
		title, tv := view(t, s, "title-sink", "title", id)
		return v == wantCashflow && equalMonths(months(doc), july) && tv == wantTitle && releaseOf(title) == "2027-07-16"
	})
	// The move to June, consumed last, changed nothing: still July.
	doc, v := view(t, s, "cashflow-sink", "cashflow", id)
	if v != wantCashflow || !equalMonths(months(doc), july) || doc["schedule_version"] != float64(3) {
		t.Errorf("cashflow view at version %d (want %d), schedule version %v, months %v; want July's", v, wantCashflow, doc["schedule_version"], months(doc))
	}
	title, tv := view(t, s, "title-sink", "title", id)
	if tv != wantTitle || releaseOf(title) != "2027-07-16" {
		t.Errorf("title view at version %d (want %d), release %q; want July", tv, wantTitle, releaseOf(title))
	}
}

// caughtUp reports whether every group committed the end of every
// partition of topic.
func caughtUp(t *testing.T, s *stack.Stack, topic string, groups ...string) bool {
	t.Helper()
	ad, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": s.Brokers})
	if err != nil {
		t.Fatal(err)
	}
	defer ad.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	md, err := ad.GetMetadata(&topic, false, 10_000)
	if err != nil {
		t.Fatal(err)
	}
	specs := map[kafka.TopicPartition]kafka.OffsetSpec{}
	var parts []kafka.TopicPartition
	for _, p := range md.Topics[topic].Partitions {
		tp := kafka.TopicPartition{Topic: &topic, Partition: p.ID}
		specs[tp] = kafka.LatestOffsetSpec
		parts = append(parts, tp)
	}
	ends, err := ad.ListOffsets(ctx, specs)
	if err != nil {
		t.Fatal(err)
	}
	end := map[int32]kafka.Offset{}
	for tp, r := range ends.ResultInfos {
		end[tp.Partition] = r.Offset
	}
	for _, g := range groups {
		res, err := ad.ListConsumerGroupOffsets(ctx, []kafka.ConsumerGroupTopicPartitions{{Group: g, Partitions: parts}})
		if err != nil {
			t.Fatal(err)
		}
		for _, gp := range res.ConsumerGroupsTopicPartitions {
			for _, p := range gp.Partitions {
				if e := end[p.Partition]; e > 0 && p.Offset < e {
					return false
				}
			}
		}
	}
	return true
}

// A schedule deleted at the source re-materializes both views at a
// higher version: the title view without the schedule, the cashflow
// view unscheduled (the budget's total, no months). The schedules service
// answers the delete as a tombstone at the delete's version, which the
// views' versions add up like a live schedule's.
func TestStudioViewsFollowADeletedSchedule(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system")
	}
	s := startStudio(t, 10*time.Millisecond)
	ctx := context.Background()
	id, titleV, _, budgetV := greenlight(t, s, "Shelved", "2027-07-16")
	testenv.WaitFor(t, 30*time.Second, "the July cash flow", func() bool {
		doc, _ := view(t, s, "cashflow-sink", "cashflow", id)
		return doc != nil && equalMonths(months(doc), july)
	})
	_, titleBefore := view(t, s, "title-sink", "title", id)
	_, cashflowBefore := view(t, s, "cashflow-sink", "cashflow", id)
	del, err := s.Schedules.DeleteSchedule(ctx, &schedulesv1.DeleteScheduleRequest{TitleId: id})
	if err != nil {
		t.Fatal(err)
	}
	if del.GetVersion() != 2 {
		t.Fatalf("delete at version %d, want 2", del.GetVersion())
	}
	wantTitle, wantCashflow := titleV<<32+2+budgetV, budgetV<<32+2
	testenv.WaitFor(t, 30*time.Second, "both views without the schedule", func() bool {
		title, tv := view(t, s, "title-sink", "title", id)
		doc, cv := view(t, s, "cashflow-sink", "cashflow", id)
		scheds, _ := title["schedule"].([]any)
		return tv == wantTitle && len(scheds) == 0 && cv == wantCashflow && doc["scheduled"] == false && len(months(doc)) == 0
	})
	if wantTitle <= titleBefore || wantCashflow <= cashflowBefore {
		t.Errorf("views at %d and %d after the delete, not above %d and %d", wantTitle, wantCashflow, titleBefore, cashflowBefore)
	}
	doc, _ := view(t, s, "cashflow-sink", "cashflow", id)
	if total, _ := doc["total"].(float64); total != 3_000_000_01+1_143_900_00 {
		t.Errorf("unscheduled cash flow total %v, want the budget's 4,143,900.01 USD", doc["total"])
	}
}

// A budget deleted at the source re-materializes the title view without
// it at a higher version, and deletes the cashflow view (whose primary it
// is) at the delete's version.
func TestStudioViewsFollowADeletedBudget(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system")
	}
	s := startStudio(t, 10*time.Millisecond)
	ctx := context.Background()
	id, titleV, schedV, _ := greenlight(t, s, "Unfunded", "2027-07-16")
	testenv.WaitFor(t, 30*time.Second, "the July cash flow", func() bool {
		doc, _ := view(t, s, "cashflow-sink", "cashflow", id)
		return doc != nil && equalMonths(months(doc), july)
	})
	_, titleBefore := view(t, s, "title-sink", "title", id)
	del, err := s.Finance.DeleteBudget(ctx, &financev1.DeleteBudgetRequest{TitleId: id})
	if err != nil {
		t.Fatal(err)
	}
	wantTitle := titleV<<32 + schedV + del.GetVersion()
	testenv.WaitFor(t, 30*time.Second, "the title view without the budget, and no cash flow", func() bool {
		title, tv := view(t, s, "title-sink", "title", id)
		budgets, _ := title["budget"].([]any)
		cashflow, _ := view(t, s, "cashflow-sink", "cashflow", id)
		return tv == wantTitle && len(budgets) == 0 && releaseOf(title) == "2027-07-16" && cashflow == nil
	})
	if wantTitle <= titleBefore {
		t.Errorf("title view at %d after the delete, not above %d", wantTitle, titleBefore)
	}
}
