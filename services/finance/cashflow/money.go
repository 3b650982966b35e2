package cashflow

import (
	"errors"
	"fmt"
	"math/big"
	"strings"
)

// ErrMoney is wrapped by every error of this package about an amount, a
// currency or a rate.
var ErrMoney = errors.New("cashflow")

// minorUnits are the ISO 4217 minor-unit exponents of the currencies the
// studio books in.
var minorUnits = map[string]int{
	"AUD": 2, "BRL": 2, "CAD": 2, "CHF": 2, "CNY": 2, "CZK": 2, "DKK": 2, "EUR": 2, "GBP": 2,
	"HKD": 2, "HUF": 2, "INR": 2, "MXN": 2, "NOK": 2, "NZD": 2, "PLN": 2, "SEK": 2, "SGD": 2,
	"USD": 2, "ZAR": 2, "ISK": 0, "JPY": 0, "KRW": 0, "CLP": 0, "VND": 0,
	"BHD": 3, "JOD": 3, "KWD": 3, "OMR": 3, "TND": 3,
}

// MinorUnits returns the number of decimal places of the minor unit of
// the ISO 4217 currency code (2 for USD: cents; 0 for JPY; 3 for KWD).
func MinorUnits(code string) (int, error) {
	n, ok := minorUnits[code]
	if !ok {
		return 0, fmt.Errorf("%w: %q is not a currency this service books in (ISO 4217 code, upper case)", ErrMoney, code)
	}
	return n, nil
}

// Money is an amount in integer minor units (cents for USD) of Currency.
type Money struct {
	Amount   int64
	Currency string
}

// String formats m as "12.34 USD".
func (m Money) String() string {
	n, err := MinorUnits(m.Currency)
	if err != nil || n == 0 {
		return fmt.Sprintf("%d %s", m.Amount, m.Currency)
	}
	sign, a := "", m.Amount
	if a < 0 {
		sign = "-"
	}
	abs := new(big.Int).Abs(big.NewInt(a)).String()
	if len(abs) <= n {
		abs = strings.Repeat("0", n-len(abs)+1) + abs
	}
	return fmt.Sprintf("%s%s.%s %s", sign, abs[:len(abs)-n], abs[len(abs)-n:], m.Currency)
}

// Rate is the price of one unit of From in To, Units × 10^-Scale: the
// rate 1.08345 EUR→USD is {From: EUR, To: USD, Units: 108345, Scale: 5}.
// Its precision is its Scale; conversions keep all of it.
type Rate struct {
	From, To string
	Units    int64
	Scale    int
}

// maxScale bounds a rate's decimal places.
const maxScale = 12

// ParseRate parses a decimal rate such as "1.08345" (no sign, no
// exponent), keeping every digit given as its precision.
func ParseRate(from, to, s string) (Rate, error) {
	r := Rate{From: from, To: to}
	whole, frac, _ := strings.Cut(s, ".")
	digits := whole + frac
	if digits == "" || strings.Trim(digits, "0123456789") != "" {
		return Rate{}, fmt.Errorf("%w: rate %s→%s %q: want a decimal such as 1.08345", ErrMoney, from, to, s)
	}
	if len(frac) > maxScale {
		return Rate{}, fmt.Errorf("%w: rate %s→%s %q: more than %d decimal places", ErrMoney, from, to, s, maxScale)
	}
	u, ok := new(big.Int).SetString(digits, 10)
	if !ok || !u.IsInt64() {
		return Rate{}, fmt.Errorf("%w: rate %s→%s %q: too many digits", ErrMoney, from, to, s)
	}
	r.Units, r.Scale = u.Int64(), len(frac)
	return r, r.Validate()
}

// Validate reports a rate that cannot convert: an unknown currency, a
// rate that is not positive, or a scale out of range.
func (r Rate) Validate() error {
	if _, err := MinorUnits(r.From); err != nil {
		return err
	}
	if _, err := MinorUnits(r.To); err != nil {
		return err
	}
	switch {
	case r.Units <= 0:
		return fmt.Errorf("%w: rate %s→%s: %d × 10^-%d is not positive", ErrMoney, r.From, r.To, r.Units, r.Scale)
	case r.Scale < 0 || r.Scale > maxScale:
		return fmt.Errorf("%w: rate %s→%s: scale %d, want 0 to %d", ErrMoney, r.From, r.To, r.Scale, maxScale)
	}
	return nil
}

// String formats r as "EUR→USD 1.08345".
func (r Rate) String() string {
	s := fmt.Sprintf("%0*d", r.Scale+1, r.Units)
	if r.Scale > 0 {
		s = s[:len(s)-r.Scale] + "." + s[len(s)-r.Scale:]
	}
	return r.From + "→" + r.To + " " + s
}

// Convert converts m, in r.From, to r.To: the exact product of the amount
// and the rate, in r.To's minor units, rounded once, half to even.
func (r Rate) Convert(m Money) (Money, error) {
	if err := r.Validate(); err != nil {
		return Money{}, err
	}
	if m.Currency != r.From {
		return Money{}, fmt.Errorf("%w: converting %s with the rate %s", ErrMoney, m, r)
	}
	fromExp, _ := MinorUnits(r.From)
	toExp, _ := MinorUnits(r.To)
	// amount/10^fromExp major units × units/10^scale = x/10^toExp minor units.
	num := new(big.Int).Mul(big.NewInt(m.Amount), big.NewInt(r.Units))
	num.Mul(num, pow10(toExp))
	den := new(big.Int).Mul(pow10(r.Scale), pow10(fromExp))
	q := roundHalfEven(num, den)
	if !q.IsInt64() {
		return Money{}, fmt.Errorf("%w: %s at %s is out of range", ErrMoney, m, r)
	}
	return Money{Amount: q.Int64(), Currency: r.To}, nil
}

func pow10(n int) *big.Int { return new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(n)), nil) }

// roundHalfEven returns num/den (den > 0) rounded to the nearest integer,
// ties to the even one.
func roundHalfEven(num, den *big.Int) *big.Int {
	q, r := new(big.Int).QuoRem(num, den, new(big.Int)) // truncated toward zero
	twice := new(big.Int).Abs(r)
	twice.Lsh(twice, 1)
	switch c := twice.Cmp(den); {
	case c > 0, c == 0 && q.Bit(0) == 1:
		if num.Sign() < 0 {
			q.Sub(q, big.NewInt(1))
		} else {
			q.Add(q, big.NewInt(1))
		}
	}
	return q
}

// Rates are the rates into one reporting currency, by source currency.
type Rates struct {
	To   string
	from map[string]Rate
}

// NewRates returns the rates into to; each rate's To must be to, and a
// currency may have one rate only.
func NewRates(to string, rates ...Rate) (*Rates, error) {
	if _, err := MinorUnits(to); err != nil {
		return nil, err
	}
	rs := &Rates{To: to, from: make(map[string]Rate, len(rates))}
	for _, r := range rates {
		if err := r.Validate(); err != nil {
			return nil, err
		}
		if r.To != to {
			return nil, fmt.Errorf("%w: rate %s is not into the reporting currency %s", ErrMoney, r, to)
		}
		if _, dup := rs.from[r.From]; dup {
			return nil, fmt.Errorf("%w: two rates %s→%s", ErrMoney, r.From, to)
		}
		rs.from[r.From] = r
	}
	return rs, nil
}

// Convert converts m into the reporting currency; an amount already in it
// is returned as it is.
func (rs *Rates) Convert(m Money) (Money, error) {
	if m.Currency == rs.To {
		if _, err := MinorUnits(m.Currency); err != nil {
			return Money{}, err
		}
		return m, nil
	}
	r, ok := rs.from[m.Currency]
	if !ok {
		return Money{}, fmt.Errorf("%w: no rate %s→%s", ErrMoney, m.Currency, rs.To)
	}
	return r.Convert(m)
}
