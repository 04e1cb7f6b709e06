package content

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/stratadev/strata"
)

// MinSigningKeyBytes is the shortest URL-signing secret accepted.
const MinSigningKeyBytes = 32

// SigningKey is one secret of the URL signer, named by an id that travels
// in every URL it signs, so keys can rotate: a new key signs while the old
// one still verifies the URLs already handed out.
type SigningKey struct {
	ID     string
	Secret []byte
}

// ParseSigningKeys reads keys written "id:base64secret" (standard or URL
// base64, padded or not). Ids are 1 to 16 letters, digits, '-' or '_';
// secrets are at least MinSigningKeyBytes long; ids are unique.
func ParseSigningKeys(specs []string) ([]SigningKey, error) {
	var keys []SigningKey
	seen := map[string]bool{}
	for _, spec := range specs {
		id, enc, ok := strings.Cut(strings.TrimSpace(spec), ":")
		if !ok || !validKeyID(id) {
			return nil, fmt.Errorf("a signing key must be written id:base64secret with an id of 1-16 letters, digits, '-' or '_'")
		}
		if seen[id] {
			return nil, fmt.Errorf("signing key id %q appears twice", id)
		}
		seen[id] = true
		secret, err := decodeBase64(enc)
		if err != nil {
			return nil, fmt.Errorf("signing key %q: the secret is not base64", id)
		}
		if len(secret) < MinSigningKeyBytes {
			return nil, fmt.Errorf("signing key %q: the secret must be at least %d bytes, got %d", id, MinSigningKeyBytes, len(secret))
		}
		keys = append(keys, SigningKey{ID: id, Secret: secret})
	}
	return keys, nil
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, fmt.Errorf("not base64")
}

func validKeyID(id string) bool {
	if id == "" || len(id) > 16 {
		return false
	}
	for _, c := range id {
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '-' && c != '_' {
			return false
		}
	}
	return true
}

// DeriveSigningKey derives a URL-signing key from the deployment's master
// key, for deployments that configure none: every instance sharing the
// master key derives the same secret.
func DeriveSigningKey(masterKey []byte) SigningKey {
	mac := hmac.New(sha256.New, masterKey)
	mac.Write([]byte("strata content url signing v1"))
	return SigningKey{ID: "m1", Secret: mac.Sum(nil)}
}

// URLSigner signs and verifies expiring download URLs with HMAC-SHA256.
// The signature covers the path, the expiry and the user the URL was made
// for; the query carries exp (unix seconds), u (the user id, empty for an
// anonymous download), kid and sig (unpadded URL base64 of the MAC). It is
// safe for concurrent use.
type URLSigner struct {
	active   SigningKey
	byID     map[string][]byte
	lifetime time.Duration
}

// NewURLSigner returns a signer whose first key signs and all keys verify;
// URLs live for lifetime.
func NewURLSigner(keys []SigningKey, lifetime time.Duration) (*URLSigner, error) {
	if len(keys) == 0 {
		return nil, fmt.Errorf("url signer: no keys")
	}
	if lifetime <= 0 {
		return nil, fmt.Errorf("url signer: the lifetime must be positive")
	}
	s := &URLSigner{active: keys[0], byID: make(map[string][]byte, len(keys)), lifetime: lifetime}
	for _, k := range keys {
		if !validKeyID(k.ID) || len(k.Secret) < MinSigningKeyBytes {
			return nil, fmt.Errorf("url signer: key %q is malformed or shorter than %d bytes", k.ID, MinSigningKeyBytes)
		}
		if _, dup := s.byID[k.ID]; dup {
			return nil, fmt.Errorf("url signer: key id %q appears twice", k.ID)
		}
		s.byID[k.ID] = k.Secret
	}
	return s, nil
}

// Lifetime is how long a signed URL stays valid.
func (s *URLSigner) Lifetime() time.Duration { return s.lifetime }

// Sign returns the query that makes path valid for user until now plus
// the lifetime (rounded up to the second), and that expiry.
func (s *URLSigner) Sign(path string, user strata.ID, now time.Time) (string, time.Time) {
	exp := now.Add(s.lifetime).Add(time.Second - 1).Truncate(time.Second)
	expS := strconv.FormatInt(exp.Unix(), 10)
	sig := mac(s.active.Secret, expiringTag, path, expS, string(user))
	q := "exp=" + expS + "&u=" + url.QueryEscape(string(user)) + "&kid=" + s.active.ID + "&sig=" + sig
	return q, exp
}

// SignPublic returns the query that makes path valid for anyone, for as
// long as the signing key is listed: the URL of a public preview, the same
// on every call, so caches see one URL per preview.
func (s *URLSigner) SignPublic(path string) string {
	return "kid=" + s.active.ID + "&sig=" + mac(s.active.Secret, publicTag, path, "", "")
}

// VerifyPublic checks a query made by SignPublic.
func (s *URLSigner) VerifyPublic(path string, q url.Values) error {
	if len(q["kid"]) > 1 || len(q["sig"]) > 1 {
		return errSigMalform
	}
	kid, sig := q.Get("kid"), q.Get("sig")
	if kid == "" || sig == "" {
		return errSigMissing
	}
	secret, ok := s.byID[kid]
	if !ok {
		return errSigKey
	}
	if !hmac.Equal([]byte(sig), []byte(mac(secret, publicTag, path, "", ""))) {
		return errSigInvalid
	}
	return nil
}

// Version tags that begin every MAC, so that a public signature can never
// pass for an expiring one, nor the reverse.
const (
	expiringTag = "strata-cdn-v1"
	publicTag   = "strata-cdn-public-v1"
)

// Errors of Verify; all are permission_denied (403).
var (
	errSigMissing  = &strata.Error{Code: strata.CodePermissionDenied, Reason: "signature_missing", Message: "the URL is not signed"}
	errSigKey      = &strata.Error{Code: strata.CodePermissionDenied, Reason: "signature_key_unknown", Message: "the URL was signed with an unknown key"}
	errSigInvalid  = &strata.Error{Code: strata.CodePermissionDenied, Reason: "signature_invalid", Message: "the URL's signature does not match"}
	errSigExpired  = &strata.Error{Code: strata.CodePermissionDenied, Reason: "signature_expired", Message: "the URL has expired; ask for a new one"}
	errSigForeign  = &strata.Error{Code: strata.CodePermissionDenied, Reason: "signature_foreign", Message: "the URL was issued to another user"}
	errSigMalform  = &strata.Error{Code: strata.CodePermissionDenied, Reason: "signature_malformed", Message: "the URL's signature parameters are malformed"}
	sigQueryParams = []string{"exp", "u", "kid", "sig"}
)

// Verify checks the signature query q of path at now and returns the user
// the URL was made for ("" for anonymous). The MAC is checked before the
// expiry, so an altered expiry reads as a bad signature.
func (s *URLSigner) Verify(path string, q url.Values, now time.Time) (strata.ID, error) {
	for _, k := range sigQueryParams {
		if len(q[k]) > 1 {
			return "", errSigMalform
		}
	}
	expS, user, kid, sig := q.Get("exp"), q.Get("u"), q.Get("kid"), q.Get("sig")
	if expS == "" || kid == "" || sig == "" {
		return "", errSigMissing
	}
	secret, ok := s.byID[kid]
	if !ok {
		return "", errSigKey
	}
	if !hmac.Equal([]byte(sig), []byte(mac(secret, expiringTag, path, expS, user))) {
		return "", errSigInvalid
	}
	exp, err := strconv.ParseInt(expS, 10, 64)
	if err != nil {
		return "", errSigMalform // signed, yet not a number: not ours
	}
	if now.Unix() >= exp {
		return "", errSigExpired
	}
	return strata.ID(user), nil
}

// mac is the signature of (path, expiry, user), each field on its own line
// after a version tag, so no field can run into the next.
func mac(secret []byte, tag, path, exp, user string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(tag + "\n"))
	m.Write([]byte(path))
	m.Write([]byte{'\n'})
	m.Write([]byte(exp))
	m.Write([]byte{'\n'})
	m.Write([]byte(user))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}
