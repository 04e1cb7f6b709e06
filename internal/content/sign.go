package content

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"hash"
	"io"
	"net/url"
	"strconv"
	"strings"
	"sync"
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
	active   *keyState
	byID     map[string]*keyState
	lifetime time.Duration
}

// keyState is a key with a pool of MAC states keyed with it, so that
// verifying a URL allocates no HMAC.
type keyState struct {
	id   string
	pool sync.Pool // of hash.Hash
}

func newKeyState(k SigningKey) *keyState {
	secret := bytes.Clone(k.Secret)
	return &keyState{id: k.ID, pool: sync.Pool{New: func() any { return hmac.New(sha256.New, secret) }}}
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
	s := &URLSigner{byID: make(map[string]*keyState, len(keys)), lifetime: lifetime}
	for _, k := range keys {
		if !validKeyID(k.ID) || len(k.Secret) < MinSigningKeyBytes {
			return nil, fmt.Errorf("url signer: key %q is malformed or shorter than %d bytes", k.ID, MinSigningKeyBytes)
		}
		if _, dup := s.byID[k.ID]; dup {
			return nil, fmt.Errorf("url signer: key id %q appears twice", k.ID)
		}
		s.byID[k.ID] = newKeyState(k)
	}
	s.active = s.byID[keys[0].ID]
	return s, nil
}

// Lifetime is how long a signed URL stays valid.
func (s *URLSigner) Lifetime() time.Duration { return s.lifetime }

// Sign returns the query that makes path valid for user until now plus
// the lifetime (rounded up to the second), and that expiry.
func (s *URLSigner) Sign(path string, user strata.ID, now time.Time) (string, time.Time) {
	exp := now.Add(s.lifetime).Add(time.Second - 1).Truncate(time.Second)
	expS := strconv.FormatInt(exp.Unix(), 10)
	var sum [sha256.Size]byte
	s.active.mac(sum[:0], expiringTag, path, expS, string(user))
	q := "exp=" + expS + "&u=" + url.QueryEscape(string(user)) + "&kid=" + s.active.id + "&sig=" +
		base64.RawURLEncoding.EncodeToString(sum[:])
	return q, exp
}

// SignPublic returns the query that makes path valid for anyone, for as
// long as the signing key is listed: the URL of a public preview, the same
// on every call, so caches see one URL per preview.
func (s *URLSigner) SignPublic(path string) string {
	var sum [sha256.Size]byte
	s.active.mac(sum[:0], publicTag, path, "", "")
	return "kid=" + s.active.id + "&sig=" + base64.RawURLEncoding.EncodeToString(sum[:])
}

// Version tags that begin every MAC, so that a public signature can never
// pass for an expiring one, nor the reverse.
const (
	expiringTag = "strata-cdn-v1"
	publicTag   = "strata-cdn-public-v1"
)

// Errors of Verify; all are permission_denied (403).
var (
	errSigMissing = &strata.Error{Code: strata.CodePermissionDenied, Reason: "signature_missing", Message: "the URL is not signed"}
	errSigKey     = &strata.Error{Code: strata.CodePermissionDenied, Reason: "signature_key_unknown", Message: "the URL was signed with an unknown key"}
	errSigInvalid = &strata.Error{Code: strata.CodePermissionDenied, Reason: "signature_invalid", Message: "the URL's signature does not match"}
	errSigExpired = &strata.Error{Code: strata.CodePermissionDenied, Reason: "signature_expired", Message: "the URL has expired; ask for a new one"}
	errSigForeign = &strata.Error{Code: strata.CodePermissionDenied, Reason: "signature_foreign", Message: "the URL was issued to another user"}
	errSigMalform = &strata.Error{Code: strata.CodePermissionDenied, Reason: "signature_malformed", Message: "the URL's signature parameters are malformed"}
)

// sigParams are the signature parameters of a query.
type sigParams struct {
	exp, user, kid, sig string
}

// parseSigQuery reads exp, u, kid and sig from a raw query without
// building a map (other parameters are ignored); a repeated one, or one
// whose escaping is broken, is malformed.
func parseSigQuery(raw string) (sigParams, error) {
	var p sigParams
	var seen uint8
	for raw != "" {
		var kv string
		kv, raw, _ = strings.Cut(raw, "&")
		k, v, _ := strings.Cut(kv, "=")
		var dst *string
		var bit uint8
		switch k {
		case "exp":
			dst, bit = &p.exp, 1
		case "u":
			dst, bit = &p.user, 2
		case "kid":
			dst, bit = &p.kid, 4
		case "sig":
			dst, bit = &p.sig, 8
		default:
			continue
		}
		if seen&bit != 0 {
			return p, errSigMalform
		}
		seen |= bit
		if strings.ContainsAny(v, "%+") {
			uv, err := url.QueryUnescape(v)
			if err != nil {
				return p, errSigMalform
			}
			v = uv
		}
		*dst = v
	}
	return p, nil
}

// Verify checks the signature query q of path at now; see VerifyQuery.
func (s *URLSigner) Verify(path string, q url.Values, now time.Time) (strata.ID, error) {
	p, err := paramsOf(q)
	if err != nil {
		return "", err
	}
	return s.verify(path, p, now)
}

// VerifyQuery checks the raw signature query of path at now and returns
// the user the URL was made for ("" for anonymous). The MAC is checked
// before the expiry, so an altered expiry reads as a bad signature.
func (s *URLSigner) VerifyQuery(path, rawQuery string, now time.Time) (strata.ID, error) {
	p, err := parseSigQuery(rawQuery)
	if err != nil {
		return "", err
	}
	return s.verify(path, p, now)
}

func (s *URLSigner) verify(path string, p sigParams, now time.Time) (strata.ID, error) {
	if p.exp == "" || p.kid == "" || p.sig == "" {
		return "", errSigMissing
	}
	if err := s.check(p, expiringTag, path, p.exp, p.user); err != nil {
		return "", err
	}
	exp, err := strconv.ParseInt(p.exp, 10, 64)
	if err != nil {
		return "", errSigMalform // signed, yet not a number: not ours
	}
	if now.Unix() >= exp {
		return "", errSigExpired
	}
	return strata.ID(p.user), nil
}

// VerifyPublic checks a query made by SignPublic.
func (s *URLSigner) VerifyPublic(path string, q url.Values) error {
	p, err := paramsOf(q)
	if err != nil {
		return err
	}
	return s.verifyPublic(path, p)
}

// VerifyPublicQuery checks a raw query made by SignPublic.
func (s *URLSigner) VerifyPublicQuery(path, rawQuery string) error {
	p, err := parseSigQuery(rawQuery)
	if err != nil {
		return err
	}
	return s.verifyPublic(path, p)
}

func (s *URLSigner) verifyPublic(path string, p sigParams) error {
	if p.kid == "" || p.sig == "" {
		return errSigMissing
	}
	return s.check(p, publicTag, path, "", "")
}

// check compares p.sig with the MAC of the fields under p.kid, in
// constant time.
func (s *URLSigner) check(p sigParams, tag, path, exp, user string) error {
	k, ok := s.byID[p.kid]
	if !ok {
		return errSigKey
	}
	var got [sha256.Size]byte
	if base64.RawURLEncoding.DecodedLen(len(p.sig)) != len(got) {
		return errSigInvalid
	}
	if _, err := base64.RawURLEncoding.Decode(got[:], []byte(p.sig)); err != nil {
		return errSigInvalid
	}
	var want [sha256.Size]byte
	k.mac(want[:0], tag, path, exp, user)
	if !hmac.Equal(got[:], want[:]) {
		return errSigInvalid
	}
	return nil
}

func paramsOf(q url.Values) (sigParams, error) {
	for _, k := range []string{"exp", "u", "kid", "sig"} {
		if len(q[k]) > 1 {
			return sigParams{}, errSigMalform
		}
	}
	return sigParams{exp: q.Get("exp"), user: q.Get("u"), kid: q.Get("kid"), sig: q.Get("sig")}, nil
}

// mac appends to dst the MAC of (path, expiry, user), each field on its
// own line after a version tag, so no field can run into the next.
func (k *keyState) mac(dst []byte, tag, path, exp, user string) []byte {
	m := k.pool.Get().(hash.Hash)
	m.Reset()
	io.WriteString(m, tag)
	m.Write(newline)
	io.WriteString(m, path)
	m.Write(newline)
	io.WriteString(m, exp)
	m.Write(newline)
	io.WriteString(m, user)
	dst = m.Sum(dst)
	k.pool.Put(m)
	return dst
}

var newline = []byte{'\n'}
