package stack_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/slatehq/slate/internal/testenv"
	titlesv1 "github.com/slatehq/slate/proto/titles/v1"
)

// chromium is the path of a Chromium (or Chrome) binary; it skips the
// test when there is none, or fails it under CI=true.
func chromium(t *testing.T) string {
	t.Helper()
	var errs []error
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		p, err := exec.LookPath(name)
		if err == nil {
			return p
		}
		errs = append(errs, err)
	}
	testenv.Unavailable(t, "chromium", "install it (apt-get install -y chromium) to run the GraphiQL browser test", errors.Join(errs...))
	return ""
}

// The GraphiQL page of slate up, in headless Chromium with no internet
// access needed: a title created through the titles service is queried by
// setting the query in GraphiQL's editor and pressing its run button, and
// its name shows in the result pane. Every request the page makes goes to
// the GraphQL server, and the page logs no error (a Content-Security-
// Policy violation would be one).
func TestGraphiQLInChromium(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole system and a browser")
	}
	bin := chromium(t)
	s := startStack(t, false)
	if s.GraphQLURL == "" {
		t.Fatal("the stack serves no GraphQL API")
	}
	server, err := url.Parse(s.GraphQLURL)
	if err != nil {
		t.Fatal(err)
	}

	name := fmt.Sprintf("Browser Cut %d", time.Now().UnixNano())
	created, err := s.Titles.CreateTitle(t.Context(), &titlesv1.CreateTitleRequest{Title: &titlesv1.Title{
		Name: name, Kind: "FEATURE", Status: "DEVELOPMENT"}})
	if err != nil {
		t.Fatal(err)
	}
	id := created.GetTitle().GetId()
	query := fmt.Sprintf("{ title(id: %q) { id name status } }", id)
	testenv.WaitFor(t, 30*time.Second, "the title in the title view", func() bool {
		title, _ := gql(t, s.GraphQLURL, query, nil)["title"].(map[string]any)
		return title != nil && title["name"] == name
	})

	ctx, cancel := context.WithTimeout(t.Context(), 45*time.Second)
	defer cancel()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(bin),
		chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	var mu sync.Mutex
	var requests, problems []string
	if err := chromedp.Listen(bctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			requests = append(requests, ev.Request.URL)
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			msg := d.Text
			if d.Exception != nil {
				msg += " " + d.Exception.Description
			}
			problems = append(problems, fmt.Sprintf("exception at %s:%d: %s", d.URL, d.LineNumber+1, msg))
		case *runtime.EventConsoleAPICalled:
			if ev.Type == runtime.ConsoleAPICalledTypeError {
				var args []string
				for _, a := range ev.Args {
					args = append(args, string(a.Value)+a.Description)
				}
				problems = append(problems, "console.error: "+strings.Join(args, " "))
			}
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError {
				problems = append(problems, fmt.Sprintf("%s: %s %s", ev.Entry.Source, ev.Entry.Text, ev.Entry.URL))
			}
		}
	}); err != nil {
		t.Fatalf("starting %s: %v", bin, err)
	}

	const editor = `.graphiql-query-editor .CodeMirror`
	const run = `.graphiql-execute-button`
	start := time.Now()
	if err := chromedp.Do(bctx,
		chromedp.Navigate(s.GraphQLURL+"/"),
		chromedp.WaitVisible(chromedp.CSS(editor)),
		chromedp.WaitVisible(chromedp.CSS(run)),
	); err != nil {
		t.Fatalf("loading GraphiQL: %v", err)
	}
	t.Logf("GraphiQL loaded in %s", time.Since(start).Round(time.Millisecond))

	// Set the query in the editor as a user's edit (CodeMirror's change
	// event updates GraphiQL's state), then press the run button.
	set, err := chromedp.Run(bctx, chromedp.Evaluate[bool](fmt.Sprintf(
		`(() => { const cm = document.querySelector(%q).CodeMirror; cm.setValue(%q); return cm.getValue() === %q; })()`, editor, query, query)))
	if err != nil || !set {
		t.Fatalf("setting the query in GraphiQL's editor: set %v, %v", set, err)
	}
	if err := chromedp.Do(bctx, chromedp.Click(chromedp.CSS(run))); err != nil {
		t.Fatalf("pressing the run button: %v", err)
	}
	var result string
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(result, name) {
		if time.Now().After(deadline) {
			t.Fatalf("the result pane never showed %q; it shows %q", name, result)
		}
		time.Sleep(100 * time.Millisecond)
		result, err = chromedp.Run(bctx, chromedp.Evaluate[string](
			`(() => { const r = document.querySelector('.graphiql-response .CodeMirror'); return r ? r.CodeMirror.getValue() : ''; })()`))
		if err != nil {
			t.Fatal(err)
		}
	}
	if !strings.Contains(result, id) || strings.Contains(result, `"errors"`) {
		t.Errorf("result pane: %s", result)
	}
	t.Logf("result pane after %s: %s", time.Since(start).Round(time.Millisecond), strings.Join(strings.Fields(result), " "))

	mu.Lock()
	defer mu.Unlock()
	if len(requests) == 0 {
		t.Fatal("no request seen")
	}
	queries := 0
	for _, r := range requests {
		u, err := url.Parse(r)
		if err != nil || (u.Scheme != "data" && u.Host != server.Host) {
			t.Errorf("the page requested %s, not of the GraphQL server %s", r, server.Host)
		} else if u.Path == "/query" {
			queries++
		}
	}
	if queries < 2 { // the schema's introspection, then the title
		t.Errorf("the page sent %d requests to /query, want its introspection and the query: %v", queries, requests)
	}
	t.Logf("%d requests, all to %s, %d of them to /query", len(requests), server.Host, queries)
	for _, p := range problems {
		t.Errorf("the page logged %s", p)
	}
}
