package graphql

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/slatehq/slate/graphql/gen"
)

// MaxRollupMonths is the most months cashFlowByMonth answers at once.
const MaxRollupMonths = 1200

// RollupComplexity is what a cashFlowByMonth costs of an operation's
// complexity (beside its selection): it reads up to MaxWindow documents,
// so the default MaxComplexity lets four run in one operation.
const RollupComplexity = 1000

// getManyChunk is the most ids the roll-up asks of one GetMany.
const getManyChunk = 1000

// CashFlowByMonth is Query.cashFlowByMonth: the cash flows of every title
// (in status, if set) summed month by month, exactly.
func (r *resolver) CashFlowByMonth(ctx context.Context, from, to string, status *string) (*gen.PortfolioCashFlow, error) {
	for _, m := range []struct{ arg, v string }{{"from", from}, {"to", to}} {
		if !isMonth(m.v) {
			return nil, gqlerror.Errorf("cashFlowByMonth: %s %q is not a month (YYYY-MM)", m.arg, m.v)
		}
	}
	if from > to {
		return nil, gqlerror.Errorf("cashFlowByMonth: from %s is after to %s", from, to)
	}
	months := monthsBetween(from, to)
	if len(months) > MaxRollupMonths {
		return nil, gqlerror.Errorf("cashFlowByMonth: from %s to %s is %d months, more than %d (MaxRollupMonths)", from, to, len(months), MaxRollupMonths)
	}
	docs, err := r.portfolio(ctx, deref(status))
	if err != nil {
		return nil, err
	}
	out, err := rollUp(docs, from, to, months, time.Now())
	if err != nil {
		return nil, gqlerror.Errorf("cashFlowByMonth: %s", err)
	}
	return out, nil
}

// portfolio reads the cashflow documents of the titles in status (all
// titles when status is ""), at most MaxWindow of them.
func (r *resolver) portfolio(ctx context.Context, status string) ([]Hit, error) {
	limit := r.cfg.MaxWindow
	if status == "" {
		hits, err := r.cfg.CashFlows.Search(ctx, r.cfg.CashFlowView, "", limit+1)
		if err != nil {
			return nil, fmt.Errorf("cashFlowByMonth: %s view: search: %w", r.cfg.CashFlowView, err)
		}
		if len(hits) > limit {
			return nil, gqlerror.Errorf("cashFlowByMonth: more than %d cash flows (MaxWindow); narrow by status", limit)
		}
		return hits, nil
	}
	q := queryString("", status)
	titles, err := r.cfg.Titles.Search(ctx, r.cfg.TitleView, q, limit+1)
	if err != nil {
		return nil, fmt.Errorf("cashFlowByMonth: %s view: search %q: %w", r.cfg.TitleView, q, err)
	}
	if len(titles) > limit {
		return nil, gqlerror.Errorf("cashFlowByMonth: more than %d titles in status %q (MaxWindow)", limit, status)
	}
	var out []Hit
	for i := 0; i < len(titles); i += getManyChunk {
		ids := make([]string, 0, getManyChunk)
		for _, t := range titles[i:min(i+getManyChunk, len(titles))] {
			ids = append(ids, t.ID)
		}
		got, err := r.cfg.CashFlows.GetMany(ctx, r.cfg.CashFlowView, ids)
		if err != nil {
			return nil, fmt.Errorf("cashFlowByMonth: %s view: get %d titles: %w", r.cfg.CashFlowView, len(ids), err)
		}
		for _, id := range ids {
			if h, ok := got[id]; ok {
				out = append(out, h)
			}
		}
	}
	return out, nil
}

// rollUp sums the cashflow documents' months from to to (listed in
// months) and totals; an amount that is not an exact integer, a sum past
// the range of int64 or a second currency is an error naming the title.
func rollUp(docs []Hit, from, to string, months []string, now time.Time) (*gen.PortfolioCashFlow, error) {
	idx := make(map[string]int, len(months))
	out := &gen.PortfolioCashFlow{From: from, To: to, Months: make([]*gen.PortfolioMonth, len(months))}
	for i, m := range months {
		idx[m] = i
		out.Months[i] = &gen.PortfolioMonth{Month: m}
	}
	sums := make([]int64, len(months))
	var total int64
	var newest time.Time
	for _, h := range docs {
		cur := str(h.Doc["currency"])
		switch {
		case out.Currency == nil:
			out.Currency = &cur
		case *out.Currency != cur:
			return nil, fmt.Errorf("title %s is in %s, others in %s: cash flows in more than one reporting currency do not sum", h.ID, cur, *out.Currency)
		}
		t, err := exactInt(h.Doc["total"])
		if err != nil {
			return nil, fmt.Errorf("title %s: total: %w", h.ID, err)
		}
		var ok bool
		if total, ok = addExact(total, t); !ok {
			return nil, fmt.Errorf("the total passes the range of Int64 at title %s", h.ID)
		}
		for _, m := range maps(h.Doc["months"]) {
			i, in := idx[str(m["month"])]
			if !in {
				continue
			}
			a, err := exactInt(m["amount"])
			if err != nil {
				return nil, fmt.Errorf("title %s: month %s: %w", h.ID, months[i], err)
			}
			if sums[i], ok = addExact(sums[i], a); !ok {
				return nil, fmt.Errorf("month %s passes the range of Int64 at title %s", months[i], h.ID)
			}
			out.Months[i].Titles++
		}
		out.Titles++
		out.Version = max(out.Version, gen.Int64(h.Version))
		if at, err := time.Parse(time.RFC3339Nano, str(envelope(h.Doc)["time"])); err == nil && at.After(newest) {
			newest = at
		}
	}
	for i, s := range sums {
		out.Months[i].Amount = gen.Int64(s)
	}
	out.Total = gen.Int64(total)
	if !newest.IsZero() {
		at := newest.UTC().Format(time.RFC3339Nano)
		out.UpdatedAt, out.Freshness = &at, since(at, now)
	}
	return out, nil
}

// monthsBetween lists the months from from to to (YYYY-MM, valid, from
// not after to), stopping past MaxRollupMonths.
func monthsBetween(from, to string) []string {
	t, _ := time.Parse("2006-01", from)
	var out []string
	for m := from; m <= to && len(out) <= MaxRollupMonths; m = t.Format("2006-01") {
		out = append(out, m)
		t = t.AddDate(0, 1, 0)
	}
	return out
}

// maxExactFloat is 2^53: above it a float64 does not hold every integer.
const maxExactFloat = 1 << 53

// exactInt reads an integer of a document exactly: a json.Number or a
// string of digits whole, a float64 only up to 2^53 (past it the store
// decoded it inexactly, and guessing would misstate money).
func exactInt(v any) (int64, error) {
	switch v := v.(type) {
	case json.Number:
		n, err := strconv.ParseInt(v.String(), 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s is not an Int64", v)
		}
		return n, nil
	case string:
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not an Int64", v)
		}
		return n, nil
	case float64:
		if v != math.Trunc(v) || math.Abs(v) > maxExactFloat {
			return 0, fmt.Errorf("%v is not an integer a float64 holds exactly (beyond 2^53)", v)
		}
		return int64(v), nil
	case int64:
		return v, nil
	case int:
		return int64(v), nil
	case nil:
		return 0, fmt.Errorf("no amount")
	}
	return 0, fmt.Errorf("%v (%T) is not an integer", v, v)
}

// addExact is a+b, and false when the sum passes the range of int64.
func addExact(a, b int64) (int64, bool) {
	s := a + b
	if (a > 0 && b > 0 && s < 0) || (a < 0 && b < 0 && s >= 0) {
		return 0, false
	}
	return s, true
}
