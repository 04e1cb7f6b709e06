package token

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"
)

// Key is one Ed25519 signing key and its life cycle:
//
//	NotBefore ── signs ──▶ RetireAt ── verifies only ──▶ ExpiresAt
//
// It is published in the JWKS and verifies tokens from the moment it is
// loaded until ExpiresAt, so it can be published before NotBefore.
// ExpiresAt must lie at least one token lifetime after RetireAt, so that no
// token the key signed outlives it (the Signer also clamps exp to it).
type Key struct {
	// ID is the kid header of the tokens it signs.
	ID string
	// Private is nil for a key this instance may only verify with.
	Private ed25519.PrivateKey
	Public  ed25519.PublicKey
	// NotBefore is when the key may start signing.
	NotBefore time.Time
	// RetireAt is when the key stops signing.
	RetireAt time.Time
	// ExpiresAt is when the key leaves the JWKS and stops verifying.
	ExpiresAt time.Time
}

// GenerateKey creates a fresh Ed25519 key that signs from now for signFor
// and keeps verifying for verifyFor after that. To publish a key before it
// signs (so that every instance knows it when its first token arrives),
// pass a now in the future; verifyFor should be at least the access-token
// lifetime.
func GenerateKey(id string, now time.Time, signFor, verifyFor time.Duration) (Key, error) {
	if id == "" {
		return Key{}, errors.New("generate key: empty id")
	}
	if signFor <= 0 || verifyFor <= 0 {
		return Key{}, fmt.Errorf("generate key %s: signFor and verifyFor must be positive", id)
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Key{}, fmt.Errorf("generate key %s: %w", id, err)
	}
	retire := now.Add(signFor)
	return Key{ID: id, Private: priv, Public: pub, NotBefore: now, RetireAt: retire, ExpiresAt: retire.Add(verifyFor)}, nil
}

// String describes k without its key material, so that printing or logging
// a Key never leaks the private half.
func (k Key) String() string {
	return fmt.Sprintf("token.Key{ID: %q, NotBefore: %s, RetireAt: %s, ExpiresAt: %s, private: %t}",
		k.ID, k.NotBefore.Format(time.RFC3339), k.RetireAt.Format(time.RFC3339), k.ExpiresAt.Format(time.RFC3339), k.Private != nil)
}

// GoString is String, for %#v.
func (k Key) GoString() string { return k.String() }

// check reports why k cannot be used, filling in Public from Private when it
// is missing.
func (k *Key) check() error {
	if k.ID == "" {
		return errors.New("empty kid")
	}
	if k.Private != nil {
		if len(k.Private) != ed25519.PrivateKeySize {
			return fmt.Errorf("key %s: private key has %d bytes", k.ID, len(k.Private))
		}
		pub := k.Private.Public().(ed25519.PublicKey)
		if k.Public == nil {
			k.Public = pub
		} else if !bytes.Equal(pub, k.Public) {
			return fmt.Errorf("key %s: public key does not match private key", k.ID)
		}
	}
	if len(k.Public) != ed25519.PublicKeySize {
		return fmt.Errorf("key %s: public key has %d bytes", k.ID, len(k.Public))
	}
	if !k.ExpiresAt.After(k.NotBefore) || k.RetireAt.After(k.ExpiresAt) {
		return fmt.Errorf("key %s: want NotBefore < ExpiresAt and RetireAt <= ExpiresAt", k.ID)
	}
	return nil
}

// KeySet is an immutable snapshot of the keys known at one instant: the one
// to sign with, the ones to verify with, and the JWKS document. It is safe
// for concurrent use.
type KeySet struct {
	signing Key
	canSign bool
	verify  map[string]Key
	jwks    []byte
}

// NewKeySet builds the snapshot of keys as of now. Keys that are unusable
// (empty kid, wrong sizes, a public half that does not match the private
// one, inverted times) and repeated kids after the first are left out; Ring
// reports them.
func NewKeySet(keys []Key, now time.Time) *KeySet {
	ks, _ := newKeySet(keys, now)
	return ks
}

func newKeySet(keys []Key, now time.Time) (*KeySet, error) {
	var errs []error
	ks := &KeySet{verify: make(map[string]Key, len(keys))}
	live := make([]Key, 0, len(keys))
	for _, k := range keys {
		if err := k.check(); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := ks.verify[k.ID]; dup {
			errs = append(errs, fmt.Errorf("key %s: duplicate kid", k.ID))
			continue
		}
		if !now.Before(k.ExpiresAt) {
			continue
		}
		ks.verify[k.ID] = k
		live = append(live, k)
		if k.Private != nil && !now.Before(k.NotBefore) && now.Before(k.RetireAt) && (!ks.canSign || newer(k, ks.signing)) {
			ks.signing, ks.canSign = k, true
		}
	}
	slices.SortFunc(live, func(a, b Key) int {
		if newer(a, b) {
			return -1
		}
		return 1
	})
	ks.jwks = marshalJWKS(live)
	return ks, errors.Join(errs...)
}

// newer orders keys by NotBefore, then by kid so that the order is total.
func newer(a, b Key) bool {
	if !a.NotBefore.Equal(b.NotBefore) {
		return a.NotBefore.After(b.NotBefore)
	}
	return a.ID > b.ID
}

// Signing returns the key to sign new tokens with: of the keys with a private
// half and NotBefore <= now < RetireAt, the one with the latest NotBefore.
func (ks *KeySet) Signing() (Key, bool) { return ks.signing, ks.canSign }

// Lookup returns the public key with the given kid, if it is still
// verifiable (now < ExpiresAt).
func (ks *KeySet) Lookup(kid string) (ed25519.PublicKey, bool) {
	k, ok := ks.verify[kid]
	return k.Public, ok
}

func (ks *KeySet) key(kid string) (Key, bool) {
	k, ok := ks.verify[kid]
	return k, ok
}

// JWKS returns the RFC 7517 JSON Web Key Set of the verifiable keys, newest
// first, ready to serve at /.well-known/jwks.json. The slice is shared: do
// not modify it.
func (ks *KeySet) JWKS() []byte { return ks.jwks }

type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
}

func marshalJWKS(keys []Key) []byte {
	doc := struct {
		Keys []jwk `json:"keys"`
	}{Keys: make([]jwk, 0, len(keys))}
	for _, k := range keys {
		doc.Keys = append(doc.Keys, jwk{
			Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(k.Public),
			Kid: k.ID, Use: "sig", Alg: "EdDSA",
		})
	}
	b, err := json.Marshal(doc)
	if err != nil {
		panic("token: marshal JWKS: " + err.Error()) // strings and slices always marshal
	}
	return b
}
