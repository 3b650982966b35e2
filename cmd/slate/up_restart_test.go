package main

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/slatehq/slate/internal/testenv"
	financev1 "github.com/slatehq/slate/proto/finance/v1"
	schedulesv1 "github.com/slatehq/slate/proto/schedules/v1"
	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
	"github.com/slatehq/slate/schema"
)

// upProc is a `slate up` in a child process and clients of its services.
type upProc struct {
	*slateProc
	titles    titlesv1.TitlesClient
	schedules schedulesv1.SchedulesClient
	finance   financev1.FinanceClient
	brokers   string // the embedded broker
	registry  string // the schema registry's URL
}

// brokerListening matches the log line naming the embedded broker's
// address.
var brokerListening = regexp.MustCompile(`msg="embedded kafka broker listening" addr=(\S+)`)

// listening matches the log lines in which slate up names the addresses of
// its servers: `msg="schedules service listening" addr=127.0.0.1:40123`.
var listening = regexp.MustCompile(`msg="(\w+)(?: service)? listening" addr=(\S+)`)

// startUp runs `slate up` on dataDir with free ports and a slow workload,
// waits until it says it is up, and connects to its services at the
// addresses its log names.
func startUp(t *testing.T, name, dataDir string, extra ...string) *upProc {
	t.Helper()
	p := startProc(t, name, append([]string{"up", "--data-dir", dataDir, "--rate", "2", "--log-level", "info",
		"--kafka-port", "0", "--registry-port", "0", "--titles-port", "0", "--schedules-port", "0",
		"--finance-port", "0", "--http-port", "0"}, extra...)...)
	p.waitOutput(t, `msg="slate is up"`, 60*time.Second)
	addrs := map[string]string{}
	for _, m := range listening.FindAllStringSubmatch(p.out.String(), -1) {
		addrs[m[1]] = m[2]
	}
	if m := brokerListening.FindStringSubmatch(p.out.String()); m != nil {
		addrs["kafka"] = m[1]
	}
	conn := func(service string) *grpc.ClientConn {
		addr, ok := addrs[service]
		if !ok {
			t.Fatalf("%s named no address of the %s service:\n%s", name, service, p.out.String())
		}
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cc.Close() })
		return cc
	}
	p.httpAddr = addrs["metrics"]
	return &upProc{slateProc: p, brokers: addrs["kafka"], registry: "http://" + addrs["registry"], titles: titlesv1.NewTitlesClient(conn("titles")),
		schedules: schedulesv1.NewSchedulesClient(conn("schedules")), finance: financev1.NewFinanceClient(conn("finance"))}
}

// waitView waits until the title view's Hive table under dataDir holds a
// row of title id whose data contains every one of want.
func waitView(t *testing.T, dataDir, id string, want ...string) {
	t.Helper()
	waitTable(t, dataDir, "title", id, want...)
}

// waitTable waits until the Hive table of view (title, cashflow) has a row
// of id whose data holds every string of want.
func waitTable(t *testing.T, dataDir, view, id string, want ...string) {
	t.Helper()
	dir := filepath.Join(dataDir, "hive", view+"_materialized")
	testenv.WaitFor(t, 40*time.Second, "the "+view+" view to show "+id+" with "+strings.Join(want, ", "), func() bool {
		for _, r := range readHive(t, dir) {
			if r.Subject != id || r.Data == nil {
				continue
			}
			found := true
			for _, w := range want {
				found = found && strings.Contains(*r.Data, w)
			}
			if found {
				return true
			}
		}
		return false
	})
}

// A title, its schedule and its budget written to `slate up` are served
// again, at the same versions, by a `slate up` started on the same data
// directory after the first was killed (SIGKILL, while its workload
// writes); a write after the restart reaches the title view; and every
// view converges to its sources for every entity the services hold, the
// workload's included.
func TestUpKeepsStudioDataAcrossRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs slate up twice")
	}
	dir := t.TempDir()
	const id = "restart-title"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	up := startUp(t, "slate up", dir, "--rate", "20")
	title := &titlesv1.Title{Id: id, Name: "Before the restart", Kind: "FEATURE", Status: "DEVELOPMENT", ReleaseDate: "2027-06-04"}
	created, err := up.titles.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: title})
	if err != nil {
		t.Fatal(err)
	}
	title.Status = "PRODUCTION"
	updated, err := up.titles.UpdateTitle(ctx, &titlesv1.UpdateTitleRequest{Title: title, ExpectedVersion: &created.Title.Version})
	if err != nil {
		t.Fatal(err)
	}
	sched, err := up.schedules.PutSchedule(ctx, &schedulesv1.PutScheduleRequest{Schedule: &schedulesv1.Schedule{
		TitleId: id, ProductionStart: "2026-03-02", ProductionEnd: "2026-09-30",
		Releases: []*schedulesv1.Release{{Territory: "US", Date: "2027-06-04"}, {Territory: "GB", Date: "2027-06-18"}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	budget, err := up.finance.PutBudget(ctx, &financev1.PutBudgetRequest{Budget: &financev1.Budget{TitleId: id, LineItems: []*financev1.LineItem{
		{Category: "crew", Amount: 2_500_000_00, Currency: "USD", Profile: "production"},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	waitView(t, dir, id, "Before the restart", "PRODUCTION", "2027-06-18", "crew")
	waitTable(t, dir, "cashflow", id, `"total":250000000`, `"schedule_version":1`)
	// Killed while its workload writes, once that has made a few titles.
	reg, err := schema.NewRegistryClient(up.registry)
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the workload to write 20 titles", func() bool {
		return len(keys(testenv.ReadTopic(t, up.brokers, reg, "studio.title.changes"))) >= 20
	})
	up.kill(t)

	// A quiet workload after the restart (its flagship, then about one
	// write a minute), so that the views can be compared with the
	// services at rest.
	up = startUp(t, "slate up after the kill", dir, "--rate", "0.02")
	gotTitle, err := up.titles.GetTitle(ctx, &titlesv1.GetTitleRequest{Id: id})
	if err != nil {
		t.Fatalf("GetTitle after the restart: %v", err)
	}
	if g, w := gotTitle.GetTitle(), updated.GetTitle(); g.GetVersion() != 2 || g.GetVersion() != w.GetVersion() ||
		g.GetName() != w.GetName() || g.GetStatus() != "PRODUCTION" || !g.GetUpdatedAt().AsTime().Equal(w.GetUpdatedAt().AsTime()) {
		t.Errorf("title after the restart %v, want %v", g, w)
	}
	gotSched, err := up.schedules.GetSchedule(ctx, &schedulesv1.GetScheduleRequest{TitleId: id})
	if err != nil {
		t.Fatalf("GetSchedule after the restart: %v", err)
	}
	if g, w := gotSched.GetSchedule(), sched.GetSchedule(); g.GetVersion() != w.GetVersion() || len(g.GetReleases()) != 2 {
		t.Errorf("schedule after the restart %v, want %v", g, w)
	}
	gotBudget, err := up.finance.GetBudget(ctx, &financev1.GetBudgetRequest{TitleId: id})
	if err != nil {
		t.Fatalf("GetBudget after the restart: %v", err)
	}
	if g, w := gotBudget.GetBudget(), budget.GetBudget(); g.GetVersion() != w.GetVersion() || len(g.GetLineItems()) != 1 {
		t.Errorf("budget after the restart %v, want %v", g, w)
	}

	title.Name = "After the restart"
	again, err := up.titles.UpdateTitle(ctx, &titlesv1.UpdateTitleRequest{Title: title, ExpectedVersion: &updated.Title.Version})
	if err != nil {
		t.Fatalf("UpdateTitle after the restart: %v", err)
	}
	if again.GetTitle().GetVersion() != 3 {
		t.Errorf("update after the restart at version %d, want 3", again.GetTitle().GetVersion())
	}
	waitView(t, dir, id, "After the restart", "crew")

	// The cashflow view converges too: the production moves a month, and
	// the cash flow follows it.
	moved := gotSched.GetSchedule()
	moved.ProductionStart, moved.ProductionEnd = "2026-04-01", "2026-10-30"
	if _, err := up.schedules.PutSchedule(ctx, &schedulesv1.PutScheduleRequest{Schedule: moved, ExpectedVersion: &sched.Schedule.Version}); err != nil {
		t.Fatalf("PutSchedule after the restart: %v", err)
	}
	waitTable(t, dir, "cashflow", id, `"total":250000000`, `"schedule_version":2`, `"production_start":"2026-04-01"`)

	converged(t, up, dir)
}

// converged waits until, for every title, schedule and budget the
// services of up hold (every id of their change topics), the title view
// and the cashflow view in the Hive tables under dataDir end on the
// services' current records: versions and content.
func converged(t *testing.T, up *upProc, dataDir string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	reg, err := schema.NewRegistryClient(up.registry)
	if err != nil {
		t.Fatal(err)
	}
	idSet := map[string]bool{}
	last := map[string]map[string]testenv.Record{} // entity -> id -> its change event of the highest sequence
	for _, entity := range []string{"title", "schedule", "budget"} {
		records := testenv.ReadTopic(t, up.brokers, reg, "studio."+entity+".changes")
		maps.Copy(idSet, keys(records))
		last[entity] = map[string]testenv.Record{}
		for _, r := range records {
			if cur, ok := last[entity][r.Key]; !ok || r.Env.Sequence > cur.Env.Sequence {
				last[entity][r.Key] = r
			}
		}
	}
	ids := slices.Sorted(maps.Keys(idSet))
	if len(ids) < 20 {
		t.Fatalf("the change topics name %d ids, want the workload's titles too", len(ids))
	}
	// Every write whose event is on the bus (published after the write
	// committed, and so acknowledged to the workload) survived the kill:
	// the services hold each entity at least at its last event's version.
	ts, err := up.titles.BatchGetTitles(ctx, &titlesv1.BatchGetTitlesRequest{Ids: ids})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := up.schedules.BatchGetSchedules(ctx, &schedulesv1.BatchGetSchedulesRequest{Ids: ids})
	if err != nil {
		t.Fatal(err)
	}
	bs, err := up.finance.BatchGetBudgets(ctx, &financev1.BatchGetBudgetsRequest{Ids: ids})
	if err != nil {
		t.Fatal(err)
	}
	held := map[string]map[string]int64{"title": {}, "schedule": {}, "budget": {}}
	for _, x := range ts.GetTitles() {
		held["title"][x.GetId()] = x.GetVersion()
	}
	for _, x := range ss.GetSchedules() {
		held["schedule"][x.GetTitleId()] = x.GetVersion()
	}
	for _, x := range bs.GetBudgets() {
		held["budget"][x.GetTitleId()] = x.GetVersion()
	}
	for entity, events := range last {
		for id, r := range events {
			v, ok := held[entity][id]
			// The titles service answers a deleted title as missing.
			if !ok && !(entity == "title" && r.Env.Type == schema.OpDelete) || ok && v < r.Env.Sequence {
				t.Errorf("%s %s: its last change event is %s at %d, the service holds version %d (found: %v)", entity, id, r.Env.Type, r.Env.Sequence, v, ok)
			}
		}
	}
	var why string
	testenv.WaitFor(t, 60*time.Second, "every view to converge to its sources", func() bool {
		why = mismatch(ctx, t, up, dataDir, ids)
		return why == ""
	})
	if why != "" {
		t.Fatal(why)
	}
	t.Logf("the title and cashflow views of %d ids match the services", len(ids))
}

// keys returns the keys of records.
func keys(records []testenv.Record) map[string]bool {
	out := map[string]bool{}
	for _, r := range records {
		out[r.Key] = true
	}
	return out
}

// latest returns the row of the highest sequence of each subject.
func latest(rows []hiveRow) map[string]hiveRow {
	out := map[string]hiveRow{}
	for _, r := range rows {
		if cur, ok := out[r.Subject]; !ok || r.Sequence >= cur.Sequence {
			out[r.Subject] = r
		}
	}
	return out
}

// mismatch reads the services' current records of ids and the views, and
// says the first difference ("" if none).
func mismatch(ctx context.Context, t *testing.T, up *upProc, dataDir string, ids []string) string {
	ts, err := up.titles.BatchGetTitles(ctx, &titlesv1.BatchGetTitlesRequest{Ids: ids})
	if err != nil {
		t.Fatal(err)
	}
	ss, err := up.schedules.BatchGetSchedules(ctx, &schedulesv1.BatchGetSchedulesRequest{Ids: ids})
	if err != nil {
		t.Fatal(err)
	}
	bs, err := up.finance.BatchGetBudgets(ctx, &financev1.BatchGetBudgetsRequest{Ids: ids})
	if err != nil {
		t.Fatal(err)
	}
	titles := map[string]*titlesv1.Title{}
	for _, x := range ts.GetTitles() {
		titles[x.GetId()] = x
	}
	// The views' versions add up the joined records' versions, a deleted
	// schedule's (its tombstone's) included; their content holds only the
	// live schedules.
	scheds, schedVersion := map[string]*schedulesv1.Schedule{}, map[string]int64{}
	for _, x := range ss.GetSchedules() {
		schedVersion[x.GetTitleId()] = x.GetVersion()
		if !x.GetDeleted() {
			scheds[x.GetTitleId()] = x
		}
	}
	budgets, budgetVersion := map[string]*financev1.Budget{}, map[string]int64{}
	for _, x := range bs.GetBudgets() {
		budgetVersion[x.GetTitleId()] = x.GetVersion()
		if !x.GetDeleted() {
			budgets[x.GetTitleId()] = x
		}
	}
	titleView := latest(readHive(t, filepath.Join(dataDir, "hive", "title_materialized")))
	cashflowView := latest(readHive(t, filepath.Join(dataDir, "hive", "cashflow_materialized")))
	for _, id := range ids {
		tv, ok := titleView[id]
		title := titles[id]
		switch {
		case title == nil:
			// Deleted, or only ever a schedule or budget: the title
			// view, if any, is deleted.
			if ok && tv.Type != "DELETE" {
				return fmt.Sprintf("title %s: deleted at the source, the title view ends on %s at %d", id, tv.Type, tv.Sequence)
			}
		default:
			want := title.GetVersion()<<32 + schedVersion[id] + budgetVersion[id]
			if !ok || tv.Sequence != want || tv.Type == "DELETE" || tv.Data == nil {
				return fmt.Sprintf("title %s: the title view ends on %+v, want version %d", id, tv, want)
			}
			var doc struct {
				Name, Status string
				ReleaseDate  string `json:"release_date"`
				Version      int64
				Schedule     []struct {
					Version         int64
					ProductionStart string `json:"production_start"`
				}
				Budget []struct{ Version int64 }
			}
			if err := json.Unmarshal([]byte(*tv.Data), &doc); err != nil {
				t.Fatalf("title view of %s: %v", id, err)
			}
			if doc.Name != title.GetName() || doc.Status != title.GetStatus() || doc.ReleaseDate != title.GetReleaseDate() || doc.Version != title.GetVersion() {
				return fmt.Sprintf("title %s: the title view holds %+v, the service %v", id, doc, title)
			}
			if s := scheds[id]; (s == nil) != (len(doc.Schedule) == 0) || s != nil && (doc.Schedule[0].Version != s.GetVersion() || doc.Schedule[0].ProductionStart != s.GetProductionStart()) {
				return fmt.Sprintf("title %s: the title view's schedule %+v, the service's %v", id, doc.Schedule, s)
			}
		}
		b := budgets[id]
		cv, ok := cashflowView[id]
		if b == nil {
			if ok && cv.Type != "DELETE" {
				return fmt.Sprintf("cashflow %s: no budget at the source, the cashflow view ends on %s", id, cv.Type)
			}
			continue
		}
		var schedV int64
		if s := scheds[id]; s != nil {
			schedV = s.GetVersion()
		}
		if want := b.GetVersion()<<32 + schedVersion[id]; !ok || cv.Sequence != want || cv.Data == nil {
			return fmt.Sprintf("cashflow %s: the cashflow view ends on %+v, want version %d", id, cv, want)
		}
		var doc struct {
			BudgetVersion   int64 `json:"budget_version"`
			ScheduleVersion int64 `json:"schedule_version"`
			Scheduled       bool
			ProductionStart string `json:"production_start"`
		}
		if err := json.Unmarshal([]byte(*cv.Data), &doc); err != nil {
			t.Fatalf("cashflow view of %s: %v", id, err)
		}
		s := scheds[id]
		if doc.BudgetVersion != b.GetVersion() || doc.ScheduleVersion != schedV || doc.Scheduled != (s != nil) ||
			s != nil && doc.ProductionStart != s.GetProductionStart() {
			return fmt.Sprintf("cashflow %s: the cashflow view holds %+v, the services budget %d and schedule %v", id, doc, b.GetVersion(), s)
		}
	}
	return ""
}
