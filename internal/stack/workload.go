package stack

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	financev1 "github.com/slatehq/slate/proto/finance/v1"
	schedulesv1 "github.com/slatehq/slate/proto/schedules/v1"
	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
)

// Expectation is what the sink must end with for one title: its last
// version, and whether it was deleted.
type Expectation struct {
	Version int64
	Deleted bool
}

// Workload drives the titles service the way a studio would: it creates
// titles, moves their release dates and statuses, and deletes some. It
// remembers the last version of every title it touched.
type Workload struct {
	client    titlesv1.TitlesClient
	schedules schedulesv1.SchedulesClient
	finance   financev1.FinanceClient
	disorder  *Disorder
	rate      float64

	mu      sync.Mutex
	writes  int
	expect  map[string]Expectation
	budgets map[string]Expectation // by title id, with schedules and finance
	live    []string
}

// NewWorkload returns a workload issuing about rate writes per second.
func NewWorkload(client titlesv1.TitlesClient, rate float64) *Workload {
	return &Workload{client: client, rate: rate, expect: make(map[string]Expectation), budgets: make(map[string]Expectation)}
}

// WithDisorder tells the workload the services publish through d: its
// flagship's middle release move then has its change event held back and
// published after the last one (each event twice, as d sends them all),
// the way a race and a producer's retries would publish them. The views
// must not move backwards, and the sinks' dedupe drops the repeats.
func (w *Workload) WithDisorder(d *Disorder) *Workload {
	w.disorder = d
	return w
}

// WithStudio makes the workload a studio's year: every new title gets a
// production schedule and a budget, and updates also slip schedules
// (release dates move by a month, back and forth) and revise budgets.
func (w *Workload) WithStudio(schedules schedulesv1.SchedulesClient, finance financev1.FinanceClient) *Workload {
	w.schedules, w.finance = schedules, finance
	return w
}

var (
	kinds    = []string{"FEATURE", "SERIES", "EPISODE"}
	statuses = []string{"DEVELOPMENT", "PRODUCTION", "POST", "RELEASED"}
)

// Run writes until ctx ends. Failed writes are retried on the next tick;
// only acknowledged writes count. A studio workload starts with its
// flagship: a title whose release moves July -> June -> July.
func (w *Workload) Run(ctx context.Context) error {
	if w.finance != nil {
		if err := w.Flagship(ctx); err != nil {
			return err
		}
	}
	tick := time.NewTicker(time.Duration(float64(time.Second) / w.rate))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
		// A write in flight when ctx ends is finished, not abandoned: the
		// service would apply and publish it anyway, and the workload must
		// know its version to check the sink.
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		err := w.step(sctx)
		cancel()
		if err != nil {
			return err
		}
	}
}

func (w *Workload) step(ctx context.Context) error {
	w.mu.Lock()
	n := len(w.live)
	w.mu.Unlock()
	r := rand.IntN(100)
	switch {
	case n < 5 || r < 30:
		return w.Create(ctx, fmt.Sprintf("Title %d", rand.IntN(1_000_000)))
	case w.finance != nil && r < 50:
		return w.Slip(ctx, w.pick())
	case w.finance != nil && r < 65:
		return w.Revise(ctx, w.pick())
	case r < 90:
		return w.Update(ctx, w.pick())
	default:
		return w.Delete(ctx, w.pick())
	}
}

func (w *Workload) pick() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.live[rand.IntN(len(w.live))]
}

// Create creates a title and returns once the service acknowledged it.
func (w *Workload) Create(ctx context.Context, name string) error {
	resp, err := w.client.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: &titlesv1.Title{
		Name: name, Kind: kinds[rand.IntN(len(kinds))], Status: statuses[0], ReleaseDate: randomDate(),
	}})
	if err != nil {
		return transient(err)
	}
	id := resp.GetTitle().GetId()
	w.record(id, resp.GetTitle().GetVersion(), false)
	if w.finance == nil {
		return nil
	}
	release, _ := time.Parse(time.DateOnly, resp.GetTitle().GetReleaseDate())
	start := release.AddDate(0, -12-rand.IntN(6), 0)
	if _, err := w.schedules.PutSchedule(ctx, &schedulesv1.PutScheduleRequest{Schedule: &schedulesv1.Schedule{
		TitleId: id, ProductionStart: start.Format(time.DateOnly), ProductionEnd: start.AddDate(0, 3+rand.IntN(6), 0).Format(time.DateOnly),
		Releases: []*schedulesv1.Release{{Territory: "US", Date: release.Format(time.DateOnly)},
			{Territory: "GB", Date: release.AddDate(0, 0, 14).Format(time.DateOnly)}},
	}}); err != nil {
		return transient(err)
	}
	w.count()
	return w.Revise(ctx, id)
}

// Flagship greenlights a title released in July, moves its release to
// June and back to July; with [Workload.WithDisorder] the services
// publish the move to June last, and every event twice: the views must
// end on July at the highest version.
func (w *Workload) Flagship(ctx context.Context) error {
	resp, err := w.client.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: &titlesv1.Title{
		Name: "The Flagship", Kind: "FEATURE", Status: statuses[1], ReleaseDate: "2027-07-16"}})
	if err != nil {
		return transient(err)
	}
	id := resp.GetTitle().GetId()
	w.record(id, resp.GetTitle().GetVersion(), false)
	var version int64
	for i, release := range []string{"2027-07-16", "2027-06-11", "2027-07-16"} {
		if i == 1 && w.disorder != nil {
			w.disorder.HoldNext("schedule", id)
		}
		req := &schedulesv1.PutScheduleRequest{Schedule: &schedulesv1.Schedule{TitleId: id,
			ProductionStart: "2026-08-03", ProductionEnd: "2026-12-18", Releases: []*schedulesv1.Release{{Territory: "US", Date: release}}}}
		if version > 0 {
			req.ExpectedVersion = &version
		}
		put, err := w.schedules.PutSchedule(ctx, req)
		if err != nil {
			return transient(err)
		}
		version = put.GetSchedule().GetVersion()
		w.count()
	}
	return w.Revise(ctx, id)
}

// Slip moves a title's production and release dates a month later or
// earlier.
func (w *Workload) Slip(ctx context.Context, id string) error {
	got, err := w.schedules.GetSchedule(ctx, &schedulesv1.GetScheduleRequest{TitleId: id})
	if err != nil {
		return transient(err)
	}
	s := got.GetSchedule()
	months := []int{-1, 1}[rand.IntN(2)]
	move := func(d string) string {
		t, _ := time.Parse(time.DateOnly, d)
		return t.AddDate(0, months, 0).Format(time.DateOnly)
	}
	s.ProductionStart, s.ProductionEnd = move(s.ProductionStart), move(s.ProductionEnd)
	for _, r := range s.Releases {
		r.Date = move(r.Date)
	}
	if _, err := w.schedules.PutSchedule(ctx, &schedulesv1.PutScheduleRequest{Schedule: s, ExpectedVersion: &s.Version}); err != nil {
		return transient(err)
	}
	w.count()
	return nil
}

// Revise puts a new budget for a title: crew over production, prints and
// advertising in the months before release, in three currencies.
func (w *Workload) Revise(ctx context.Context, id string) error {
	resp, err := w.finance.PutBudget(ctx, &financev1.PutBudgetRequest{Budget: &financev1.Budget{TitleId: id, LineItems: []*financev1.LineItem{
		{Category: "crew", Amount: 1_000_000_00 + rand.Int64N(5_000_000_00), Currency: "USD", Profile: "production"},
		{Category: "vfx", Amount: 500_000_00 + rand.Int64N(1_000_000_00), Currency: "GBP", Profile: "production"},
		{Category: "p&a", Amount: 200_000_00 + rand.Int64N(800_000_00), Currency: "EUR", Profile: "before_release:3"},
	}}})
	if err != nil {
		return transient(err)
	}
	w.mu.Lock()
	w.writes++
	w.budgets[id] = Expectation{Version: resp.GetBudget().GetVersion()}
	w.mu.Unlock()
	return nil
}

func (w *Workload) count() {
	w.mu.Lock()
	w.writes++
	w.mu.Unlock()
}

// Budgets returns a copy of the budget version every budgeted title's
// cashflow view must reach.
func (w *Workload) Budgets() map[string]Expectation {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]Expectation, len(w.budgets))
	for k, v := range w.budgets {
		out[k] = v
	}
	return out
}

// Update moves a title's release date and status.
func (w *Workload) Update(ctx context.Context, id string) error {
	got, err := w.client.GetTitle(ctx, &titlesv1.GetTitleRequest{Id: id})
	if err != nil {
		return transient(err)
	}
	t := got.GetTitle()
	t.ReleaseDate = randomDate()
	t.Status = statuses[rand.IntN(len(statuses))]
	resp, err := w.client.UpdateTitle(ctx, &titlesv1.UpdateTitleRequest{Title: t})
	if err != nil {
		return transient(err)
	}
	w.record(id, resp.GetTitle().GetVersion(), false)
	return nil
}

// Delete deletes a title.
func (w *Workload) Delete(ctx context.Context, id string) error {
	resp, err := w.client.DeleteTitle(ctx, &titlesv1.DeleteTitleRequest{Id: id})
	if err != nil {
		return transient(err)
	}
	w.record(id, resp.GetVersion(), true)
	return nil
}

func (w *Workload) record(id string, version int64, deleted bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.writes++
	_, known := w.expect[id]
	w.expect[id] = Expectation{Version: version, Deleted: deleted}
	switch {
	case deleted:
		for i, l := range w.live {
			if l == id {
				w.live = append(w.live[:i], w.live[i+1:]...)
				break
			}
		}
	case !known:
		w.live = append(w.live, id)
	}
}

// Writes returns the number of acknowledged writes (each published one
// change event).
func (w *Workload) Writes() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.writes
}

// Expected returns a copy of the final state every touched title must reach.
func (w *Workload) Expected() map[string]Expectation {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]Expectation, len(w.expect))
	for k, v := range w.expect {
		out[k] = v
	}
	return out
}

// transient hides errors a workload shrugs off (the service is briefly
// unavailable, a racing delete) so Run keeps going; others stop it.
func transient(err error) error {
	switch status.Code(err) {
	case codes.Unavailable, codes.NotFound, codes.FailedPrecondition, codes.DeadlineExceeded:
		return nil
	}
	return err
}

func randomDate() string {
	return time.Date(2027, time.Month(1+rand.IntN(12)), 1+rand.IntN(28), 0, 0, 0, 0, time.UTC).Format(time.DateOnly)
}
