package graphql

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/slatehq/slate/consumer/sink/bleve"
	"github.com/slatehq/slate/graphql/gen"
	"github.com/slatehq/slate/internal/querystr"
)

// pollInterval is how often a query with minVersion reads the view again.
const pollInterval = 25 * time.Millisecond

type resolver struct{ cfg Config }

// root is the schema's resolver root.
type root struct{ r *resolver }

func (rt root) Query() gen.QueryResolver { return rt.r }

func (rt root) Title() gen.TitleResolver { return titleResolver{rt.r} }

// Title is Query.title.
func (r *resolver) Title(ctx context.Context, id string, minVersion *gen.Int64) (*gen.Title, error) {
	doc, v, found, err := r.read(ctx, r.cfg.Titles, r.cfg.TitleView, id, minVersion)
	if err != nil || !found {
		return nil, err
	}
	return title(doc, v, time.Now()), nil
}

// CashFlow is Query.cashFlow.
func (r *resolver) CashFlow(ctx context.Context, titleID string, from, to *string, minVersion *gen.Int64) (*gen.CashFlow, error) {
	lo, hi, err := monthRange("cashFlow", from, to)
	if err != nil {
		return nil, err
	}
	doc, v, found, err := r.read(ctx, r.cfg.CashFlows, r.cfg.CashFlowView, titleID, minVersion)
	if err != nil || !found {
		return nil, err
	}
	return cashFlow(doc, v, lo, hi, time.Now()), nil
}

// monthRange reads the optional from and to (YYYY-MM) of field: the
// range of months from lo to hi, both inclusive.
func monthRange(field string, from, to *string) (lo, hi string, err error) {
	lo, hi = "", "9999-12"
	for _, m := range []struct {
		arg string
		v   *string
		set *string
	}{{"from", from, &lo}, {"to", to, &hi}} {
		if m.v == nil {
			continue
		}
		if !isMonth(*m.v) {
			return "", "", gqlerror.Errorf("%s: %s %q is not a month (YYYY-MM)", field, m.arg, *m.v)
		}
		*m.set = *m.v
	}
	if lo > hi {
		return "", "", gqlerror.Errorf("%s: from %s is after to %s", field, lo, hi)
	}
	return lo, hi, nil
}

func isMonth(s string) bool {
	_, err := time.Parse("2006-01", s)
	return err == nil && len(s) == 7
}

// Schedule is Query.schedule: the schedule joined to the title view.
func (r *resolver) Schedule(ctx context.Context, titleID string, minVersion *gen.Int64) (*gen.Schedule, error) {
	doc, _, found, err := r.readAs(ctx, r.cfg.Titles, r.cfg.TitleView, titleID, minVersion, "schedule", joinedVersion("schedule"))
	if err != nil || !found {
		return nil, err
	}
	if list := maps(doc["schedule"]); len(list) > 0 {
		return schedule(list[0], time.Now()), nil
	}
	return nil, nil
}

// Budget is Query.budget: the budget joined to the title view.
func (r *resolver) Budget(ctx context.Context, titleID string, minVersion *gen.Int64) (*gen.Budget, error) {
	doc, _, found, err := r.readAs(ctx, r.cfg.Titles, r.cfg.TitleView, titleID, minVersion, "budget", joinedVersion("budget"))
	if err != nil || !found {
		return nil, err
	}
	if list := maps(doc["budget"]); len(list) > 0 {
		return budget(list[0], time.Now()), nil
	}
	return nil, nil
}

// joinedVersion is the version of the record joined under field of a
// title view document (0 when none is joined).
func joinedVersion(field string) func(map[string]any, int64) int64 {
	return func(doc map[string]any, _ int64) int64 {
		if list := maps(doc[field]); len(list) > 0 {
			return num(list[0]["version"])
		}
		return 0
	}
}

// titleResolver resolves the fields of Title that read another view.
type titleResolver struct{ r *resolver }

// CashFlow is Title.cashFlow, read through the request's loader: the
// titles of a page read their cash flows in one GetMany.
func (t titleResolver) CashFlow(ctx context.Context, obj *gen.Title, from, to *string) (*gen.CashFlow, error) {
	lo, hi, err := monthRange("Title.cashFlow", from, to)
	if err != nil {
		return nil, err
	}
	l := loadersFrom(ctx)
	if l == nil {
		return nil, errors.New("Title.cashFlow: no loaders in the request context")
	}
	h, err := l.cashFlows.Load(ctx, obj.ID)
	if err != nil {
		return nil, fmt.Errorf("%s view: get %s: %w", t.r.cfg.CashFlowView, obj.ID, err)
	}
	if h == nil {
		return nil, nil
	}
	return cashFlow(h.Doc, h.Version, lo, hi, time.Now()), nil
}

// Titles is Query.titles.
func (r *resolver) Titles(ctx context.Context, search, status, releasedAfter, releasedBefore *string, first *int, after *string) (*gen.TitleConnection, error) {
	n := DefaultPageSize
	if first != nil {
		n = *first
	}
	switch {
	case n < 0:
		return nil, gqlerror.Errorf("titles: first %d is negative", n)
	case n > r.cfg.MaxPageSize:
		return nil, gqlerror.Errorf("titles: first %d exceeds the page size limit of %d (MaxPageSize)", n, r.cfg.MaxPageSize)
	}
	offset := 0
	if after != nil {
		var err error
		if offset, err = decodeCursor(*after); err != nil {
			return nil, gqlerror.Errorf("titles: after %q is not a cursor of titles", *after)
		}
	}
	if offset+n > r.cfg.MaxWindow {
		return nil, gqlerror.Errorf("titles: after plus first reach %d, past the limit of %d results (MaxWindow); narrow the search", offset+n, r.cfg.MaxWindow)
	}
	q := queryString(deref(search), deref(status))
	rq, err := releaseQuery(releasedAfter, releasedBefore)
	if err != nil {
		return nil, err
	}
	if rq != "" {
		q = strings.TrimSpace(q + " " + rq)
	}
	conn := &gen.TitleConnection{PageInfo: &gen.PageInfo{}, Edges: []*gen.TitleEdge{}}
	if n == 0 {
		return conn, nil
	}
	// One more than the page, to know whether another follows.
	hits, err := r.cfg.Titles.Search(ctx, r.cfg.TitleView, q, offset+n+1)
	if err != nil {
		return nil, fmt.Errorf("titles: search %q: %w", q, err)
	}
	now := time.Now()
	for i := offset; i < len(hits) && i < offset+n; i++ {
		c := encodeCursor(i + 1)
		conn.Edges = append(conn.Edges, &gen.TitleEdge{Cursor: c, Node: title(hits[i].Doc, hits[i].Version, now)})
		conn.PageInfo.EndCursor = &c
	}
	conn.PageInfo.HasNextPage = len(hits) > offset+n
	return conn, nil
}

// releaseQuery is the query string of a release date range (YYYY-MM-DD,
// both inclusive, both optional).
func releaseQuery(after, before *string) (string, error) {
	var terms []string
	for _, d := range []struct {
		arg, op string
		v       *string
	}{{"releasedAfter", ">=", after}, {"releasedBefore", "<=", before}} {
		if d.v == nil {
			continue
		}
		if _, err := time.Parse(time.DateOnly, *d.v); err != nil || len(*d.v) != len(time.DateOnly) {
			return "", gqlerror.Errorf("titles: %s %q is not a date (YYYY-MM-DD)", d.arg, *d.v)
		}
		terms = append(terms, `+release_date:`+d.op+`"`+*d.v+`"`)
	}
	if after != nil && before != nil && *after > *before {
		return "", gqlerror.Errorf("titles: releasedAfter %s is after releasedBefore %s", *after, *before)
	}
	if before != nil && after == nil {
		// An upper bound alone would take a title without a release date
		// (""), which sorts first as a keyword in Elasticsearch; the lower
		// bound is the earliest that Bleve, in int64 nanoseconds, can hold.
		terms = append([]string{`+release_date:>="1678-01-01"`}, terms...)
	}
	return strings.Join(terms, " "), nil
}

// read gets id from a view; with minVersion it reads again until the
// view has at least that version or MinVersionWait has passed.
func (r *resolver) read(ctx context.Context, s Store, view, id string, minVersion *gen.Int64) (map[string]any, int64, bool, error) {
	return r.readAs(ctx, s, view, id, minVersion, "", nil)
}

// readAs is read where the version minVersion waits for is versionOf the
// document (what names in errors); nil versionOf is the view's version.
func (r *resolver) readAs(ctx context.Context, s Store, view, id string, minVersion *gen.Int64, what string,
	versionOf func(map[string]any, int64) int64) (map[string]any, int64, bool, error) {
	deadline := time.Now().Add(r.cfg.MinVersionWait)
	subject := "the " + view + " view of " + id
	if what != "" {
		subject = "the " + what + " of " + id + " in the " + view + " view"
	}
	for {
		doc, v, found, err := s.Get(ctx, view, id)
		if err != nil {
			return nil, 0, false, fmt.Errorf("%s view: get %s: %w", view, id, err)
		}
		got := v
		if versionOf != nil {
			got = 0
			if found {
				got = versionOf(doc, v)
			}
		}
		if minVersion == nil || got >= int64(*minVersion) {
			return doc, v, found, nil
		}
		if !time.Now().Before(deadline) {
			return nil, 0, false, gqlerror.Errorf("minVersion %d: %s is at version %d after waiting %s (MinVersionWait)",
				*minVersion, subject, got, r.cfg.MinVersionWait)
		}
		t := time.NewTimer(min(pollInterval, time.Until(deadline)))
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, 0, false, fmt.Errorf("minVersion %d: %s is at version %d: %w", *minVersion, subject, got, ctx.Err())
		case <-t.C:
		}
	}
}

// queryString is the store query of a search and a status: every term of
// the search is required, as is the status.
func queryString(search, status string) string {
	var terms []string
	for _, t := range querystr.Split(search) {
		if t == "*" {
			continue
		}
		if !strings.HasPrefix(t, "+") && !strings.HasPrefix(t, "-") {
			t = "+" + t
		}
		terms = append(terms, t)
	}
	if status != "" {
		terms = append(terms, `+status:"`+phraseEscaper.Replace(status)+`"`)
	}
	return strings.Join(terms, " ")
}

// phraseEscaper escapes a phrase of a query string.
var phraseEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`)

func encodeCursor(offset int) string {
	return base64.RawURLEncoding.EncodeToString([]byte("titles:" + strconv.Itoa(offset)))
}

func decodeCursor(c string) (int, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil {
		return 0, err
	}
	rest, ok := strings.CutPrefix(string(b), "titles:")
	if !ok {
		return 0, fmt.Errorf("cursor %q: no titles prefix", c)
	}
	n, err := strconv.Atoi(rest)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("cursor %q: bad offset", c)
	}
	return n, nil
}

// title is the Title of a title view document written at version v.
func title(doc map[string]any, v int64, now time.Time) *gen.Title {
	t := &gen.Title{ID: str(doc["id"]), Name: str(doc["name"]), Kind: str(doc["kind"]), Status: str(doc["status"]),
		ReleaseDate: optStr(doc["release_date"]), TitleVersion: gen.Int64(num(doc["version"])), Version: gen.Int64(v),
		UpdatedAt: optStr(doc["updated_at"]), Freshness: freshness(doc, now),
		Schedule: []*gen.Schedule{}, Budget: []*gen.Budget{}}
	for _, m := range maps(doc["schedule"]) {
		t.Schedule = append(t.Schedule, schedule(m, now))
	}
	for _, m := range maps(doc["budget"]) {
		t.Budget = append(t.Budget, budget(m, now))
	}
	return t
}

// schedule is the Schedule of a schedule record joined to a title.
func schedule(m map[string]any, now time.Time) *gen.Schedule {
	s := &gen.Schedule{TitleID: str(m["title_id"]), ProductionStart: optStr(m["production_start"]),
		ProductionEnd: optStr(m["production_end"]), Version: gen.Int64(num(m["version"])), Releases: []*gen.Release{},
		UpdatedAt: optStr(m["updated_at"]), Freshness: since(m["updated_at"], now)}
	for _, r := range maps(m["releases"]) {
		s.Releases = append(s.Releases, &gen.Release{Territory: str(r["territory"]), Date: str(r["date"])})
	}
	return s
}

// budget is the Budget of a budget record joined to a title.
func budget(m map[string]any, now time.Time) *gen.Budget {
	b := &gen.Budget{TitleID: str(m["title_id"]), Version: gen.Int64(num(m["version"])), LineItems: []*gen.LineItem{},
		UpdatedAt: optStr(m["updated_at"]), Freshness: since(m["updated_at"], now)}
	for _, li := range maps(m["line_items"]) {
		b.LineItems = append(b.LineItems, &gen.LineItem{Category: str(li["category"]), Amount: gen.Int64(num(li["amount"])),
			Currency: str(li["currency"]), Profile: str(li["profile"])})
	}
	return b
}

// cashFlow is the CashFlow of a cashflow view document written at version
// v, with its months from lo to hi (YYYY-MM, inclusive).
func cashFlow(doc map[string]any, v int64, lo, hi string, now time.Time) *gen.CashFlow {
	c := &gen.CashFlow{TitleID: str(doc["title_id"]), Currency: str(doc["currency"]), Total: gen.Int64(num(doc["total"])),
		Scheduled: doc["scheduled"] == true, ProductionStart: optStr(doc["production_start"]),
		ProductionEnd: optStr(doc["production_end"]), ReleaseDate: optStr(doc["release_date"]),
		BudgetVersion: gen.Int64(num(doc["budget_version"])), ScheduleVersion: gen.Int64(num(doc["schedule_version"])),
		RatesAsOf: optStr(doc["rates_as_of"]), Version: gen.Int64(v), UpdatedAt: optStr(envelope(doc)["time"]),
		Freshness: freshness(doc, now), Months: []*gen.Month{}}
	for _, m := range maps(doc["months"]) {
		month := str(m["month"])
		if month < lo || month > hi {
			continue
		}
		c.Months = append(c.Months, &gen.Month{Month: month, Amount: gen.Int64(num(m["amount"]))})
	}
	return c
}

func envelope(doc map[string]any) map[string]any {
	env, _ := doc[bleve.EnvelopeField].(map[string]any)
	return env
}

// freshness is the seconds from the envelope time of the change a
// document reflects to now; nil if the document has none.
func freshness(doc map[string]any, now time.Time) *float64 {
	return since(envelope(doc)["time"], now)
}

// since is the seconds from an RFC 3339 time to now; nil if v is none.
func since(v any, now time.Time) *float64 {
	s, _ := v.(string)
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return nil
	}
	f := now.Sub(t).Seconds()
	return &f
}

func maps(v any) []map[string]any {
	list, _ := v.([]any)
	out := make([]map[string]any, 0, len(list))
	for _, e := range list {
		if m, ok := e.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

func str(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

func optStr(v any) *string {
	s := str(v)
	if s == "" {
		return nil
	}
	return &s
}

// num reads an integer of a decoded JSON document.
func num(v any) int64 {
	switch v := v.(type) {
	case float64:
		return int64(v)
	case int64:
		return v
	case int:
		return int64(v)
	case json.Number:
		n, _ := v.Int64()
		return n
	case string:
		n, _ := strconv.ParseInt(v, 10, 64)
		return n
	}
	return 0
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
