package schedules

import (
	"slices"
	"strconv"
	"strings"
	"time"

	schedulesv1 "github.com/slatehq/slate/proto/schedules/v1"
	"github.com/slatehq/slate/services/finance/cashflow"
	"github.com/slatehq/slate/services/internal/service"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// EntityType is the entity type of every change event the service
// publishes; its changes topic is studio.schedule.changes.
const EntityType = "schedule"

// DateLayout is the layout of every date of a schedule (YYYY-MM-DD).
const DateLayout = time.DateOnly

// MaxReleases is the most releases a schedule may have: one per ISO
// 3166-1 territory.
const MaxReleases = 249

// Schedule is a schedule as a [Store] keeps it.
type Schedule struct {
	// TitleID is the id of the title it belongs to.
	TitleID string `json:"-"`
	// ProductionStart and ProductionEnd are YYYY-MM-DD, both included.
	ProductionStart string `json:"production_start"`
	ProductionEnd   string `json:"production_end"`
	// Releases are sorted by territory, one per territory.
	Releases  []Release `json:"releases,omitempty"`
	Version   int64     `json:"-"`
	UpdatedAt time.Time `json:"updated_at"`
	// Deleted marks the tombstone of a deleted schedule: Version is the
	// delete's, and only TitleID is set besides.
	Deleted bool `json:"-"`
}

// Release is the release of a title in one territory.
type Release struct {
	// Territory is an ISO 3166-1 alpha-2 code, upper case.
	Territory string `json:"territory"`
	// Date is YYYY-MM-DD.
	Date string `json:"date"`
}

// Validate checks the fields a caller sets (not TitleID, Version or
// UpdatedAt), sorts Releases by territory, and returns a [*FieldError]
// naming the first bad field.
func (s *Schedule) Validate() error {
	start, err := parseDate("production_start", s.ProductionStart)
	if err != nil {
		return err
	}
	end, err := parseDate("production_end", s.ProductionEnd)
	if err != nil {
		return err
	}
	if end.Before(start) {
		return &FieldError{Field: "production_end", Reason: s.ProductionEnd + " is before production_start " + s.ProductionStart}
	}
	if err := (cashflow.Schedule{ProductionStart: start, ProductionEnd: end}).Validate(); err != nil {
		return &FieldError{Field: "production_end", Reason: strings.TrimPrefix(err.Error(), "cashflow: schedule: ")}
	}
	if len(s.Releases) > MaxReleases {
		return &FieldError{Field: "releases", Reason: strconv.Itoa(len(s.Releases)) + " releases, at most " + strconv.Itoa(MaxReleases) + " allowed"}
	}
	seen := make(map[string]bool, len(s.Releases))
	for i, r := range s.Releases {
		field := "releases[" + strconv.Itoa(i) + "]"
		if !IsTerritory(r.Territory) {
			return &FieldError{Field: field + ".territory", Reason: service.Quote(r.Territory) + " is not an ISO 3166-1 alpha-2 code"}
		}
		if seen[r.Territory] {
			return &FieldError{Field: field + ".territory", Reason: r.Territory + " has more than one release"}
		}
		seen[r.Territory] = true
		if _, err := parseDate(field+".date", r.Date); err != nil {
			return err
		}
	}
	slices.SortFunc(s.Releases, func(a, b Release) int { return strings.Compare(a.Territory, b.Territory) })
	return nil
}

// Cashflow returns what a cash-flow projection needs of s: the production
// dates and the first release in any territory (zero without releases).
// s must be valid.
func (s Schedule) Cashflow() (cashflow.Schedule, error) {
	var cs cashflow.Schedule
	var err error
	if cs.ProductionStart, err = parseDate("production_start", s.ProductionStart); err != nil {
		return cashflow.Schedule{}, err
	}
	if cs.ProductionEnd, err = parseDate("production_end", s.ProductionEnd); err != nil {
		return cashflow.Schedule{}, err
	}
	for i, r := range s.Releases {
		d, err := parseDate("releases["+strconv.Itoa(i)+"].date", r.Date)
		if err != nil {
			return cashflow.Schedule{}, err
		}
		if cs.Release.IsZero() || d.Before(cs.Release) {
			cs.Release = d
		}
	}
	return cs, nil
}

func parseDate(field, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, &FieldError{Field: field, Reason: "must not be empty"}
	}
	t, err := time.Parse(DateLayout, s)
	if err != nil {
		return time.Time{}, &FieldError{Field: field, Reason: service.Quote(s) + " is not a date in YYYY-MM-DD form"}
	}
	return t, nil
}

// fromProto copies the caller-set fields of m.
func fromProto(m *schedulesv1.Schedule) Schedule {
	s := Schedule{
		TitleID:         m.GetTitleId(),
		ProductionStart: m.GetProductionStart(),
		ProductionEnd:   m.GetProductionEnd(),
	}
	for _, r := range m.GetReleases() {
		s.Releases = append(s.Releases, Release{Territory: r.GetTerritory(), Date: r.GetDate()})
	}
	return s
}

func toProto(s Schedule) *schedulesv1.Schedule {
	m := &schedulesv1.Schedule{
		TitleId:         s.TitleID,
		ProductionStart: s.ProductionStart,
		ProductionEnd:   s.ProductionEnd,
		Version:         s.Version,
		Deleted:         s.Deleted,
	}
	for _, r := range s.Releases {
		m.Releases = append(m.Releases, &schedulesv1.Release{Territory: r.Territory, Date: r.Date})
	}
	if !s.UpdatedAt.IsZero() {
		m.UpdatedAt = timestamppb.New(s.UpdatedAt)
	}
	return m
}
