package schedules_test

import (
	"strings"
	"testing"
	"time"

	"github.com/slatehq/slate/services/schedules"
)

func TestIsTerritory(t *testing.T) {
	for _, c := range []string{"US", "GB", "FR", "DE", "JP", "IN", "BR", "ZW", "AX"} {
		if !schedules.IsTerritory(c) {
			t.Errorf("IsTerritory(%q) = false", c)
		}
	}
	for _, c := range []string{"", "us", "UK", "EU", "XK", "ZZ", "USA", "U", "840"} {
		if schedules.IsTerritory(c) {
			t.Errorf("IsTerritory(%q) = true", c)
		}
	}
	n := 0
	for a := 'A'; a <= 'Z'; a++ {
		for b := 'A'; b <= 'Z'; b++ {
			if schedules.IsTerritory(string([]rune{a, b})) {
				n++
			}
		}
	}
	if n != 249 {
		t.Errorf("%d territories, want the 249 of ISO 3166-1", n)
	}
}

func TestScheduleCashflow(t *testing.T) {
	s := schedules.Schedule{ProductionStart: "2027-01-04", ProductionEnd: "2027-06-30",
		Releases: []schedules.Release{{Territory: "US", Date: "2028-02-01"}, {Territory: "FR", Date: "2028-01-15"}}}
	if err := s.Validate(); err != nil {
		t.Fatal(err)
	}
	if s.Releases[0].Territory != "FR" {
		t.Errorf("releases not sorted by territory: %+v", s.Releases)
	}
	cs, err := s.Cashflow()
	if err != nil {
		t.Fatal(err)
	}
	if !cs.Release.Equal(time.Date(2028, 1, 15, 0, 0, 0, 0, time.UTC)) || cs.ProductionStart.Format(time.DateOnly) != "2027-01-04" {
		t.Errorf("Cashflow = %+v, want the first release 2028-01-15", cs)
	}
	long := schedules.Schedule{ProductionStart: "2000-01-01", ProductionEnd: "2099-01-01"}
	if err := long.Validate(); err == nil || !strings.Contains(err.Error(), "production_end") {
		t.Errorf("Validate of a century-long production = %v, want a production_end error", err)
	}
}
