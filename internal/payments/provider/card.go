package provider

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/stratadev/strata"
)

// Card brands, as reported by Card.Brand and Charge.Brand.
const (
	BrandVisa       = "visa"
	BrandMastercard = "mastercard"
	BrandAmex       = "amex"
	BrandDiscover   = "discover"
	BrandUnknown    = "unknown"
)

// Card number lengths accepted, in digits (ISO/IEC 7812 allows 8 to 19; no
// network issues cards shorter than 12).
const (
	MinCardDigits = 12
	MaxCardDigits = 19
)

// Card is a payment card as the buyer entered it. It exists only for the
// duration of a charge: it is never stored, and it never shows its number.
// Formatted with fmt (any verb), logged with slog or encoded as JSON it
// reads as brand and last 4 only ("visa ****4242"), so a Card that is
// logged by mistake leaks nothing. (fmt cannot see methods through an
// unexported struct field, so never keep a Card in one.)
type Card struct {
	// Number is the primary account number. Spaces and dashes are allowed
	// and ignored.
	Number   string `json:"number"`
	ExpMonth int    `json:"exp_month"`
	ExpYear  int    `json:"exp_year"` // four digits
	CVC      string `json:"cvc"`
}

// Normalize returns c with spaces and dashes removed from the number.
func (c Card) Normalize() Card {
	c.Number = normalizeNumber(c.Number)
	return c
}

func normalizeNumber(n string) string {
	if !strings.ContainsAny(n, " -") {
		return n
	}
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, n)
}

// Validate checks c at time now, reporting every invalid field in one
// strata.Invalid error: card.number (12 to 19 digits once spaces and
// dashes are removed, passing the Luhn check), card.exp_month (1 to 12),
// card.exp_year (four digits, and the card not expired: it is valid through
// the last day of its expiry month) and card.cvc (3 or 4 digits). The
// messages never contain the number.
func (c Card) Validate(now time.Time) error {
	if p := c.problems(now); p != nil {
		return strata.Invalid(p...)
	}
	return nil
}

// problems returns the alternating field, message pairs of c's invalid
// fields, or nil.
func (c Card) problems(now time.Time) []string {
	var p []string
	if msg := numberProblem(normalizeNumber(c.Number)); msg != "" {
		p = append(p, "card.number", msg)
	}
	monthOK := c.ExpMonth >= 1 && c.ExpMonth <= 12
	if !monthOK {
		p = append(p, "card.exp_month", "must be between 1 and 12")
	}
	switch {
	case c.ExpYear < 1000 || c.ExpYear > 9999:
		p = append(p, "card.exp_year", "must have four digits")
	case monthOK && expired(c.ExpYear, c.ExpMonth, now):
		p = append(p, "card.exp_year", "the card has expired")
	}
	if n := len(c.CVC); (n != 3 && n != 4) || !allDigits(c.CVC) {
		p = append(p, "card.cvc", "must be 3 or 4 digits")
	}
	return p
}

// numberProblem returns why the normalized number n is not a card number,
// or "".
func numberProblem(n string) string {
	switch {
	case n == "":
		return "is required"
	case !allDigits(n):
		return "must contain only digits, spaces and dashes"
	case len(n) < MinCardDigits || len(n) > MaxCardDigits:
		return fmt.Sprintf("must have %d to %d digits", MinCardDigits, MaxCardDigits)
	case !luhnValid(n):
		return "is not a valid card number"
	}
	return ""
}

// expiryZone is the last time zone on Earth to reach a new month. A card is
// accepted as long as its expiry month has not ended there, so that no
// buyer sees a card refused while it is still valid where they are.
var expiryZone = time.FixedZone("UTC-12", -12*60*60)

// expired reports whether a card valid through month/year has expired at now.
func expired(year, month int, now time.Time) bool {
	y, m, _ := now.In(expiryZone).Date()
	return year < y || (year == y && month < int(m))
}

// luhnValid reports whether the digit string n passes the Luhn check.
func luhnValid(n string) bool {
	sum := 0
	double := false
	for i := len(n) - 1; i >= 0; i-- {
		d := int(n[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	return sum%10 == 0
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// Last4 returns the last four digits of the number, or "" when the number
// is not at least MinCardDigits digits (showing four digits of a shorter
// string could show most of it).
func (c Card) Last4() string {
	n := normalizeNumber(c.Number)
	if len(n) < MinCardDigits || !allDigits(n) {
		return ""
	}
	return n[len(n)-4:]
}

// Brand returns the card's network from its issuer identification number:
// BrandVisa, BrandMastercard, BrandAmex, BrandDiscover or BrandUnknown.
func (c Card) Brand() string {
	n := normalizeNumber(c.Number)
	if len(n) < 6 || !allDigits(n) {
		return BrandUnknown
	}
	return brandOf(n)
}

func brandOf(n string) string {
	p2, _ := strconv.Atoi(n[:2])
	p3, _ := strconv.Atoi(n[:3])
	p4, _ := strconv.Atoi(n[:4])
	switch {
	case n[0] == '4':
		return BrandVisa
	case p2 == 34 || p2 == 37:
		return BrandAmex
	case (p2 >= 51 && p2 <= 55) || (p4 >= 2221 && p4 <= 2720):
		return BrandMastercard
	case p4 == 6011 || p2 == 65 || (p3 >= 644 && p3 <= 649):
		return BrandDiscover
	}
	return BrandUnknown
}

// String returns the brand and last 4, such as "visa ****4242".
func (c Card) String() string {
	return c.Brand() + " ****" + c.Last4()
}

// Format makes every fmt verb, %#v and %d included, print String, quoted
// for %q.
func (c Card) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprint(f, strconv.Quote(c.String()))
		return
	}
	fmt.Fprint(f, c.String())
}

// LogValue makes slog record a Card as its String.
func (c Card) LogValue() slog.Value { return slog.StringValue(c.String()) }

// MarshalJSON encodes only the brand and last 4: a Card is never encoded in
// full, so one put in a log record, an event or a response by mistake leaks
// nothing. Decoding a Card from JSON works as usual.
func (c Card) MarshalJSON() ([]byte, error) {
	return fmt.Appendf(nil, `{"brand":%q,"last4":%q}`, c.Brand(), c.Last4()), nil
}

var (
	_ fmt.Stringer   = Card{}
	_ fmt.Formatter  = Card{}
	_ slog.LogValuer = Card{}
)
