package token

import (
	"context"
	"crypto/ed25519"
	"errors"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/maypok86/otter/v2"
	"github.com/stratadev/strata"
)

// maxTokenLen bounds what Verify parses; our tokens are about 450 bytes.
const maxTokenLen = 8 << 10

// The rejection reasons of Verify. Clients may switch on them.
const (
	ReasonMalformed        = "token_malformed"
	ReasonAlgorithmInvalid = "token_algorithm_invalid"
	ReasonUnknownKey       = "token_unknown_key"
	ReasonSignatureInvalid = "token_signature_invalid"
	ReasonExpired          = "token_expired"
	ReasonNotYetValid      = "token_not_yet_valid"
	ReasonIssuerInvalid    = "token_issuer_invalid"
	ReasonAudienceInvalid  = "token_audience_invalid"
	ReasonSubjectInvalid   = "token_subject_invalid"
)

var messages = map[string]string{
	ReasonMalformed:        "the access token is malformed",
	ReasonAlgorithmInvalid: "the access token uses a signing algorithm that is not accepted",
	ReasonUnknownKey:       "the access token was signed with an unknown key",
	ReasonSignatureInvalid: "the access token signature is invalid",
	ReasonExpired:          "the access token has expired",
	ReasonNotYetValid:      "the access token is not valid yet",
	ReasonIssuerInvalid:    "the access token was issued by someone else",
	ReasonAudienceInvalid:  "the access token is meant for another service",
	ReasonSubjectInvalid:   "the access token does not name a user",
}

func reject(reason string, cause error) *strata.Error {
	return &strata.Error{Code: strata.CodeUnauthenticated, Reason: reason, Message: messages[reason], Err: cause}
}

var (
	errAlgorithm  = errors.New("alg is not EdDSA")
	errUnknownKey = errors.New("kid is not a verifiable key")
	// errCrit refuses tokens with critical header extensions, none of which
	// we implement (RFC 7515 §4.1.11).
	errCrit         = errors.New("crit header present")
	errMissingClaim = errors.New("a required claim (exp or iat) is missing")
)

// Verifier checks access tokens against a Ring. It is safe for concurrent
// use.
type Verifier struct {
	ring             *Ring
	issuer, audience string
	leeway           time.Duration
	clock            strata.Clock
	parser           *jwt.Parser
	// cache maps a raw token that verified to its principal; nil when
	// disabled.
	cache *otter.Cache[string, *verified]
}

type verified struct {
	principal *strata.Principal
	kid       string
	// deadline is exp+leeway: from then on the token is expired.
	deadline time.Time
	// ttl is how long the cache keeps the entry.
	ttl time.Duration
}

// NewVerifier returns a Verifier that accepts EdDSA tokens signed by a key of
// ring, issued by issuer for audience, allowing leeway of clock skew on exp,
// nbf and iat. It remembers up to cacheSize verified tokens until they
// expire; zero or less disables the cache.
func NewVerifier(ring *Ring, issuer, audience string, leeway time.Duration, clock strata.Clock, cacheSize int) *Verifier {
	v := &Verifier{
		ring: ring, issuer: issuer, audience: audience, leeway: leeway, clock: clock,
		// Claims are checked below, in an order that gives each failure
		// its own reason; strict decoding gives every token one spelling.
		parser: jwt.NewParser(jwt.WithoutClaimsValidation(), jwt.WithStrictDecoding()),
	}
	if cacheSize > 0 {
		v.cache = otter.Must(&otter.Options[string, *verified]{
			MaximumSize: cacheSize,
			ExpiryCalculator: otter.ExpiryCreatingFunc(func(e otter.Entry[string, *verified]) time.Duration {
				return e.Value.ttl
			}),
		})
	}
	return v
}

// Verify checks raw and returns the principal it proves. Every failure is a
// CodeUnauthenticated *strata.Error whose Reason is one of the Reason
// constants. The returned principal may be shared with other callers that
// presented the same token: do not modify it.
//
// A token seen before is answered from the cache, after checking again that
// it has not expired and that its key is still verifiable, so expiry and key
// removal apply to cached tokens too.
func (v *Verifier) Verify(ctx context.Context, raw string) (*strata.Principal, error) {
	if raw == "" {
		return nil, reject(ReasonMalformed, errors.New("empty token"))
	}
	if len(raw) > maxTokenLen {
		return nil, reject(ReasonMalformed, errors.New("token too long"))
	}
	now := v.clock.Now()
	if v.cache != nil {
		if e, ok := v.cache.GetIfPresent(raw); ok {
			if !now.Before(e.deadline) {
				v.cache.Invalidate(raw)
				return nil, reject(ReasonExpired, nil)
			}
			if _, ok := v.liveKey(e.kid, now); !ok {
				v.cache.Invalidate(raw)
				return nil, reject(ReasonUnknownKey, errUnknownKey)
			}
			return e.principal, nil
		}
	}
	e, err := v.verify(ctx, raw, now)
	if err != nil {
		return nil, err
	}
	if v.cache != nil && e.ttl > 0 {
		v.cache.Set(raw, e)
	}
	return e.principal, nil
}

// claims is the payload Verify reads; aud may be a string or an array.
type claims struct {
	jwt.RegisteredClaims
	SessionID string        `json:"sid"`
	Roles     []strata.Role `json:"roles"`
}

func (v *Verifier) verify(ctx context.Context, raw string, now time.Time) (*verified, error) {
	var (
		c   claims
		kid string
	)
	_, err := v.parser.ParseWithClaims(raw, &c, func(t *jwt.Token) (any, error) {
		if alg, _ := t.Header["alg"].(string); alg != jwt.SigningMethodEdDSA.Alg() || t.Method != jwt.SigningMethodEdDSA {
			return nil, errAlgorithm
		}
		if _, ok := t.Header["crit"]; ok {
			return nil, errCrit
		}
		kid, _ = t.Header["kid"].(string)
		pub, ok := v.publicKey(ctx, kid, now)
		if !ok {
			return nil, errUnknownKey
		}
		return pub, nil
	})
	switch {
	case err == nil:
	case errors.Is(err, errAlgorithm):
		return nil, reject(ReasonAlgorithmInvalid, err)
	case errors.Is(err, errUnknownKey):
		return nil, reject(ReasonUnknownKey, err)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return nil, reject(ReasonMalformed, err)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return nil, reject(ReasonSignatureInvalid, err)
	case errors.Is(err, errCrit):
		return nil, reject(ReasonMalformed, err)
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return nil, reject(ReasonAlgorithmInvalid, err) // alg missing, or unknown to jwt
	default:
		return nil, reject(ReasonMalformed, err)
	}

	if c.ExpiresAt == nil || c.IssuedAt == nil {
		return nil, reject(ReasonMalformed, errMissingClaim)
	}
	deadline := c.ExpiresAt.Add(v.leeway)
	if !now.Before(deadline) {
		return nil, reject(ReasonExpired, nil)
	}
	late := now.Add(v.leeway)
	if late.Before(c.IssuedAt.Time) || (c.NotBefore != nil && late.Before(c.NotBefore.Time)) {
		return nil, reject(ReasonNotYetValid, nil)
	}
	if c.Issuer != v.issuer {
		return nil, reject(ReasonIssuerInvalid, nil)
	}
	if !slices.Contains(c.Audience, v.audience) {
		return nil, reject(ReasonAudienceInvalid, nil)
	}
	uid, err := strata.ParseID(c.Subject, "usr")
	if err != nil {
		return nil, reject(ReasonSubjectInvalid, err)
	}
	var sid strata.ID
	if c.SessionID != "" {
		if sid, err = strata.ParseID(c.SessionID, strata.ID(c.SessionID).Prefix()); err != nil {
			return nil, reject(ReasonMalformed, err)
		}
	}
	// A role this version does not know (from a newer signer during a
	// rolling deploy) grants nothing rather than failing the request.
	roles := slices.DeleteFunc(c.Roles, func(r strata.Role) bool { return !r.Valid() })
	return &verified{
		principal: &strata.Principal{UserID: uid, SessionID: sid, Roles: roles, ExpiresAt: c.ExpiresAt.UTC()},
		kid:       kid,
		deadline:  deadline,
		ttl:       deadline.Sub(now),
	}, nil
}

// publicKey returns the verifiable key kid. An unknown kid makes the ring
// reload, at most once a second, in case the key is new.
func (v *Verifier) publicKey(ctx context.Context, kid string, now time.Time) (ed25519.PublicKey, bool) {
	if kid == "" {
		return nil, false
	}
	if k, ok := v.ring.Current().key(kid); ok {
		return k.Public, now.Before(k.ExpiresAt)
	}
	if err := v.ring.refreshUnknownKid(ctx); err != nil {
		return nil, false
	}
	return v.liveKey(kid, now)
}

// liveKey returns the public key kid if the current set has it and it has
// not expired by now (the set may be up to a refresh interval old).
func (v *Verifier) liveKey(kid string, now time.Time) (ed25519.PublicKey, bool) {
	k, ok := v.ring.Current().key(kid)
	if !ok || !now.Before(k.ExpiresAt) {
		return nil, false
	}
	return k.Public, true
}
