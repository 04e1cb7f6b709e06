package password

import (
	_ "embed"
	"errors"
	"fmt"
	"strings"
	"sync"
	"unicode"
	"unicode/utf8"

	"github.com/stratadev/strata"
)

// Policy says which new passwords are acceptable. The zero MaxLength means
// no upper bound; use DefaultPolicy rather than the zero Policy.
type Policy struct {
	// MinLength is the least number of characters, counted in runes (code
	// points), since that is roughly what a person counts.
	MinLength int
	// MaxLength is the largest size in bytes, since bytes are what hashing
	// and request bodies cost. 256 bytes leave room for 64 characters of any
	// script, which NIST SP 800-63B asks verifiers to accept at least.
	MaxLength int
}

// DefaultPolicy returns the policy for new passwords: at least 10 characters,
// at most 256 bytes.
func DefaultPolicy() Policy {
	return Policy{MinLength: 10, MaxLength: 256}
}

// Validate checks a configured policy. Error texts name the setting at fault
// (password-min-length, password-max-length).
func (p Policy) Validate() error {
	var errs []error
	if p.MinLength < 8 {
		errs = append(errs, fmt.Errorf("password-min-length must be at least 8, got %d", p.MinLength))
	}
	if p.MaxLength < 64 || p.MaxLength < p.MinLength {
		errs = append(errs, fmt.Errorf("password-max-length must be at least 64 and at least password-min-length, got %d", p.MaxLength))
	}
	return errors.Join(errs...)
}

// Check returns nil when plain is an acceptable new password, and otherwise a
// CodeInvalid *strata.Error with one field error on "password" and one of
// the reasons password_too_long, password_too_short, password_common (plain
// is on the bundled list of the 10,000 most common passwords, compared
// case-insensitively) or password_contains_identity.
//
// related lists what identifies the user, such as the email address and the
// display name. Check refuses a password that contains, case-insensitively,
// the local part of an email address, a whole name, or any word of either
// that is at least 4 characters long.
func (p Policy) Check(plain string, related ...string) error {
	if p.MaxLength > 0 && len(plain) > p.MaxLength {
		return policyError("password_too_long", fmt.Sprintf("must be at most %d bytes long", p.MaxLength))
	}
	if utf8.RuneCountInString(plain) < p.MinLength {
		return policyError("password_too_short", fmt.Sprintf("must be at least %d characters long", p.MinLength))
	}
	lower := strings.ToLower(plain)
	if _, ok := commonPasswords()[lower]; ok {
		return policyError("password_common", "is one of the most common passwords; choose one that is harder to guess")
	}
	for _, r := range related {
		for _, part := range identityParts(r) {
			if strings.Contains(lower, part) {
				return policyError("password_contains_identity", "must not contain your name or email address")
			}
		}
	}
	return nil
}

// minIdentityPart is the shortest part of a name or email that Check looks
// for; shorter ones ("al", "bob") occur in too many good passwords.
const minIdentityPart = 4

// identityParts returns the lowercase parts of s that a password must not
// contain: for an email address its local part, otherwise s itself, plus
// each word of it, keeping only those of at least minIdentityPart runes.
func identityParts(s string) []string {
	s = strings.ToLower(strings.TrimSpace(s))
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		s = s[:i]
	}
	var parts []string
	if utf8.RuneCountInString(s) >= minIdentityPart {
		parts = append(parts, s)
	}
	words := strings.FieldsFunc(s, func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
	for _, w := range words {
		if w != s && utf8.RuneCountInString(w) >= minIdentityPart {
			parts = append(parts, w)
		}
	}
	return parts
}

func policyError(reason, message string) *strata.Error {
	e := strata.Invalid("password", message)
	e.Reason = reason
	return e
}

// commonPasswordsFile is the bundled list; README.md gives its source and
// licence.
//
//go:embed common-passwords.txt
var commonPasswordsFile string

// commonPasswords builds the lowercase set of the bundled list on first use,
// so that importing the package costs nothing.
var commonPasswords = sync.OnceValue(func() map[string]struct{} {
	set := make(map[string]struct{}, 10000)
	for line := range strings.Lines(commonPasswordsFile) {
		if w := strings.TrimRight(line, "\r\n"); w != "" {
			set[strings.ToLower(w)] = struct{}{}
		}
	}
	return set
})
