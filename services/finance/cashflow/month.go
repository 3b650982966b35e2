package cashflow

import (
	"fmt"
	"time"
)

// Month is a calendar month, counted from January of year 0, so that
// months add and subtract as integers.
type Month int

// MonthOf returns the month of t.
func MonthOf(t time.Time) Month { return Month(t.Year()*12 + int(t.Month()) - 1) }

// ParseMonth parses "2027-06".
func ParseMonth(s string) (Month, error) {
	t, err := time.Parse("2006-01", s)
	if err != nil {
		return 0, fmt.Errorf("%w: month %q: want YYYY-MM", ErrMoney, s)
	}
	return MonthOf(t), nil
}

// Year returns the month's year.
func (m Month) Year() int { return int(m) / 12 }

// Month returns the month of the year.
func (m Month) Month() time.Month { return time.Month(int(m)%12 + 1) }

// String formats m as "2027-06".
func (m Month) String() string { return fmt.Sprintf("%04d-%02d", m.Year(), int(m.Month())) }
