package stack_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slatehq/slate/internal/gqlws"
	"github.com/slatehq/slate/internal/stack"
	"github.com/slatehq/slate/internal/testenv"
	financev1 "github.com/slatehq/slate/proto/finance/v1"
	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
)

const titleSubscription = `subscription($id: ID!) { titleChanged(id: $id) {
	id name version deleted schedule { version releases { territory date } } } }`

// subscribedTitle is a titleChanged event: the title's version and the
// dates of its releases.
type subscribedTitle struct {
	ID       string `json:"id"`
	Version  string `json:"version"`
	Deleted  bool   `json:"deleted"`
	Schedule []struct {
		Releases []struct {
			Date string `json:"date"`
		} `json:"releases"`
	} `json:"schedule"`
}

func (t subscribedTitle) version(tb testing.TB) int64 {
	v, err := strconv.ParseInt(t.Version, 10, 64)
	if err != nil {
		tb.Fatalf("version %q: %v", t.Version, err)
	}
	return v
}

func (t subscribedTitle) releasedOn(date string) bool {
	for _, s := range t.Schedule {
		for _, r := range s.Releases {
			if r.Date == date {
				return true
			}
		}
	}
	return false
}

// scheduledTitle makes a title released on release and waits until its
// title view has the schedule.
func scheduledTitle(t *testing.T, s *stack.Stack, release string) string {
	t.Helper()
	ctx := context.Background()
	created, err := s.Titles.CreateTitle(ctx, &titlesv1.CreateTitleRequest{Title: &titlesv1.Title{
		Name: "Live", Kind: "FEATURE", Status: "PRODUCTION", ReleaseDate: release}})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetTitle().GetId()
	if _, err := s.Schedules.PutSchedule(ctx, schedule(id, release, 0)); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the title view with its schedule", func() bool {
		doc, _ := view(t, s, "title-sink", "title", id)
		return doc != nil && len(doc["schedule"].([]any)) == 1
	})
	return id
}

// A client subscribed to titleChanged over graphql-transport-ws gets the
// title as it is, then, after its release moves in the schedules service,
// the title with the new date at a higher version, from the title view's
// materialized topic; a cashFlowChanged subscription of the same title
// gets the cash flow's months moved with it. Deleting the title is one
// more event, with deleted true.
func TestGraphQLSubscriptionFollowsAMovedRelease(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system")
	}
	s := startStack(t, false)
	id := scheduledTitle(t, s, "2027-07-16")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := gqlws.Dial(ctx, s.GraphQLURL+"/query", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Subscribe(ctx, "1", titleSubscription, map[string]any{"id": id}); err != nil {
		t.Fatal(err)
	}
	read := func() subscribedTitle {
		t.Helper()
		r, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Errors) > 0 {
			t.Fatalf("errors: %v", r.Errors)
		}
		b, _ := json.Marshal(r.Data["titleChanged"])
		var ev subscribedTitle
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatal(err)
		}
		return ev
	}
	first := read()
	if first.ID != id || !first.releasedOn("2027-07-16") || first.Deleted {
		t.Fatalf("first event %+v, want the title released in July", first)
	}
	before := first.version(t)

	// The title's cash flow, on a connection of its own: prints and
	// advertising in the three months before the release.
	if _, err := s.Finance.PutBudget(ctx, &financev1.PutBudgetRequest{Budget: &financev1.Budget{TitleId: id, LineItems: []*financev1.LineItem{
		{Category: "p&a", Amount: 3_000_000_01, Currency: "USD", Profile: "before_release:3"}}}}); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 30*time.Second, "the cashflow view", func() bool {
		doc, _ := view(t, s, "cashflow-sink", "cashflow", id)
		return doc != nil
	})
	cc, err := gqlws.Dial(ctx, s.GraphQLURL+"/query", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if err := cc.Subscribe(ctx, "cf", `subscription($id: ID!) { cashFlowChanged(titleId: $id) { titleId version months { month amount } } }`,
		map[string]any{"id": id}); err != nil {
		t.Fatal(err)
	}
	cashFlow := func() (int64, map[string]string) {
		t.Helper()
		r, err := cc.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := r.Data["cashFlowChanged"].(map[string]any)
		if len(r.Errors) > 0 || cf == nil {
			t.Fatalf("cashFlowChanged: %+v", r)
		}
		v, err := strconv.ParseInt(cf["version"].(string), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return v, gqlMonths(cf)
	}
	cfBefore, months := cashFlow()
	july := map[string]string{"2027-04": "100000001", "2027-05": "100000000", "2027-06": "100000000"}
	if !sameMonths(months, july) {
		t.Fatalf("first cash flow event %v, want %v", months, july)
	}

	moved := time.Now()
	if _, err := s.Schedules.PutSchedule(context.Background(), schedule(id, "2027-06-10", 1)); err != nil {
		t.Fatal(err)
	}
	for {
		ev := read()
		if ev.version(t) <= before {
			t.Fatalf("event at version %d after one at %d", ev.version(t), before)
		}
		if ev.releasedOn("2027-06-10") {
			t.Logf("the moved release arrived %s after the change, at version %d (was %d)", time.Since(moved).Round(time.Millisecond), ev.version(t), before)
			before = ev.version(t)
			break
		}
		before = ev.version(t)
	}
	june := map[string]string{"2027-03": "100000001", "2027-04": "100000000", "2027-05": "100000000"}
	for {
		v, months := cashFlow()
		if v <= cfBefore {
			t.Fatalf("cash flow event at version %d after one at %d", v, cfBefore)
		}
		if sameMonths(months, june) {
			break
		}
		cfBefore = v
	}
	// The title deleted: an event that says so, at a higher version, and
	// the subscription stays open.
	deleted := time.Now()
	if _, err := s.Titles.DeleteTitle(context.Background(), &titlesv1.DeleteTitleRequest{Id: id}); err != nil {
		t.Fatal(err)
	}
	for {
		ev := read()
		if ev.version(t) <= before {
			t.Fatalf("event at version %d after one at %d", ev.version(t), before)
		}
		if ev.Deleted {
			t.Logf("the deletion arrived %s after it, at version %d", time.Since(deleted).Round(time.Millisecond), ev.version(t))
			if ev.ID != id || len(ev.Schedule) != 0 {
				t.Errorf("deletion event %+v", ev)
			}
			break
		}
		before = ev.version(t)
	}
	mfs, err := s.Gatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	measured := uint64(0)
	for _, mf := range mfs {
		if mf.GetName() == "slate_graphql_subscription_delivery_seconds" {
			measured = mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	if measured < 2 {
		t.Errorf("%d deliveries measured, want the two changes at least", measured)
	}
	if n := s.Counter("slate_graphql_subscribers_dropped_total", nil); n != 0 {
		t.Errorf("%v subscribers dropped", n)
	}
}

// The same over an independent client: the npm graphql-ws package (see
// testdata/graphql-ws; npm ci --prefix internal/stack/testdata/graphql-ws
// installs it). Without node or node_modules it skips, except in CI
// (CI=true), where it fails.
func TestGraphQLSubscriptionWithGraphQLWS(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system")
	}
	dir, err := filepath.Abs(filepath.Join("testdata", "graphql-ws"))
	if err != nil {
		t.Fatal(err)
	}
	missing := func(format string, args ...any) {
		t.Helper()
		if os.Getenv("CI") == "true" {
			t.Fatalf(format, args...)
		}
		t.Skipf(format, args...)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing("no node on PATH: install Node.js 20 or newer to run the graphql-ws client")
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "graphql-ws")); err != nil {
		missing("graphql-ws is not installed: run npm ci --prefix internal/stack/testdata/graphql-ws (%v)", err)
	}
	s := startStack(t, false)
	id := scheduledTitle(t, s, "2027-07-16")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(dir, "subscribe.mjs"), s.GraphQLURL+"/query", id, "2027-06-10")
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(out)
	lines.Buffer(make([]byte, 1<<20), 1<<20)
	event := func() (subscribedTitle, bool) {
		if !lines.Scan() {
			return subscribedTitle{}, false
		}
		var r struct {
			Data struct {
				TitleChanged subscribedTitle `json:"titleChanged"`
			} `json:"data"`
			Errors []any `json:"errors"`
		}
		if err := json.Unmarshal(lines.Bytes(), &r); err != nil || len(r.Errors) > 0 {
			t.Fatalf("graphql-ws printed %s (%v)", lines.Bytes(), err)
		}
		return r.Data.TitleChanged, true
	}
	first, ok := event()
	if !ok {
		_ = cmd.Wait()
		t.Fatalf("graphql-ws printed no event; stderr: %s", stderr.String())
	}
	if first.ID != id || !first.releasedOn("2027-07-16") {
		t.Fatalf("first event %+v, want the title released in July", first)
	}
	if _, err := s.Schedules.PutSchedule(context.Background(), schedule(id, "2027-06-10", 1)); err != nil {
		t.Fatal(err)
	}
	last := first
	for {
		ev, ok := event()
		if !ok {
			break
		}
		if ev.version(t) <= last.version(t) {
			t.Errorf("event at version %s after one at %s", ev.Version, last.Version)
		}
		last = ev
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("graphql-ws client: %v; stderr: %s", err, stderr.String())
	}
	if !last.releasedOn("2027-06-10") {
		t.Errorf("last event %+v, want the June release", last)
	}
}

// With TLS and authentication on every part, the subscriptions' feed
// reaches the broker over TLS with SASL, and a client with the CA and a
// certificate subscribes over wss.
func TestGraphQLSubscriptionSecured(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system")
	}
	dir := t.TempDir()
	sec, err := stack.DemoSecurity(filepath.Join(dir, "tls"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := stack.Start(context.Background(), stack.Config{DataDir: dir, Security: sec})
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
	id := scheduledTitle(t, s, "2027-07-16")

	caPEM, err := os.ReadFile(sec.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	cert, err := tls.LoadX509KeyPair(sec.ClientCertFile, sec.ClientKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if !strings.HasPrefix(s.GraphQLURL, "https://") {
		t.Fatalf("GraphQL URL %s, want https", s.GraphQLURL)
	}
	c, err := gqlws.Dial(ctx, s.GraphQLURL+"/query", client)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Subscribe(ctx, "1", titleSubscription, map[string]any{"id": id}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Next(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Schedules.PutSchedule(context.Background(), schedule(id, "2027-06-10", 1)); err != nil {
		t.Fatal(err)
	}
	for {
		r, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(r.Data["titleChanged"])
		var ev subscribedTitle
		if err := json.Unmarshal(b, &ev); err != nil {
			t.Fatal(err)
		}
		if ev.releasedOn("2027-06-10") {
			return
		}
	}
}
