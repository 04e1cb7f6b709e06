package password

import (
	"errors"
	"strings"
	"testing"

	"github.com/stratadev/strata"
	"github.com/stretchr/testify/require"
)

func TestPolicyCheck(t *testing.T) {
	t.Parallel()
	const email = "ada.lovelace@example.com"
	tests := []struct {
		name    string
		plain   string
		related []string
		reason  string // "" when acceptable
	}{
		{"ok", "correct horse battery staple", []string{email, "Ada Lovelace"}, ""},
		{"ok at min length", "xk7#pq2!mz", nil, ""},
		{"ok ten runes of four bytes each", strings.Repeat("🔑", 9) + "x", nil, ""},
		{"ok at max length", strings.Repeat("xk7#pq2!", 32), nil, ""},
		{"empty", "", nil, "password_too_short"},
		{"short", "abc123", nil, "password_too_short"},
		{"nine characters", "xk7#pq2!m", nil, "password_too_short"},
		{"nine runes in eighteen bytes", strings.Repeat("é", 9), nil, "password_too_short"},
		{"long", strings.Repeat("xk7#pq2!", 32) + "x", nil, "password_too_long"},
		{"long in multibyte", strings.Repeat("🔑", 65), nil, "password_too_long"},
		{"common", "1234567890", nil, "password_common"},
		{"common in another case", "QwErTyUiOp", nil, "password_common"},
		{"common upper case", "PASSWORD123", nil, "password_common"},
		{"common long", "1qaz2wsx3edc", nil, "password_common"},
		{"contains email local part", "my ada.lovelace pass", []string{email}, "password_contains_identity"},
		{"contains a word of the email", "ilovelovelace99", []string{email}, "password_contains_identity"},
		{"contains the name, other case", "xx-LOVELACE-2024", []string{"Ada Lovelace"}, "password_contains_identity"},
		{"contains whole name", "adalovelace is great", []string{"Ada Lovelace", email}, "password_contains_identity"},
		{"short local part is allowed", "bob-likes-long-walks", []string{"bob@example.com"}, ""},
		{"short name word is allowed", "ada-likes-long-walks", []string{"Ada Lovelace"}, ""},
		{"email domain is allowed", "example.com rocks 7!", []string{email}, ""},
		{"empty related", "correct horse battery staple", []string{"", "  "}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := DefaultPolicy().Check(tt.plain, tt.related...)
			if tt.reason == "" {
				require.NoError(t, err)
				return
			}
			var se *strata.Error
			require.True(t, errors.As(err, &se), "got %v", err)
			require.Equal(t, strata.CodeInvalid, se.Code)
			require.Equal(t, tt.reason, se.Reason)
			require.Len(t, se.Fields, 1)
			require.Equal(t, "password", se.Fields[0].Field)
			require.NotEmpty(t, se.Fields[0].Message)
			if tt.plain != "" {
				require.NotContains(t, se.Error(), tt.plain, "the password never appears in the error")
			}
		})
	}
}

func TestPolicyCommonListLoaded(t *testing.T) {
	t.Parallel()
	set := commonPasswords()
	require.Greater(t, len(set), 9900, "the bundled list has 10,000 entries, 9,913 distinct in lower case")
	for _, w := range []string{"password", "123456", "qwerty", "letmein", "iloveyou"} {
		require.Contains(t, set, w)
	}
	for w := range set {
		require.Equal(t, strings.ToLower(w), w)
		require.NotContains(t, w, "\r")
	}
}

func TestPolicyCommonWithLowMinimum(t *testing.T) {
	t.Parallel()
	p := Policy{MinLength: 6, MaxLength: 64}
	err := p.Check("LetMeIn")
	require.Equal(t, "password_common", strata.ErrorReason(err))
}

func TestPolicyValidate(t *testing.T) {
	t.Parallel()
	require.NoError(t, DefaultPolicy().Validate())
	require.ErrorContains(t, Policy{MinLength: 6, MaxLength: 256}.Validate(), "password-min-length")
	require.ErrorContains(t, Policy{MinLength: 10, MaxLength: 32}.Validate(), "password-max-length")
	require.ErrorContains(t, Policy{MinLength: 100, MaxLength: 64}.Validate(), "password-max-length")
}

// FuzzPolicyCheck feeds arbitrary (untrusted) passwords and identities: Check
// must not panic, and any error is a CodeInvalid *strata.Error on "password".
func FuzzPolicyCheck(f *testing.F) {
	f.Add("correct horse battery staple", "ada.lovelace@example.com")
	f.Add("1234567890", "")
	f.Add("\xff\xfe\xfd\xfc\xfb\xfa\xf9\xf8\xf7\xf6", "@@@")
	f.Add("ÅDA LOVELACE!!", "Åda Lovelace")
	f.Fuzz(func(t *testing.T, plain, related string) {
		err := DefaultPolicy().Check(plain, related)
		if err == nil {
			return
		}
		var se *strata.Error
		require.True(t, errors.As(err, &se))
		require.Equal(t, strata.CodeInvalid, se.Code)
		require.Len(t, se.Fields, 1)
		require.Equal(t, "password", se.Fields[0].Field)
	})
}
