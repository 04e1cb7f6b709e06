package webhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stratadev/strata/internal/payments/webhook"
	"github.com/stretchr/testify/require"
)

// The vectors' inputs.
const (
	vecSecret  = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZoo2M7Q1p2R7AQhz6WJ8Y"
	vecSecret2 = "whsec_c2Vjb25kLXNlY3JldC1mb3ItdGhlLXJvdGF0aW9uLXRlc3Q"
	vecT       = 1700000000
	vecBody    = `{"id":"evt_0000000000000000000000000","type":"purchase.completed","created":1700000000,"data":{"amount":1000}}`
)

// independentSign is a second implementation, written from the spec and
// not from Sign: HMAC-SHA256 over the string "<t>.<body>" built with
// Sprintf, formatted with %x.
func independentSign(secret string, t int64, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	fmt.Fprintf(m, "%d.%s", t, body)
	return fmt.Sprintf("%x", m.Sum(nil))
}

func TestSignatureVectors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		secret string
		t      int64
		body   string
		// want was computed once with openssl:
		//   printf '%s.%s' "$T" "$BODY" | openssl dgst -sha256 -hmac "$SECRET"
		want string
	}{
		{"envelope", vecSecret, vecT, vecBody, "e8bdac4c2dfeee07186a78a4346bcbd3f6880962ebe9d2d11cf44768f789d876"},
		{"second secret", vecSecret2, vecT, vecBody, "5b37f751ec7da518faff71e407fb63e4e682255e8bb61bf151539a3b77fea633"},
		// printf '%s.%s' 1 '' | openssl dgst -sha256 -hmac k
		{"empty body", "k", 1, "", "37c39ff90c9eaf98b76f1cf1a38399fa408e930f34e04a5179d0dc6489fe9c78"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := webhook.Sign([]byte(tc.secret), time.Unix(tc.t, 0), []byte(tc.body))
			require.Equal(t, tc.want, got, "against openssl")
			require.Equal(t, independentSign(tc.secret, tc.t, tc.body), got, "against the independent implementation")
		})
	}
	// The header, during a rotation: the new secret's v1 first.
	h := webhook.Header(time.Unix(vecT, 0), []byte(vecBody), []byte(vecSecret), []byte(vecSecret2))
	require.Equal(t, "t=1700000000,v1=e8bdac4c2dfeee07186a78a4346bcbd3f6880962ebe9d2d11cf44768f789d876,"+
		"v1=5b37f751ec7da518faff71e407fb63e4e682255e8bb61bf151539a3b77fea633", h)
}

func TestVerify(t *testing.T) {
	t.Parallel()
	sent := time.Unix(vecT, 0)
	body := []byte(vecBody)
	one := [][]byte{[]byte(vecSecret)}
	good := "t=1700000000,v1=" + independentSign(vecSecret, vecT, vecBody)
	rotating := webhook.Header(sent, body, []byte(vecSecret2), []byte(vecSecret))
	tests := []struct {
		name    string
		header  string
		body    []byte
		secrets [][]byte
		now     time.Time
		want    error
	}{
		{"valid", good, body, one, sent, nil},
		{"valid, 4m59s late", good, body, one, sent.Add(4*time.Minute + 59*time.Second), nil},
		{"valid, clock 4m behind", good, body, one, sent.Add(-4 * time.Minute), nil},
		{"old", good, body, one, sent.Add(5*time.Minute + time.Second), webhook.ErrTimestampOutOfTolerance},
		{"hours old", good, body, one, sent.Add(3 * time.Hour), webhook.ErrTimestampOutOfTolerance},
		{"from the future", good, body, one, sent.Add(-6 * time.Minute), webhook.ErrTimestampOutOfTolerance},
		{"tampered body", good, []byte(strings.Replace(vecBody, "1000", "9000", 1)), one, sent, webhook.ErrSignatureMismatch},
		{"tampered t", strings.Replace(good, "t=1700000000", "t=1700000001", 1), body, one, sent, webhook.ErrSignatureMismatch},
		{"wrong secret", good, body, [][]byte{[]byte(vecSecret2)}, sent, webhook.ErrSignatureMismatch},
		{"no secrets", good, body, nil, sent, webhook.ErrSignatureMismatch},
		{"rotation, new secret", rotating, body, [][]byte{[]byte(vecSecret2)}, sent, nil},
		{"rotation, old secret", rotating, body, one, sent, nil},
		{"rotation, either", rotating, body, [][]byte{[]byte("whsec_other"), []byte(vecSecret)}, sent, nil},
		{"spaces and unknown schemes", " t=1700000000 , v0=abc, v2=zz ,v1=" + independentSign(vecSecret, vecT, vecBody), body, one, sent, nil},
		{"v0 only: downgrade", "t=1700000000,v0=" + independentSign(vecSecret, vecT, vecBody), body, one, sent, webhook.ErrNoSignature},
		{"v1 not hex", "t=1700000000,v1=" + strings.Repeat("zz", 32), body, one, sent, webhook.ErrNoSignature},
		{"v1 too short", "t=1700000000,v1=abcd", body, one, sent, webhook.ErrNoSignature},
		{"uppercase hex", "t=1700000000,v1=" + strings.ToUpper(independentSign(vecSecret, vecT, vecBody)), body, one, sent, nil},
		{"empty", "", body, one, sent, webhook.ErrHeaderMalformed},
		{"no t", "v1=" + independentSign(vecSecret, vecT, vecBody), body, one, sent, webhook.ErrHeaderMalformed},
		{"t not a number", "t=soon,v1=" + independentSign(vecSecret, vecT, vecBody), body, one, sent, webhook.ErrHeaderMalformed},
		{"t twice", "t=1,t=1700000000,v1=" + independentSign(vecSecret, vecT, vecBody), body, one, sent, webhook.ErrHeaderMalformed},
		{"too long", good + "," + strings.Repeat("x", 5000), body, one, sent, webhook.ErrHeaderMalformed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := webhook.Verify(tc.header, tc.body, tc.secrets, tc.now, 5*time.Minute)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
		})
	}
	// A tolerance of zero means the default, 5 minutes.
	require.NoError(t, webhook.Verify(good, body, one, sent.Add(4*time.Minute), 0))
	require.ErrorIs(t, webhook.Verify(good, body, one, sent.Add(6*time.Minute), 0), webhook.ErrTimestampOutOfTolerance)
}

func TestNewSecret(t *testing.T) {
	t.Parallel()
	a, b := webhook.NewSecret(), webhook.NewSecret()
	require.NotEqual(t, a, b)
	for _, s := range []string{a, b} {
		rest, ok := strings.CutPrefix(s, webhook.SecretPrefix)
		require.True(t, ok, s)
		raw, err := base64.RawURLEncoding.DecodeString(rest)
		require.NoError(t, err)
		require.Len(t, raw, 32)
	}
}

// FuzzVerify feeds Verify arbitrary headers: it must not panic, and it
// accepts only a header carrying the true signature.
func FuzzVerify(f *testing.F) {
	body := []byte(vecBody)
	f.Add("t=1700000000,v1=" + independentSign(vecSecret, vecT, vecBody))
	f.Add("t=1700000000,v1=00,v1=" + strings.Repeat("a", 64))
	f.Add("t=-1,v1=")
	f.Add(",,,=,t=,v1=,")
	f.Fuzz(func(t *testing.T, header string) {
		err := webhook.Verify(header, body, [][]byte{[]byte(vecSecret)}, time.Unix(vecT, 0), time.Hour)
		if err == nil {
			require.Contains(t, strings.ToLower(header), independentSign(vecSecret, vecT, vecBody))
		}
	})
}
