package webhook

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// SignatureHeader is the request header carrying the signature.
const SignatureHeader = "Strata-Signature"

// DefaultTolerance is how far a signature's timestamp may be from the
// receiver's clock, either way, by default: 5 minutes, as Stripe's.
const DefaultTolerance = 5 * time.Minute

// SecretPrefix starts every signing secret.
const SecretPrefix = "whsec_"

// maxHeader bounds the signature header Verify parses.
const maxHeader = 4096

// Sign returns the v1 signature of body sent at t: the lowercase hex
// HMAC-SHA256, keyed by secret, of "<unix seconds of t>.<body>".
//
// The key is the secret as the receiver was shown it, "whsec_..." prefix
// included, taken as bytes (as Stripe does): receivers pass the string to
// their HMAC function unchanged, without decoding it.
func Sign(secret []byte, t time.Time, body []byte) string {
	mac := hmac.New(sha256.New, secret)
	mac.Write(strconv.AppendInt(nil, t.Unix(), 10))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Header returns the Strata-Signature value of body sent at t:
// "t=<unix seconds>,v1=<hex>" with one v1 per secret, in order (during a
// rotation the new secret's first, then the previous one's).
func Header(t time.Time, body []byte, secrets ...[]byte) string {
	var b strings.Builder
	b.WriteString("t=")
	b.WriteString(strconv.FormatInt(t.Unix(), 10))
	for _, s := range secrets {
		b.WriteString(",v1=")
		b.WriteString(Sign(s, t, body))
	}
	return b.String()
}

// The errors of Verify; test with errors.Is.
var (
	// ErrHeaderMalformed: the header is missing, too long, or has no
	// valid t.
	ErrHeaderMalformed = errors.New("webhook signature: malformed header")
	// ErrNoSignature: the header has no v1 signature (other schemes are
	// ignored).
	ErrNoSignature = errors.New("webhook signature: no v1 signature")
	// ErrSignatureMismatch: no v1 value matches the body under any secret.
	ErrSignatureMismatch = errors.New("webhook signature: no signature matches the body")
	// ErrTimestampOutOfTolerance: the signature is valid but its t is too
	// far in the past or the future: a replayed or delayed request.
	ErrTimestampOutOfTolerance = errors.New("webhook signature: timestamp outside the tolerance")
)

// Verify checks a Strata-Signature header against the raw body, as a
// receiver does: it accepts when any v1 value equals the signature of body
// under any of secrets (compared in constant time), and t is within
// tolerance of now either way (tolerance <= 0 means DefaultTolerance).
// Schemes other than v1 are ignored, so a downgraded header fails.
// Its errors wrap ErrHeaderMalformed, ErrNoSignature, ErrSignatureMismatch
// or ErrTimestampOutOfTolerance.
func Verify(header string, body []byte, secrets [][]byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultTolerance
	}
	ts, sigs, err := parseHeader(header)
	if err != nil {
		return err
	}
	t := time.Unix(ts, 0)
	matched := false
	for _, secret := range secrets {
		want, _ := hex.DecodeString(Sign(secret, t, body))
		for _, sig := range sigs {
			if hmac.Equal(want, sig) {
				matched = true
			}
		}
	}
	if !matched {
		return ErrSignatureMismatch
	}
	if d := now.Sub(t); d > tolerance || d < -tolerance {
		return fmt.Errorf("%w: t is %s from now, tolerance %s", ErrTimestampOutOfTolerance, d.Round(time.Second), tolerance)
	}
	return nil
}

// parseHeader reads "t=<unix>,v1=<hex>,..." into the timestamp and the
// decoded v1 signatures. Unknown keys are skipped, as are v1 values that
// are not 64 hex digits.
func parseHeader(header string) (int64, [][]byte, error) {
	if header == "" {
		return 0, nil, fmt.Errorf("%w: empty", ErrHeaderMalformed)
	}
	if len(header) > maxHeader {
		return 0, nil, fmt.Errorf("%w: longer than %d bytes", ErrHeaderMalformed, maxHeader)
	}
	var ts int64
	var haveT bool
	var sigs [][]byte
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		switch k {
		case "t":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 || haveT {
				return 0, nil, fmt.Errorf("%w: bad or repeated t", ErrHeaderMalformed)
			}
			ts, haveT = n, true
		case "v1":
			if len(v) != 2*sha256.Size {
				continue
			}
			if sig, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, sig)
			}
		}
	}
	if !haveT {
		return 0, nil, fmt.Errorf("%w: no t", ErrHeaderMalformed)
	}
	if len(sigs) == 0 {
		return 0, nil, ErrNoSignature
	}
	return ts, sigs, nil
}

// secretBytes is the number of random bytes of a secret.
const secretBytes = 32

// NewSecret returns a fresh signing secret: "whsec_" and the unpadded
// base64url encoding of 32 random bytes.
func NewSecret() string {
	b := make([]byte, secretBytes)
	if _, err := rand.Read(b); err != nil {
		panic("webhook: crypto/rand failed: " + err.Error()) // never happens on supported platforms
	}
	return SecretPrefix + base64.RawURLEncoding.EncodeToString(b)
}
