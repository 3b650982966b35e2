package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/slatehq/slate/internal/testenv"
	financev1 "github.com/slatehq/slate/proto/finance/v1"
	schedulesv1 "github.com/slatehq/slate/proto/schedules/v1"
	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
)

// upProc is a `slate up` in a child process and clients of its services.
type upProc struct {
	*slateProc
	titles    titlesv1.TitlesClient
	schedules schedulesv1.SchedulesClient
	finance   financev1.FinanceClient
}

// listening matches the log lines in which slate up names the addresses of
// its servers: `msg="schedules service listening" addr=127.0.0.1:40123`.
var listening = regexp.MustCompile(`msg="(\w+)(?: service)? listening" addr=(\S+)`)

// startUp runs `slate up` on dataDir with free ports and a slow workload,
// waits until it says it is up, and connects to its services at the
// addresses its log names.
func startUp(t *testing.T, name, dataDir string) *upProc {
	t.Helper()
	p := startProc(t, name, "up", "--data-dir", dataDir, "--rate", "2", "--log-level", "info",
		"--kafka-port", "0", "--registry-port", "0", "--titles-port", "0", "--schedules-port", "0",
		"--finance-port", "0", "--http-port", "0")
	p.waitOutput(t, `msg="slate is up"`, 60*time.Second)
	addrs := map[string]string{}
	for _, m := range listening.FindAllStringSubmatch(p.out.String(), -1) {
		addrs[m[1]] = m[2]
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
	return &upProc{slateProc: p, titles: titlesv1.NewTitlesClient(conn("titles")),
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
// directory after the first was killed; and a write after the restart
// reaches the title view.
func TestUpKeepsStudioDataAcrossRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs slate up twice")
	}
	dir := t.TempDir()
	const id = "restart-title"
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	up := startUp(t, "slate up", dir)
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
	up.kill(t)

	up = startUp(t, "slate up after the kill", dir)
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
}
