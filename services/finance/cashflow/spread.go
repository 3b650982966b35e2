package cashflow

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Spread splits amount over n months by the largest remainder method with
// equal weights: each month gets amount/n rounded toward zero, and the
// |amount| mod n units left over go one each to the earliest months. The
// parts sum exactly to amount; n must be at least 1.
func Spread(amount int64, n int) []int64 {
	parts := make([]int64, n)
	base, rest := amount/int64(n), amount%int64(n)
	step := int64(1)
	if rest < 0 {
		rest, step = -rest, -1
	}
	for i := range parts {
		parts[i] = base
		if int64(i) < rest {
			parts[i] += step
		}
	}
	return parts
}

// Profile is how a line item's amount is spent along the schedule.
type Profile struct {
	Kind ProfileKind
	// Months is the number of months of [BeforeRelease] and [AfterRelease].
	Months int
}

// ProfileKind is the kind of a [Profile].
type ProfileKind string

// The spend profiles.
const (
	// Production spreads over every month from the production start to
	// its end, both included.
	Production ProfileKind = "production"
	// BeforeRelease spreads over the Months months before the release
	// month (prints and advertising).
	BeforeRelease ProfileKind = "before_release"
	// AtRelease books everything in the release month.
	AtRelease ProfileKind = "at_release"
	// AfterRelease spreads over Months months from the release month on
	// (residuals, participations).
	AfterRelease ProfileKind = "after_release"
)

// maxProfileMonths bounds the months of a profile.
const maxProfileMonths = 240

// ParseProfile parses "production", "at_release", "before_release:6" or
// "after_release:12".
func ParseProfile(s string) (Profile, error) {
	kind, n, hasN := strings.Cut(s, ":")
	p := Profile{Kind: ProfileKind(kind)}
	if hasN {
		m, err := strconv.Atoi(n)
		if err != nil {
			return Profile{}, fmt.Errorf("%w: spend profile %q: %q is not a number of months", ErrMoney, s, n)
		}
		p.Months = m
	}
	return p, p.Validate()
}

// Validate reports a profile that names no months.
func (p Profile) Validate() error {
	switch p.Kind {
	case Production, AtRelease:
		if p.Months != 0 {
			return fmt.Errorf("%w: spend profile %s takes no number of months", ErrMoney, p.Kind)
		}
	case BeforeRelease, AfterRelease:
		if p.Months < 1 || p.Months > maxProfileMonths {
			return fmt.Errorf("%w: spend profile %s:%d: want 1 to %d months", ErrMoney, p.Kind, p.Months, maxProfileMonths)
		}
	default:
		return fmt.Errorf("%w: spend profile %q: want production, at_release, before_release:N or after_release:N", ErrMoney, p.Kind)
	}
	return nil
}

// String formats p as ParseProfile reads it.
func (p Profile) String() string {
	if p.Months == 0 {
		return string(p.Kind)
	}
	return fmt.Sprintf("%s:%d", p.Kind, p.Months)
}

// Schedule is what a projection needs of a title's schedule.
type Schedule struct {
	ProductionStart, ProductionEnd time.Time
	// Release is the first release, the month release profiles count from.
	Release time.Time
}

// Validate reports a schedule whose end is before its start.
func (s Schedule) Validate() error {
	switch {
	case s.ProductionStart.IsZero() || s.ProductionEnd.IsZero():
		return fmt.Errorf("%w: schedule: production start and end are required", ErrMoney)
	case s.ProductionEnd.Before(s.ProductionStart):
		return fmt.Errorf("%w: schedule: production ends %s, before it starts %s", ErrMoney,
			s.ProductionEnd.Format(time.DateOnly), s.ProductionStart.Format(time.DateOnly))
	case MonthOf(s.ProductionEnd)-MonthOf(s.ProductionStart) >= maxProfileMonths:
		return fmt.Errorf("%w: schedule: production lasts more than %d months", ErrMoney, maxProfileMonths)
	}
	return nil
}

// Months returns the first month of p along s and how many months it has.
func (p Profile) months(s Schedule) (Month, int, error) {
	if err := p.Validate(); err != nil {
		return 0, 0, err
	}
	if err := s.Validate(); err != nil {
		return 0, 0, err
	}
	if p.Kind != Production && s.Release.IsZero() {
		return 0, 0, fmt.Errorf("%w: spend profile %s needs a release date", ErrMoney, p)
	}
	rel := MonthOf(s.Release)
	switch p.Kind {
	case Production:
		first := MonthOf(s.ProductionStart)
		return first, int(MonthOf(s.ProductionEnd)-first) + 1, nil
	case BeforeRelease:
		return rel - Month(p.Months), p.Months, nil
	case AtRelease:
		return rel, 1, nil
	default: // AfterRelease
		return rel, p.Months, nil
	}
}
