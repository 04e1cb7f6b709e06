package password

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"fmt"
	"runtime"
	"time"

	"github.com/stratadev/strata"
	"golang.org/x/crypto/argon2"
)

// Hasher hashes and verifies passwords with argon2id, running at most a fixed
// number of hashes at once. It is safe for concurrent use.
type Hasher struct {
	params Params
	// sem holds one token per running hash. Each hash takes Params.Memory KiB
	// and one core per thread, so this bounds the memory and CPU that logins
	// can take however many arrive.
	sem chan struct{}
	// dummy is an encoded hash of a random key under params; VerifyDummy
	// checks against it so that it costs exactly what Verify costs.
	dummy string
}

// NewHasher returns a Hasher that hashes new passwords with p and runs at
// most maxConcurrent hashes at once (runtime.NumCPU() when maxConcurrent is
// zero or less).
//
// NewHasher does not call p.Validate, so that tests can use cheap
// parameters; production code validates its configuration first. It panics
// when argon2 cannot run with p at all (a zero Time, Threads, SaltLen or
// KeyLen, or Memory above 1 GiB), which is a programming error.
func NewHasher(p Params, maxConcurrent int) *Hasher {
	if err := p.runnable(); err != nil {
		panic("password: NewHasher: " + err.Error())
	}
	if maxConcurrent <= 0 {
		maxConcurrent = runtime.NumCPU()
	}
	return &Hasher{
		params: p,
		sem:    make(chan struct{}, maxConcurrent),
		dummy:  encode(p, randomBytes(p.SaltLen), randomBytes(p.KeyLen)),
	}
}

// Params returns the parameters h hashes new passwords with.
func (h *Hasher) Params() Params { return h.params }

// Hash returns the PHC-encoded argon2id hash of plain under a fresh random
// salt. It returns a CodeUnavailable error with reason "overloaded" when ctx
// ends before a hashing slot frees up.
func (h *Hasher) Hash(ctx context.Context, plain string) (string, error) {
	salt := randomBytes(h.params.SaltLen)
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	key := argon2.IDKey([]byte(plain), salt, h.params.Time, h.params.Memory, h.params.Threads, h.params.KeyLen)
	return encode(h.params, salt, key), nil
}

// Verify reports whether plain matches the PHC-encoded hash, comparing in
// constant time. When it matches and the hash was made with parameters other
// than h's, rehash is true: the caller should store a fresh Hash(plain).
//
// Verify returns a CodeInternal error when encoded is not a well-formed
// argon2id hash (a corrupt stored row), and a CodeUnavailable error with
// reason "overloaded" when ctx ends before a hashing slot frees up. A wrong
// password is ok false with a nil error.
func (h *Hasher) Verify(ctx context.Context, encoded, plain string) (ok, rehash bool, err error) {
	p, salt, want, err := decode(encoded)
	if err != nil {
		return false, false, strata.Internal(fmt.Errorf("verify password: %w", err))
	}
	if err := h.acquire(ctx); err != nil {
		return false, false, err
	}
	defer h.release()
	got := argon2.IDKey([]byte(plain), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	ok = subtle.ConstantTimeCompare(got, want) == 1
	return ok, ok && p != h.params, nil
}

// VerifyDummy does the work of a Verify that fails: it checks plain against
// a hash of a random key made with h's parameters. Call it when the account
// does not exist, so that an unknown email costs the same time as a wrong
// password and response times do not reveal which accounts exist. Its only
// error is the "overloaded" one Verify returns, which the caller should
// answer exactly as it would for a real account.
func (h *Hasher) VerifyDummy(ctx context.Context, plain string) error {
	_, _, err := h.Verify(ctx, h.dummy, plain)
	return err
}

func (h *Hasher) acquire(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return overloaded(err)
	}
	select {
	case h.sem <- struct{}{}:
		return nil
	case <-ctx.Done():
		return overloaded(ctx.Err())
	}
}

func (h *Hasher) release() { <-h.sem }

func overloaded(cause error) *strata.Error {
	return &strata.Error{
		Code:       strata.CodeUnavailable,
		Reason:     "overloaded",
		Message:    "too many sign-ins are in progress; try again shortly",
		RetryAfter: time.Second,
		Err:        cause,
	}
}

func randomBytes(n uint32) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never returns an error since Go 1.24
	return b
}
