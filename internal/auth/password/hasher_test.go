package password

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stretchr/testify/require"
)

// cheap are parameters that hash in well under a millisecond, for tests
// that are about behaviour and not about cost.
var cheap = Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func newTestHasher(t *testing.T, p Params, maxConcurrent int) *Hasher {
	t.Helper()
	return NewHasher(p, maxConcurrent)
}

func TestHashVerifyRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newTestHasher(t, cheap, 0)

	enc, err := h.Hash(ctx, "correct horse battery staple")
	require.NoError(t, err)
	require.Regexp(t, `^\$argon2id\$v=19\$m=64,t=1,p=1\$[A-Za-z0-9+/]{22}\$[A-Za-z0-9+/]{43}$`, enc)

	ok, rehash, err := h.Verify(ctx, enc, "correct horse battery staple")
	require.NoError(t, err)
	require.True(t, ok)
	require.False(t, rehash)

	ok, rehash, err = h.Verify(ctx, enc, "correct horse battery stapler")
	require.NoError(t, err)
	require.False(t, ok)
	require.False(t, rehash)

	again, err := h.Hash(ctx, "correct horse battery staple")
	require.NoError(t, err)
	require.NotEqual(t, enc, again, "each hash has its own salt")
}

func TestHashVerifyDefaultParams(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	h := newTestHasher(t, DefaultParams(), 0)
	require.NoError(t, DefaultParams().Validate())

	enc, err := h.Hash(ctx, "Tr0ub4dor&3 is not enough")
	require.NoError(t, err)
	require.Contains(t, enc, "$argon2id$v=19$m=19456,t=2,p=1$")

	ok, rehash, err := h.Verify(ctx, enc, "Tr0ub4dor&3 is not enough")
	require.NoError(t, err)
	require.True(t, ok)
	require.False(t, rehash)
}

// TestVerifyReferenceVector checks interoperability: the hash of "password"
// with salt "somesalt" from the argon2 reference implementation's tests.
func TestVerifyReferenceVector(t *testing.T) {
	t.Parallel()
	const ref = "$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ$CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	h := newTestHasher(t, cheap, 0)
	ok, rehash, err := h.Verify(t.Context(), ref, "password")
	require.NoError(t, err)
	require.True(t, ok)
	require.True(t, rehash, "the reference parameters differ from cheap")
}

func TestVerifyRehash(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	old := newTestHasher(t, cheap, 0)
	enc, err := old.Hash(ctx, "a long enough password")
	require.NoError(t, err)

	tests := []struct {
		name   string
		params Params
		rehash bool
	}{
		{"same params", cheap, false},
		{"more memory", Params{Memory: 128, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}, true},
		{"more passes", Params{Memory: 64, Time: 2, Threads: 1, SaltLen: 16, KeyLen: 32}, true},
		{"more threads", Params{Memory: 64, Time: 1, Threads: 2, SaltLen: 16, KeyLen: 32}, true},
		{"longer salt", Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 32, KeyLen: 32}, true},
		{"longer key", Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 64}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := newTestHasher(t, tt.params, 0)
			ok, rehash, err := h.Verify(ctx, enc, "a long enough password")
			require.NoError(t, err)
			require.True(t, ok, "old hashes keep verifying")
			require.Equal(t, tt.rehash, rehash)

			ok, rehash, err = h.Verify(ctx, enc, "the wrong password")
			require.NoError(t, err)
			require.False(t, ok)
			require.False(t, rehash, "rehash only on success")
		})
	}
}

func TestVerifyMalformed(t *testing.T) {
	t.Parallel()
	const salt = "c29tZXNhbHRzb21lc2FsdA" // 16 bytes
	const key = "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
	tests := map[string]string{
		"empty":               "",
		"plain text":          "hunter2",
		"bcrypt":              "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy",
		"argon2i":             "$argon2i$v=19$m=64,t=1,p=1$" + salt + "$" + key,
		"old version":         "$argon2id$v=16$m=64,t=1,p=1$" + salt + "$" + key,
		"no version":          "$argon2id$m=64,t=1,p=1$" + salt + "$" + key,
		"missing hash":        "$argon2id$v=19$m=64,t=1,p=1$" + salt,
		"extra part":          "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$" + key + "$x",
		"params out of order": "$argon2id$v=19$t=1,m=64,p=1$" + salt + "$" + key,
		"missing param":       "$argon2id$v=19$m=64,t=1$" + salt + "$" + key,
		"zero time":           "$argon2id$v=19$m=64,t=0,p=1$" + salt + "$" + key,
		"zero memory":         "$argon2id$v=19$m=0,t=1,p=1$" + salt + "$" + key,
		"zero threads":        "$argon2id$v=19$m=64,t=1,p=0$" + salt + "$" + key,
		"threads overflow":    "$argon2id$v=19$m=64,t=1,p=256$" + salt + "$" + key,
		"huge memory":         "$argon2id$v=19$m=4294967295,t=1,p=1$" + salt + "$" + key,
		"memory overflow":     "$argon2id$v=19$m=4294967296,t=1,p=1$" + salt + "$" + key,
		"huge time":           "$argon2id$v=19$m=64,t=100000,p=1$" + salt + "$" + key,
		"negative":            "$argon2id$v=19$m=-64,t=1,p=1$" + salt + "$" + key,
		"plus sign":           "$argon2id$v=19$m=+64,t=1,p=1$" + salt + "$" + key,
		"leading zero":        "$argon2id$v=19$m=064,t=1,p=1$" + salt + "$" + key,
		"salt not base64":     "$argon2id$v=19$m=64,t=1,p=1$!!!!$" + key,
		"padded salt":         "$argon2id$v=19$m=64,t=1,p=1$" + salt + "==$" + key,
		"short salt":          "$argon2id$v=19$m=64,t=1,p=1$c2FsdA$" + key,
		"empty hash":          "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$",
		"short hash":          "$argon2id$v=19$m=64,t=1,p=1$" + salt + "$AAA",
	}
	h := newTestHasher(t, cheap, 0)
	for name, enc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ok, rehash, err := h.Verify(t.Context(), enc, "password")
			require.Error(t, err)
			require.Equal(t, strata.CodeInternal, strata.ErrorCode(err))
			require.ErrorIs(t, err, errMalformed)
			require.False(t, ok)
			require.False(t, rehash)
		})
	}
}

func TestVerifyDummy(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, cheap, 0)
	require.NoError(t, h.VerifyDummy(t.Context(), "anything at all"))

	p, _, _, err := decode(h.dummy)
	require.NoError(t, err)
	require.Equal(t, cheap, p, "the dummy costs what a current hash costs")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.Equal(t, "overloaded", strata.ErrorReason(h.VerifyDummy(ctx, "x")))
}

func TestHasherOverloaded(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, cheap, 1)
	enc, err := h.Hash(t.Context(), "a long enough password")
	require.NoError(t, err)

	h.sem <- struct{}{} // a hash in progress takes the only slot

	cancelled, cancel := context.WithCancel(t.Context())
	cancel()
	waiting, stop := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer stop()

	tests := []struct {
		name string
		ctx  context.Context
	}{
		{"already cancelled", cancelled},
		{"deadline while waiting", waiting},
	}
	for _, tt := range tests {
		_, err := h.Hash(tt.ctx, "a long enough password")
		requireOverloaded(t, err)
		_, _, err = h.Verify(tt.ctx, enc, "a long enough password")
		requireOverloaded(t, err)
	}
	require.ErrorIs(t, func() error { _, err := h.Hash(waiting, "x"); return err }(), context.DeadlineExceeded)

	<-h.sem // the slot frees up
	ok, _, err := h.Verify(t.Context(), enc, "a long enough password")
	require.NoError(t, err)
	require.True(t, ok)
}

func requireOverloaded(t *testing.T, err error) {
	t.Helper()
	var se *strata.Error
	require.True(t, errors.As(err, &se), "got %v", err)
	require.Equal(t, strata.CodeUnavailable, se.Code)
	require.Equal(t, "overloaded", se.Reason)
	require.Positive(t, se.RetryAfter)
}

func TestHasherBoundsConcurrency(t *testing.T) {
	t.Parallel()
	h := newTestHasher(t, cheap, 2)
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Go(func() {
			enc, err := h.Hash(t.Context(), "a long enough password")
			if err == nil {
				var ok bool
				ok, _, err = h.Verify(t.Context(), enc, "a long enough password")
				if err == nil && !ok {
					err = errors.New("round trip failed")
				}
			}
			if n := len(h.sem); n > 2 {
				err = errors.Join(err, errors.New("more than 2 hashes at once"))
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	require.Zero(t, len(h.sem), "every slot is released")
}

func TestNewHasherPanicsOnUnrunnableParams(t *testing.T) {
	t.Parallel()
	for name, p := range map[string]Params{
		"zero":         {},
		"zero time":    {Memory: 64, Threads: 1, SaltLen: 16, KeyLen: 32},
		"zero threads": {Memory: 64, Time: 1, SaltLen: 16, KeyLen: 32},
		"huge memory":  {Memory: 1<<20 + 1, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32},
	} {
		require.Panics(t, func() { NewHasher(p, 1) }, name)
	}
}

func BenchmarkHash(b *testing.B) {
	h := NewHasher(DefaultParams(), 1)
	ctx := b.Context()
	for b.Loop() {
		if _, err := h.Hash(ctx, "correct horse battery staple"); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "hashes/s/core")
}

func BenchmarkVerify(b *testing.B) {
	h := NewHasher(DefaultParams(), 1)
	ctx := b.Context()
	enc, err := h.Hash(ctx, "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if ok, _, err := h.Verify(ctx, enc, "correct horse battery staple"); err != nil || !ok {
			b.Fatal(ok, err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s/core")
}

// BenchmarkVerifyParallel shows what the whole machine sustains with the
// default bound of one hash per core.
func BenchmarkVerifyParallel(b *testing.B) {
	h := NewHasher(DefaultParams(), 0)
	enc, err := h.Hash(b.Context(), "correct horse battery staple")
	if err != nil {
		b.Fatal(err)
	}
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if ok, _, err := h.Verify(context.Background(), enc, "correct horse battery staple"); err != nil || !ok {
				b.Error(ok, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "logins/s")
}
