package provider_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/payments/provider"
	"github.com/stretchr/testify/require"
)

// testNow is the time of every test that does not move a clock.
var testNow = time.Date(2026, 3, 15, 12, 0, 0, 0, time.UTC)

// validCard returns a card valid at testNow with the given number.
func validCard(number string) provider.Card {
	return provider.Card{Number: number, ExpMonth: 12, ExpYear: 2030, CVC: "123"}
}

// fieldErrors returns the field messages of a strata.Invalid error.
func fieldErrors(t *testing.T, err error) map[string]string {
	t.Helper()
	var e *strata.Error
	require.True(t, errors.As(err, &e), "want *strata.Error, got %T %v", err, err)
	require.Equal(t, strata.CodeInvalid, e.Code)
	out := map[string]string{}
	for _, f := range e.Fields {
		out[f.Field] = f.Message
	}
	return out
}

func TestCardValidateNumber(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, number string
		valid        bool
	}{
		{"visa", "4242424242424242", true},
		{"spaces", "4242 4242 4242 4242", true},
		{"dashes", "4242-4242-4242-4242", true},
		{"spaces and dashes", " 4242 - 4242-4242 4242 ", true},
		{"amex 15 digits", "378282246310005", true},
		{"12 digits", "000000000000", true},
		{"19 digits", "6011000000000000001", true},
		{"luhn fails", "4242424242424241", false},
		{"transposed digits", "4242424242424224", false},
		{"11 digits", "00000000000", false},
		{"20 digits", "00000000000000000000", false},
		{"letters", "4242424242424a42", false},
		{"tab", "4242424242424242\t", false},
		{"dot", "4242.4242.4242.4242", false},
		{"unicode digits", "٤٢٤٢٤٢٤٢٤٢٤٢٤٢٤٢", false},
		{"empty", "", false},
		{"only dashes", "----", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := validCard(tc.number).Validate(testNow)
			if tc.valid {
				require.NoError(t, err)
				return
			}
			fields := fieldErrors(t, err)
			require.Contains(t, fields, "card.number")
			require.Len(t, fields, 1)
			if d := strings.Trim(tc.number, " -"); len(d) >= 5 {
				require.NotContains(t, err.Error(), d)
			}
		})
	}
}

func TestCardValidateExpiry(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		ts, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		return ts
	}
	for _, tc := range []struct {
		name        string
		month, year int
		now         time.Time
		field, msg  string // empty when valid
	}{
		{"this month", 3, 2026, testNow, "", ""},
		{"next month", 4, 2026, testNow, "", ""},
		{"next year, earlier month", 1, 2027, testNow, "", ""},
		{"last month", 2, 2026, testNow, "card.exp_year", "the card has expired"},
		{"last year, later month", 12, 2025, testNow, "card.exp_year", "the card has expired"},
		{"last day of the month", 3, 2026, at("2026-03-31T23:59:59Z"), "", ""},
		// Still March 31 at UTC-12: somewhere the card has not expired.
		{"first hours of the next month in UTC", 3, 2026, at("2026-04-01T11:59:59Z"), "", ""},
		{"next month everywhere", 3, 2026, at("2026-04-01T12:00:00Z"), "card.exp_year", "the card has expired"},
		{"december, new year everywhere", 12, 2026, at("2027-01-01T12:00:00Z"), "card.exp_year", "the card has expired"},
		{"december, new year east of UTC", 12, 2026, at("2027-01-01T05:00:00+09:00"), "", ""},
		{"month 0", 0, 2030, testNow, "card.exp_month", "must be between 1 and 12"},
		{"month 13", 13, 2030, testNow, "card.exp_month", "must be between 1 and 12"},
		{"negative month", -1, 2030, testNow, "card.exp_month", "must be between 1 and 12"},
		{"two-digit year", 12, 30, testNow, "card.exp_year", "must have four digits"},
		{"five-digit year", 12, 10000, testNow, "card.exp_year", "must have four digits"},
		{"zero year", 12, 0, testNow, "card.exp_year", "must have four digits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := validCard(provider.TestCardSucceeds)
			c.ExpMonth, c.ExpYear = tc.month, tc.year
			err := c.Validate(tc.now)
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			require.Equal(t, map[string]string{tc.field: tc.msg}, fieldErrors(t, err))
		})
	}
}

func TestCardValidateCVC(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		cvc   string
		valid bool
	}{
		{"123", true},
		{"1234", true},
		{"000", true},
		{"", false},
		{"12", false},
		{"12345", false},
		{"12a", false},
		{" 123", false},
		{"-12", false},
	} {
		t.Run(fmt.Sprintf("%q", tc.cvc), func(t *testing.T) {
			t.Parallel()
			c := validCard(provider.TestCardSucceeds)
			c.CVC = tc.cvc
			err := c.Validate(testNow)
			if tc.valid {
				require.NoError(t, err)
				return
			}
			require.Equal(t, map[string]string{"card.cvc": "must be 3 or 4 digits"}, fieldErrors(t, err))
		})
	}
}

func TestCardValidateReportsEveryField(t *testing.T) {
	t.Parallel()
	err := provider.Card{Number: "4242424242424241", ExpMonth: 13, ExpYear: 26, CVC: "1"}.Validate(testNow)
	require.Equal(t, map[string]string{
		"card.number":    "is not a valid card number",
		"card.exp_month": "must be between 1 and 12",
		"card.exp_year":  "must have four digits",
		"card.cvc":       "must be 3 or 4 digits",
	}, fieldErrors(t, err))
	require.Equal(t, "validation_failed", strata.ErrorReason(err))
	require.NotContains(t, err.Error(), "424242")
}

func TestCardNormalize(t *testing.T) {
	t.Parallel()
	c := provider.Card{Number: " 4242-4242 4242-4242 ", ExpMonth: 1, ExpYear: 2030, CVC: "123"}
	require.Equal(t, provider.Card{Number: "4242424242424242", ExpMonth: 1, ExpYear: 2030, CVC: "123"}, c.Normalize())
	require.Equal(t, "4242x", provider.Card{Number: "4242x"}.Normalize().Number)
}

func TestCardBrand(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ number, brand string }{
		{"4242424242424242", provider.BrandVisa},
		{"4000 0566 5566 5556", provider.BrandVisa},
		{"5555555555554444", provider.BrandMastercard},
		{"5105-1051-0510-5100", provider.BrandMastercard},
		{"2223003122003222", provider.BrandMastercard},
		{"2720990000000007", provider.BrandMastercard},
		{"2721000000000004", provider.BrandUnknown},
		{"2220990000000008", provider.BrandUnknown},
		{"5600000000000003", provider.BrandUnknown},
		{"378282246310005", provider.BrandAmex},
		{"371449635398431", provider.BrandAmex},
		{"6011111111111117", provider.BrandDiscover},
		{"6445644564456445", provider.BrandDiscover},
		{"6500000000000002", provider.BrandDiscover},
		{"6430000000000000", provider.BrandUnknown},
		{"3056930009020004", provider.BrandUnknown}, // Diners Club
		{"3566002020360505", provider.BrandUnknown}, // JCB
		{"42", provider.BrandUnknown},
		{"", provider.BrandUnknown},
		{"4242abcd42424242", provider.BrandUnknown},
	} {
		require.Equal(t, tc.brand, provider.Card{Number: tc.number}.Brand(), tc.number)
	}
}

func TestCardLast4(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ number, last4 string }{
		{"4242424242424242", "4242"},
		{"4242 4242 4242 4241", "4241"}, // not Luhn-valid: still its last 4
		{"378282246310005", "0005"},
		{"000000000000", "0000"},
		{"00000000000", ""}, // too short to show any digit
		{"4242", ""},
		{"", ""},
		{"4242424242424x42", ""},
	} {
		require.Equal(t, tc.last4, provider.Card{Number: tc.number}.Last4(), tc.number)
	}
}

// longDigits finds runs of digits longer than the last 4 (or a year).
var longDigits = regexp.MustCompile(`[0-9]{5,}`)

func TestCardNeverShowsItsNumber(t *testing.T) {
	t.Parallel()
	card := provider.Card{Number: "4242 4242 4242 4242", ExpMonth: 12, ExpYear: 2030, CVC: "735"}
	req := provider.ChargeRequest{IdempotencyKey: "pi_1", Amount: strata.Money{Amount: 999, Currency: "USD"}, Card: card}
	type wrapper struct {
		Card  provider.Card
		Cards []provider.Card
		Ptr   *provider.Card
		Map   map[string]provider.Card
	}
	w := wrapper{Card: card, Cards: []provider.Card{card}, Ptr: &card, Map: map[string]provider.Card{"k": card}}

	outputs := map[string]string{
		"String":   card.String(),
		"Sprint":   fmt.Sprint(card),
		"Sprintln": fmt.Sprintln(card, &card),
		"pointer":  fmt.Sprintf("%v", &card),
		"error":    fmt.Errorf("charge %v: %w", card, errors.New("x")).Error(),
	}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%x", "%X", "%20v", "%-8s"} {
		outputs[verb] = fmt.Sprintf(verb, card)
		outputs["request "+verb] = fmt.Sprintf(verb, req)
		outputs["wrapper "+verb] = fmt.Sprintf(verb, w)
	}
	noTime := &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}
	for name, h := range map[string]func(*bytes.Buffer) slog.Handler{
		"slog json": func(b *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(b, noTime) },
		"slog text": func(b *bytes.Buffer) slog.Handler { return slog.NewTextHandler(b, noTime) },
	} {
		var b bytes.Buffer
		log := slog.New(h(&b))
		log.Info("charge", "card", card, "card_ptr", &card, "request", req, "wrapper", w)
		log.Info("charge", slog.Any("card", card), slog.Group("g", "card", card))
		outputs[name] = b.String()
	}
	for name, v := range map[string]any{"card": card, "request": req, "wrapper": w} {
		b, err := json.Marshal(v)
		require.NoError(t, err)
		outputs["json "+name] = string(b)
	}

	for name, out := range outputs {
		require.Contains(t, out, "4242", name)
		require.NotContains(t, out, "4242424242424242", name)
		require.NotContains(t, out, "4242 4242", name)
		require.NotContains(t, out, "735", name)
		if !strings.Contains(name, "%x") && !strings.Contains(name, "%X") { // other fields in hex
			require.Empty(t, longDigits.FindAllString(out, -1), "%s: %s", name, out)
		}
	}
	require.Equal(t, "visa ****4242", card.String())
	require.Equal(t, "visa ****4242", fmt.Sprintf("%v", card))
	require.Equal(t, "visa ****4242", fmt.Sprintf("%+v", card))
	require.Equal(t, `"visa ****4242"`, fmt.Sprintf("%q", card))
	require.Equal(t, `{"brand":"visa","last4":"4242"}`, outputs["json card"])
	require.Contains(t, outputs["slog json"], `"card":"visa ****4242"`)
	require.Equal(t, "unknown ****", provider.Card{Number: "12"}.String())
}

// TestCardDecodesFromJSON: only encoding is redacted.
func TestCardDecodesFromJSON(t *testing.T) {
	t.Parallel()
	var c provider.Card
	require.NoError(t, json.Unmarshal([]byte(`{"number":"4242 4242 4242 4242","exp_month":12,"exp_year":2030,"cvc":"123"}`), &c))
	require.Equal(t, provider.Card{Number: "4242 4242 4242 4242", ExpMonth: 12, ExpYear: 2030, CVC: "123"}, c)
	require.NoError(t, c.Validate(testNow))
}

// luhn is a second implementation of the check, for the fuzz test.
func luhn(n string) bool {
	doubled := [10]int{0, 2, 4, 6, 8, 1, 3, 5, 7, 9}
	sum := 0
	for i := range n {
		d := int(n[len(n)-1-i] - '0')
		if i%2 == 1 {
			d = doubled[d]
		}
		sum += d
	}
	return sum%10 == 0
}

func FuzzCardNumber(f *testing.F) {
	for _, s := range []string{
		"4242424242424242", "4242 4242 4242 4242", "4242-4242-4242-4242", "4242424242424241",
		"378282246310005", "000000000000", "6011000000000000001", "", "-", "4242x", "٤٢٤٢",
		"00000000000000000000", " 4000 0000 0000 0259 ",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, number string) {
		c := provider.Card{Number: number, ExpMonth: 12, ExpYear: 2099, CVC: "123"}
		err := c.Validate(testNow)
		s, last4, brand := c.String(), c.Last4(), c.Brand()
		digits := strings.NewReplacer(" ", "", "-", "").Replace(number)
		allDigits := !strings.ContainsFunc(digits, func(r rune) bool { return r < '0' || r > '9' })
		// A secret worth hiding: five digits or more.
		secret := allDigits && len(digits) >= 5
		if err == nil {
			if len(digits) < provider.MinCardDigits || len(digits) > provider.MaxCardDigits {
				t.Fatalf("%q validated with %d digits", number, len(digits))
			}
			if !allDigits {
				t.Fatalf("%q validated with a non-digit", number)
			}
			if !luhn(digits) {
				t.Fatalf("%q validated but fails the Luhn check", number)
			}
			if last4 != digits[len(digits)-4:] || s != brand+" ****"+last4 {
				t.Fatalf("%q: String %q, Last4 %q", number, s, last4)
			}
		} else if secret && strings.Contains(err.Error(), digits) {
			t.Fatalf("the error for %q shows the number: %v", number, err)
		}
		if secret && strings.Contains(s, digits) {
			t.Fatalf("String shows the number %q: %q", number, s)
		}
		if len(last4) != 0 && len(last4) != 4 {
			t.Fatalf("Last4 of %q is %q", number, last4)
		}
	})
}
