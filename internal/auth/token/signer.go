package token

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/stratadev/strata"
)

// Claims are what an access token says about its bearer.
type Claims struct {
	UserID    strata.ID
	SessionID strata.ID
	Roles     []strata.Role
	// ID is the jti; Sign draws a random one when it is empty.
	ID string
	// IssuedAt and ExpiresAt default to now and now+ttl. Tokens carry whole
	// seconds, so both are truncated to the second.
	IssuedAt, ExpiresAt time.Time
}

// Signer issues access tokens. It is safe for concurrent use.
type Signer struct {
	issuer, audience string
	ttl              time.Duration
	clock            strata.Clock
}

// NewSigner returns a Signer whose tokens carry iss issuer and aud audience
// and live for ttl unless the claims say otherwise.
func NewSigner(issuer, audience string, ttl time.Duration, clock strata.Clock) *Signer {
	return &Signer{issuer: issuer, audience: audience, ttl: ttl, clock: clock}
}

// Sign returns a JWT for c signed with ks's signing key (EdDSA, header kid
// and typ JWT) and its expiry. The claims are iss, aud (one string), sub
// (the user id), sid, roles, jti, iat, nbf (= iat) and exp. exp never passes
// the key's ExpiresAt, so no token outlives the key that can verify it.
//
// Sign returns CodeUnavailable with reason "signing_key_unavailable" when ks
// has no key to sign with, and CodeInternal when c is unusable (a UserID that
// is not a usr id, or an exp not after iat).
func (s *Signer) Sign(ks *KeySet, c Claims) (token string, exp time.Time, err error) {
	key, ok := ks.Signing()
	if !ok {
		return "", time.Time{}, &strata.Error{
			Code: strata.CodeUnavailable, Reason: "signing_key_unavailable",
			Message: "signing in is temporarily unavailable", Err: errors.New("sign token: no signing key"),
		}
	}
	if _, err := strata.ParseID(string(c.UserID), "usr"); err != nil {
		return "", time.Time{}, strata.Internal(fmt.Errorf("sign token: user id %q: %w", c.UserID, err))
	}
	iat := c.IssuedAt
	if iat.IsZero() {
		iat = s.clock.Now()
	}
	iat = iat.Truncate(time.Second)
	exp = c.ExpiresAt
	if exp.IsZero() {
		exp = iat.Add(s.ttl)
	}
	exp = exp.Truncate(time.Second)
	if limit := key.ExpiresAt.Truncate(time.Second); exp.After(limit) {
		exp = limit
	}
	if !exp.After(iat) {
		return "", time.Time{}, strata.Internal(fmt.Errorf("sign token: exp %v not after iat %v", exp, iat))
	}
	jti := c.ID
	if jti == "" {
		var b [16]byte
		_, _ = rand.Read(b[:]) // never fails since Go 1.24
		jti = base64.RawURLEncoding.EncodeToString(b[:])
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, signClaims{
		Issuer: s.issuer, Subject: string(c.UserID), Audience: s.audience,
		ExpiresAt: exp.Unix(), NotBefore: iat.Unix(), IssuedAt: iat.Unix(),
		ID: jti, SessionID: string(c.SessionID), Roles: c.Roles,
	})
	t.Header["kid"] = key.ID
	token, err = t.SignedString(key.Private)
	if err != nil {
		return "", time.Time{}, strata.Internal(fmt.Errorf("sign token with key %s: %w", key.ID, err))
	}
	return token, exp, nil
}

// signClaims is the payload Sign writes. It has its own type because
// jwt.RegisteredClaims writes a single audience as an array unless a
// package-level variable of jwt is changed.
type signClaims struct {
	Issuer    string        `json:"iss"`
	Subject   string        `json:"sub"`
	Audience  string        `json:"aud"`
	ExpiresAt int64         `json:"exp"`
	NotBefore int64         `json:"nbf"`
	IssuedAt  int64         `json:"iat"`
	ID        string        `json:"jti"`
	SessionID string        `json:"sid,omitempty"`
	Roles     []strata.Role `json:"roles,omitempty"`
}

var _ jwt.Claims = signClaims{}

func (c signClaims) GetExpirationTime() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.ExpiresAt, 0)), nil
}

func (c signClaims) GetIssuedAt() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.IssuedAt, 0)), nil
}

func (c signClaims) GetNotBefore() (*jwt.NumericDate, error) {
	return jwt.NewNumericDate(time.Unix(c.NotBefore, 0)), nil
}

func (c signClaims) GetIssuer() (string, error)             { return c.Issuer, nil }
func (c signClaims) GetSubject() (string, error)            { return c.Subject, nil }
func (c signClaims) GetAudience() (jwt.ClaimStrings, error) { return jwt.ClaimStrings{c.Audience}, nil }
