package cashflow

import (
	"fmt"
	"maps"
	"slices"
)

// LineItem is one line of a budget.
type LineItem struct {
	Category string
	Amount   Money
	Profile  Profile
}

// MonthAmount is the amount of one month of a projection.
type MonthAmount struct {
	Month  Month
	Amount int64
}

// Projection is the monthly cash flow of a budget in one currency.
type Projection struct {
	Currency string
	// Total is the budget converted to Currency, line by line.
	Total int64
	// Months are the months with an amount, in order; they sum to Total.
	Months []MonthAmount
}

// Project converts each line item to the reporting currency of rates
// (rounding once), spreads it over the months of its profile along the
// schedule ([Spread]) and adds up the lines month by month.
func Project(lines []LineItem, s Schedule, rates *Rates) (Projection, error) {
	byMonth := map[Month]int64{}
	p := Projection{Currency: rates.To}
	for i, l := range lines {
		if l.Amount.Amount < 0 {
			return Projection{}, fmt.Errorf("%w: line %d (%s): amount %s is negative", ErrMoney, i, l.Category, l.Amount)
		}
		conv, err := rates.Convert(l.Amount)
		if err != nil {
			return Projection{}, fmt.Errorf("line %d (%s): %w", i, l.Category, err)
		}
		first, n, err := l.Profile.months(s)
		if err != nil {
			return Projection{}, fmt.Errorf("line %d (%s): %w", i, l.Category, err)
		}
		if p.Total > maxTotal-conv.Amount {
			return Projection{}, fmt.Errorf("%w: the budget's total is out of range", ErrMoney)
		}
		p.Total += conv.Amount
		for k, part := range Spread(conv.Amount, n) {
			byMonth[first+Month(k)] += part
		}
	}
	for _, m := range slices.Sorted(maps.Keys(byMonth)) {
		if byMonth[m] != 0 {
			p.Months = append(p.Months, MonthAmount{Month: m, Amount: byMonth[m]})
		}
	}
	return p, nil
}

const maxTotal = 1<<63 - 1
