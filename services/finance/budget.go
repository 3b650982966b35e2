package finance

import (
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	financev1 "github.com/slatehq/slate/proto/finance/v1"
	"github.com/slatehq/slate/services/finance/cashflow"
	"github.com/slatehq/slate/services/internal/service"
	"google.golang.org/protobuf/types/known/timestamppb"
)

// The entity types of the change events the service publishes; their
// changes topics are studio.budget.changes and studio.rate.changes.
const (
	EntityType     = "budget"
	RateEntityType = "rate"
)

// Limits on a budget.
const (
	// MaxLineItems is the most line items a budget may have.
	MaxLineItems = 1000
	// MaxActuals is the most actuals a budget may have.
	MaxActuals = 10000
	// MaxCategoryLen is the longest category, in bytes.
	MaxCategoryLen = 256
)

// Budget is a budget as a [Store] keeps it.
type Budget struct {
	// TitleID is the id of the title it belongs to.
	TitleID   string     `json:"-"`
	LineItems []LineItem `json:"line_items,omitempty"`
	Actuals   []Actual   `json:"actuals,omitempty"`
	Version   int64      `json:"-"`
	UpdatedAt time.Time  `json:"updated_at"`
	// Deleted marks the tombstone of a deleted budget: Version is the
	// delete's, and only TitleID is set besides.
	Deleted bool `json:"-"`
}

// LineItem is one planned cost of a budget.
type LineItem struct {
	// Category is unique within the budget.
	Category string `json:"category"`
	// Amount is in minor units of Currency, not negative.
	Amount int64 `json:"amount"`
	// Currency is an ISO 4217 code ([cashflow.MinorUnits]).
	Currency string `json:"currency"`
	// Profile is a spend profile as [cashflow.ParseProfile] reads it;
	// Validate rewrites it as [cashflow.Profile.String] formats it.
	Profile string `json:"profile"`
}

// Actual is money spent in one month.
type Actual struct {
	// Category is that of a line item of the budget, or empty.
	Category string `json:"category,omitempty"`
	// Month is YYYY-MM.
	Month string `json:"month"`
	// Amount is in minor units of Currency, not negative.
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// Validate checks the fields a caller sets (not TitleID, Version or
// UpdatedAt), writes profiles and months in their canonical form, and
// returns a [*FieldError] naming the first bad field.
func (b *Budget) Validate() error {
	if len(b.LineItems) > MaxLineItems {
		return &FieldError{Field: "line_items", Reason: strconv.Itoa(len(b.LineItems)) + " line items, at most " + strconv.Itoa(MaxLineItems) + " allowed"}
	}
	if len(b.Actuals) > MaxActuals {
		return &FieldError{Field: "actuals", Reason: strconv.Itoa(len(b.Actuals)) + " actuals, at most " + strconv.Itoa(MaxActuals) + " allowed"}
	}
	categories := make(map[string]bool, len(b.LineItems))
	for i := range b.LineItems {
		l := &b.LineItems[i]
		field := "line_items[" + strconv.Itoa(i) + "]"
		switch {
		case strings.TrimSpace(l.Category) == "":
			return &FieldError{Field: field + ".category", Reason: "must not be empty"}
		case len(l.Category) > MaxCategoryLen:
			return &FieldError{Field: field + ".category", Reason: "longer than " + strconv.Itoa(MaxCategoryLen) + " bytes"}
		case !utf8.ValidString(l.Category):
			return &FieldError{Field: field + ".category", Reason: "not valid UTF-8"}
		case categories[l.Category]:
			return &FieldError{Field: field + ".category", Reason: service.Quote(l.Category) + " is the category of an earlier line item"}
		}
		categories[l.Category] = true
		if err := validateMoney(field, l.Amount, l.Currency); err != nil {
			return err
		}
		p, err := cashflow.ParseProfile(l.Profile)
		if err != nil {
			return &FieldError{Field: field + ".profile", Reason: reason(err)}
		}
		l.Profile = p.String()
	}
	for i := range b.Actuals {
		a := &b.Actuals[i]
		field := "actuals[" + strconv.Itoa(i) + "]"
		if a.Category != "" && !categories[a.Category] {
			return &FieldError{Field: field + ".category", Reason: service.Quote(a.Category) + " is not the category of a line item"}
		}
		m, err := cashflow.ParseMonth(a.Month)
		if err != nil {
			return &FieldError{Field: field + ".month", Reason: service.Quote(a.Month) + " is not a month in YYYY-MM form"}
		}
		a.Month = m.String()
		if err := validateMoney(field, a.Amount, a.Currency); err != nil {
			return err
		}
	}
	return nil
}

// CashflowLines returns the line items of b as [cashflow.Project] takes
// them. b must be valid.
func (b Budget) CashflowLines() ([]cashflow.LineItem, error) {
	lines := make([]cashflow.LineItem, 0, len(b.LineItems))
	for i, l := range b.LineItems {
		p, err := cashflow.ParseProfile(l.Profile)
		if err != nil {
			return nil, &FieldError{Field: "line_items[" + strconv.Itoa(i) + "].profile", Reason: reason(err)}
		}
		lines = append(lines, cashflow.LineItem{Category: l.Category, Amount: cashflow.Money{Amount: l.Amount, Currency: l.Currency}, Profile: p})
	}
	return lines, nil
}

func validateMoney(field string, amount int64, currency string) error {
	if amount < 0 {
		return &FieldError{Field: field + ".amount", Reason: strconv.FormatInt(amount, 10) + " is negative"}
	}
	if _, err := cashflow.MinorUnits(currency); err != nil {
		return &FieldError{Field: field + ".currency", Reason: reason(err)}
	}
	return nil
}

// reason is a cashflow error without the package's prefix.
func reason(err error) string { return strings.TrimPrefix(err.Error(), cashflow.ErrMoney.Error()+": ") }

// Rate is an exchange rate as a [Store] keeps it.
type Rate struct {
	// From and To are ISO 4217 codes; they differ.
	From, To string
	// Rate is the price of one unit of From in To, a plain decimal such as
	// "1.08345", kept as given.
	Rate      string
	Version   int64
	UpdatedAt time.Time
}

// ID is the rate's id in its change events: "EUR-USD".
func (r Rate) ID() string { return r.From + "-" + r.To }

// Validate checks the currencies and the rate and returns a [*FieldError]
// naming the first bad field.
func (r Rate) Validate() error {
	_, err := r.Cashflow()
	return err
}

// Cashflow returns r as [cashflow.NewRates] takes it.
func (r Rate) Cashflow() (cashflow.Rate, error) {
	if _, err := cashflow.MinorUnits(r.From); err != nil {
		return cashflow.Rate{}, &FieldError{Field: "from_currency", Reason: reason(err)}
	}
	if _, err := cashflow.MinorUnits(r.To); err != nil {
		return cashflow.Rate{}, &FieldError{Field: "to_currency", Reason: reason(err)}
	}
	if r.From == r.To {
		return cashflow.Rate{}, &FieldError{Field: "to_currency", Reason: "is from_currency too; a rate converts between two currencies"}
	}
	cr, err := cashflow.ParseRate(r.From, r.To, r.Rate)
	if err != nil {
		return cashflow.Rate{}, &FieldError{Field: "rate", Reason: reason(err)}
	}
	return cr, nil
}

// sortRates orders rates by From.
func sortRates(rs []Rate) {
	slices.SortFunc(rs, func(a, b Rate) int { return strings.Compare(a.From, b.From) })
}

func budgetFromProto(m *financev1.Budget) Budget {
	b := Budget{TitleID: m.GetTitleId()}
	for _, l := range m.GetLineItems() {
		b.LineItems = append(b.LineItems, LineItem{Category: l.GetCategory(), Amount: l.GetAmount(), Currency: l.GetCurrency(), Profile: l.GetProfile()})
	}
	for _, a := range m.GetActuals() {
		b.Actuals = append(b.Actuals, Actual{Category: a.GetCategory(), Month: a.GetMonth(), Amount: a.GetAmount(), Currency: a.GetCurrency()})
	}
	return b
}

func budgetToProto(b Budget) *financev1.Budget {
	m := &financev1.Budget{TitleId: b.TitleID, Version: b.Version, Deleted: b.Deleted}
	for _, l := range b.LineItems {
		m.LineItems = append(m.LineItems, &financev1.LineItem{Category: l.Category, Amount: l.Amount, Currency: l.Currency, Profile: l.Profile})
	}
	for _, a := range b.Actuals {
		m.Actuals = append(m.Actuals, &financev1.Actual{Category: a.Category, Month: a.Month, Amount: a.Amount, Currency: a.Currency})
	}
	if !b.UpdatedAt.IsZero() {
		m.UpdatedAt = timestamppb.New(b.UpdatedAt)
	}
	return m
}

func rateFromProto(m *financev1.Rate) Rate {
	return Rate{From: m.GetFromCurrency(), To: m.GetToCurrency(), Rate: m.GetRate()}
}

func rateToProto(r Rate) *financev1.Rate {
	m := &financev1.Rate{FromCurrency: r.From, ToCurrency: r.To, Rate: r.Rate, Version: r.Version}
	if !r.UpdatedAt.IsZero() {
		m.UpdatedAt = timestamppb.New(r.UpdatedAt)
	}
	return m
}
