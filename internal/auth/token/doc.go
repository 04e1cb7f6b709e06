// Package token issues and verifies access tokens: short-lived EdDSA
// (Ed25519) JWTs signed with rotating keys, checked locally without a
// database call.
//
// A token's header has alg EdDSA, typ JWT and the kid of its key; its claims
// are iss, aud (a single string), sub (a usr ID), sid (the session), roles,
// jti, iat, nbf and exp, in whole seconds.
//
// Keys rotate with overlap. Each Key signs from NotBefore until RetireAt and
// verifies until ExpiresAt, which is at least one token lifetime after
// RetireAt; the JWKS lists every key that still verifies, so a new key is
// published before it signs and an old one stays until its last token has
// expired. Private keys are stored sealed (Sealer, AES-256-GCM with the kid
// as additional data) under a master key kept outside the database.
//
// Ring holds an instance's current KeySet, refreshed from the database every
// refreshEvery (Run) and read without locks. A token with an unknown kid
// makes it reload at once, so a key another instance just created is
// accepted, but at most once a second however many such tokens arrive:
// random kids cannot hammer the database.
//
// Verifier invariants:
//   - Only alg EdDSA with a kid of the ring is accepted; none, HS256 (also
//     with the public key as the HMAC secret), RS256 and every other alg are
//     token_algorithm_invalid before any key is looked up.
//   - exp, iat, iss, aud and sub are required; exp, nbf and iat are checked
//     with the configured leeway.
//   - Every failure is a CodeUnauthenticated *strata.Error with one of the
//     Reason* constants and a message safe to show.
//   - Verified tokens are cached (otter, bounded, each entry expiring with
//     its token), keyed by the raw token. A hit still checks exp against the
//     clock and that the key is still in the ring, so a cached token expires
//     on time and removing a key revokes its cached tokens at the next
//     refresh.
//
// Cost on the 2-core reference machine: a token seen for the first time
// costs its Ed25519 verification (about 51 µs idle) plus 10–15% for parsing
// and claims; a cached one 0.2–0.3 µs with no allocation. Signing is about
// 40 µs. BenchmarkEd25519Verify is the floor to compare BenchmarkVerifyCold
// with when the machine is busy.
package token
