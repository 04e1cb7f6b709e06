package strata

import "fmt"

// Money is an integer count of minor units (cents for USD, yen for JPY) of a
// currency. It is never a float.
type Money struct {
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
}

// currencyExponents holds the ISO 4217 currencies Strata accepts and the
// number of minor-unit digits of each.
var currencyExponents = map[string]int{
	"AUD": 2, "BRL": 2, "CAD": 2, "CHF": 2, "CNY": 2, "CZK": 2, "DKK": 2,
	"EUR": 2, "GBP": 2, "HKD": 2, "HUF": 2, "IDR": 2, "ILS": 2, "INR": 2,
	"JPY": 0, "KRW": 0, "MXN": 2, "NOK": 2, "NZD": 2, "PLN": 2, "SEK": 2,
	"SGD": 2, "THB": 2, "TRY": 2, "TWD": 2, "USD": 2, "ZAR": 2, "BHD": 3,
	"KWD": 3,
}

// ValidCurrency reports whether c is an ISO 4217 code Strata accepts.
func ValidCurrency(c string) bool {
	_, ok := currencyExponents[c]
	return ok
}

// Validate checks m: a known currency and a non-negative amount. field names
// the input for the error.
func (m Money) Validate(field string) error {
	if !ValidCurrency(m.Currency) {
		return Invalid(field+".currency", "must be a supported ISO 4217 currency code")
	}
	if m.Amount < 0 {
		return Invalid(field+".amount", "must not be negative")
	}
	return nil
}

func (m Money) String() string { return fmt.Sprintf("%d %s", m.Amount, m.Currency) }
