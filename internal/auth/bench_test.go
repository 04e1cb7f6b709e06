package auth_test

// Benchmarks of issue 2. Each group measures its anchor in the same run
// (plain Ed25519, plain argon2id, a bare handler), because the reference
// machine is shared and noisy: compare ratios, not absolute figures.
// docs/benchmarks.md gives the commands and the latest results.

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/spf13/pflag"
	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/auth"
	"github.com/stratadev/strata/internal/auth/authsql"
	"github.com/stratadev/strata/internal/auth/password"
	"github.com/stratadev/strata/internal/auth/token"
	"github.com/stratadev/strata/internal/httpx"
	"github.com/stratadev/strata/internal/queue"
	"github.com/stratadev/strata/internal/storage/sqldbtest"
)

// benchService returns a started Service on a fresh SQLite database in
// b.TempDir(), with the default settings (argon2id m=19 MiB t=2 p=1, token
// cache of 10,000) and at most one hash per core, as `strata serve` builds
// it. There is no outbox relay: signup's outbox rows stay in the table.
func benchService(b *testing.B, tweak ...func(*auth.Config)) *auth.Service {
	b.Helper()
	cfg := benchConfig(b, tweak...)
	router := sqldbtest.Open(b)
	sqldbtest.Migrate(b, router, "outbox", queue.Migrations())
	if err := authsql.Migrate(context.Background(), router); err != nil {
		b.Fatal(err)
	}
	sealer, err := token.NewSealer(make([]byte, 32))
	if err != nil {
		b.Fatal(err)
	}
	clock := strata.SystemClock{}
	params := password.Params{Memory: cfg.Argon2Memory, Time: cfg.Argon2Time, Threads: cfg.Argon2Threads, SaltLen: 16, KeyLen: 32}
	if params != password.DefaultParams() {
		b.Fatalf("flag defaults %+v differ from password.DefaultParams", params)
	}
	svc := auth.NewService(cfg, auth.Deps{
		Store: authsql.New(router, clock), Shards: router.NumShards(), Hasher: password.NewHasher(params, 0),
		Sealer: sealer, Clock: clock, Logger: discard(),
	})
	if err := svc.Start(b.Context()); err != nil {
		b.Fatal(err)
	}
	return svc
}

// benchConfig returns the default auth settings, as the flags define them.
func benchConfig(b *testing.B, tweak ...func(*auth.Config)) auth.Config {
	b.Helper()
	var cfg auth.Config
	fs := pflag.NewFlagSet("bench", pflag.ContinueOnError)
	cfg.RegisterFlags(fs)
	if err := fs.Parse(nil); err != nil {
		b.Fatal(err)
	}
	for _, f := range tweak {
		f(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		b.Fatal(err)
	}
	return cfg
}

// mintTokens signs n access tokens for distinct users with the service's
// current key, as Login would.
func mintTokens(b *testing.B, svc *auth.Service, n int) []string {
	b.Helper()
	cfg := benchConfig(b)
	signer := token.NewSigner(cfg.Issuer, cfg.Audience, cfg.AccessTTL, strata.SystemClock{})
	ks := svc.Ring().Current()
	out := make([]string, n)
	for i := range out {
		now := strata.SystemClock{}.Now()
		tok, _, err := signer.Sign(ks, token.Claims{
			UserID: strata.NewID(auth.PrefixUser, i%16, now), SessionID: strata.NewID(auth.PrefixSession, i%16, now),
			Roles: []strata.Role{strata.RoleBuyer},
		})
		if err != nil {
			b.Fatal(err)
		}
		out[i] = "Bearer " + tok
	}
	return out
}

// sink is a ResponseWriter that keeps nothing, so the benchmarks measure
// the handler and not a recorder.
type sink struct {
	h      http.Header
	status int
}

func (s *sink) Header() http.Header         { return s.h }
func (s *sink) Write(p []byte) (int, error) { return len(p), nil }
func (s *sink) WriteHeader(code int)        { s.status = code }

func (s *sink) reset() {
	clear(s.h)
	s.status = http.StatusOK
}

// BenchmarkAuthenticate measures bearer-token verification through the HTTP
// middleware (httpx.Authenticate with the Service's Verifier, then
// RequireAuth) in front of a handler that does nothing.
//
//   - ed25519.Verify is the anchor of cold: the signature check alone.
//   - passthrough is the anchor of warm: a middleware that puts a fixed
//     Principal in the context (r.WithContext), the floor of any
//     middleware of this shape.
//   - cold: a fresh token every iteration (minted before the timer), so each
//     one is parsed, its signature and claims checked, and it is added to
//     the cache (evicting once past 10,000) — a user's first request.
//   - cold-nocache: one token with the cache disabled (auth-token-cache 0).
//   - warm: one token served from the cache — every later request.
//   - warm-parallel: 64 cached tokens from GOMAXPROCS goroutines.
//   - ratio: cold and cold-nocache over ed25519, warm over passthrough.
func BenchmarkAuthenticate(b *testing.B) {
	noop := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	chain := func(svc *auth.Service) http.Handler {
		return httpx.Chain(noop, httpx.Authenticate(svc.Verifier()), httpx.RequireAuth())
	}
	serve := func(b *testing.B, h http.Handler, req *http.Request, w *sink, authz string) {
		req.Header["Authorization"] = []string{authz}
		w.reset()
		h.ServeHTTP(w, req)
		if w.status != http.StatusNoContent {
			b.Fatalf("status %d", w.status)
		}
	}
	svc := benchService(b)
	nocache := benchService(b, func(c *auth.Config) { c.TokenCacheSize = 0 })
	t := timings{}

	b.Run("ed25519.Verify", func(b *testing.B) {
		raw := strings.TrimPrefix(mintTokens(b, svc, 1)[0], "Bearer ")
		i := strings.LastIndexByte(raw, '.')
		sig, err := base64.RawURLEncoding.DecodeString(raw[i+1:])
		if err != nil {
			b.Fatal(err)
		}
		msg := []byte(raw[:i])
		pub, ok := svc.Ring().Current().Signing()
		if !ok {
			b.Fatal("no signing key")
		}
		for b.Loop() {
			if !ed25519.Verify(pub.Public, msg, sig) {
				b.Fatal("bad signature")
			}
		}
		t.record(b, "ed25519")
	})
	b.Run("passthrough", func(b *testing.B) {
		p := &strata.Principal{UserID: strata.NewID(auth.PrefixUser, 1, strata.SystemClock{}.Now()), Roles: []strata.Role{strata.RoleBuyer}}
		pass := func(next http.Handler) http.Handler {
			return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if r.Header.Get("Authorization") != "" {
					r = r.WithContext(strata.NewContext(r.Context(), p))
				}
				next.ServeHTTP(w, r)
			})
		}
		h := httpx.Chain(noop, pass, httpx.RequireAuth())
		req, w := httptest.NewRequest("GET", "/v1/auth/me", nil), &sink{h: http.Header{}}
		tok := mintTokens(b, svc, 1)[0]
		for b.Loop() {
			serve(b, h, req, w, tok)
		}
		t.record(b, "passthrough")
	})
	b.Run("cold", func(b *testing.B) {
		h, req, w := chain(svc), httptest.NewRequest("GET", "/v1/auth/me", nil), &sink{h: http.Header{}}
		toks := mintTokens(b, svc, b.N)
		b.ResetTimer()
		for i := range b.N {
			serve(b, h, req, w, toks[i])
		}
		t.record(b, "cold")
	})
	b.Run("cold-nocache", func(b *testing.B) {
		h, req, w := chain(nocache), httptest.NewRequest("GET", "/v1/auth/me", nil), &sink{h: http.Header{}}
		tok := mintTokens(b, nocache, 1)[0]
		for b.Loop() {
			serve(b, h, req, w, tok)
		}
		t.record(b, "cold-nocache")
	})
	b.Run("warm", func(b *testing.B) {
		h, req, w := chain(svc), httptest.NewRequest("GET", "/v1/auth/me", nil), &sink{h: http.Header{}}
		tok := mintTokens(b, svc, 1)[0]
		serve(b, h, req, w, tok)
		for b.Loop() {
			serve(b, h, req, w, tok)
		}
		t.record(b, "warm")
	})
	b.Run("warm-parallel", func(b *testing.B) {
		h := chain(svc)
		toks := mintTokens(b, svc, 64)
		for _, tok := range toks {
			serve(b, h, httptest.NewRequest("GET", "/v1/auth/me", nil), &sink{h: http.Header{}}, tok)
		}
		b.RunParallel(func(pb *testing.PB) {
			req, w := httptest.NewRequest("GET", "/v1/auth/me", nil), &sink{h: http.Header{}}
			for i := 0; pb.Next(); i++ {
				req.Header["Authorization"] = []string{toks[i%len(toks)]}
				w.reset()
				h.ServeHTTP(w, req)
				if w.status != http.StatusNoContent {
					b.Errorf("status %d", w.status)
					return
				}
			}
		})
	})
	t.report(b, [2]string{"cold", "ed25519"}, [2]string{"cold-nocache", "ed25519"}, [2]string{"warm", "passthrough"})
}

// BenchmarkEd25519Sign is the anchor of token.BenchmarkSign (issuing an
// access token), which is not repeated here: the signature alone.
func BenchmarkEd25519Sign(b *testing.B) {
	svc := benchService(b)
	key, ok := svc.Ring().Current().Signing()
	if !ok {
		b.Fatal("no signing key")
	}
	raw := strings.TrimPrefix(mintTokens(b, svc, 1)[0], "Bearer ")
	msg := []byte(raw[:strings.LastIndexByte(raw, '.')])
	for b.Loop() {
		ed25519.Sign(key.Private, msg)
	}
}

// BenchmarkMe serves GET /v1/auth/me in process through the real auth
// routes (client middleware, authentication with a warm cache, a SQLite
// read of the user, JSON encoding), beside a bare handler writing the same
// bytes. It is the CPU side of the HTTP load run, without the network.
func BenchmarkMe(b *testing.B) {
	svc := benchService(b)
	ctx := auth.WithClient(b.Context(), auth.Client{IP: "127.0.0.1"})
	pair, err := svc.Signup(ctx, auth.SignupRequest{Email: "me@example.com", Password: goodPassword, Name: "Me"})
	if err != nil {
		b.Fatal(err)
	}
	mux := httpx.NewMux()
	auth.Routes(mux, svc, false)
	strataH := httpx.Chain(mux, httpx.RequestID, httpx.Recover)
	authz := "Bearer " + pair.AccessToken

	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/v1/auth/me", nil)
	req.Header.Set("Authorization", authz)
	strataH.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		b.Fatalf("me: %d %s", rec.Code, rec.Body)
	}
	body := rec.Body.Bytes()
	bare := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "private, no-store")
		w.Write(body)
	})
	for _, tc := range []struct {
		name string
		h    http.Handler
	}{{"bare", bare}, {"strata", strataH}} {
		b.Run(tc.name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest("GET", "/v1/auth/me", nil)
				req.Header.Set("Authorization", authz)
				w := &sink{h: http.Header{}}
				for pb.Next() {
					w.reset()
					tc.h.ServeHTTP(w, req)
					if w.status != http.StatusOK {
						b.Errorf("status %d", w.status)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
		})
	}
}

// BenchmarkLogin measures Service.Login with the right password on a real
// Service, beside its anchor: argon2id verification of the same password
// alone. The -parallel variants run GOMAXPROCS logins at once (run with
// -cpu 1,2 to see the scaling); the Hasher admits one hash per core.
func BenchmarkLogin(b *testing.B) {
	svc := benchService(b)
	ctx := auth.WithClient(b.Context(), auth.Client{IP: "127.0.0.1", UserAgent: "bench"})
	if _, err := svc.Signup(ctx, auth.SignupRequest{Email: "login@example.com", Password: goodPassword, Name: "Login"}); err != nil {
		b.Fatal(err)
	}
	hasher := password.NewHasher(password.DefaultParams(), 0)
	enc, err := hasher.Hash(ctx, goodPassword)
	if err != nil {
		b.Fatal(err)
	}
	anchor := func() error {
		ok, _, err := hasher.Verify(ctx, enc, goodPassword)
		if err == nil && !ok {
			err = fmt.Errorf("password did not verify")
		}
		return err
	}
	login := func() error {
		_, err := svc.Login(ctx, "login@example.com", goodPassword)
		return err
	}
	t := timings{}
	benchOps(b, t, "argon2id.Verify", anchor, "logins/s")
	benchOps(b, t, "Service.Login", login, "logins/s")
	t.report(b, [2]string{"Service.Login", "argon2id.Verify"}, [2]string{"Service.Login-parallel", "argon2id.Verify-parallel"})
}

// BenchmarkSignup measures Service.Signup with a new email each iteration,
// beside its anchor: one argon2id hash alone.
func BenchmarkSignup(b *testing.B) {
	svc := benchService(b)
	ctx := auth.WithClient(b.Context(), auth.Client{IP: "127.0.0.1", UserAgent: "bench"})
	hasher := password.NewHasher(password.DefaultParams(), 0)
	var n atomic.Int64
	anchor := func() error {
		_, err := hasher.Hash(ctx, goodPassword)
		return err
	}
	signup := func() error {
		email := fmt.Sprintf("user%d@example.com", n.Add(1))
		_, err := svc.Signup(ctx, auth.SignupRequest{Email: email, Password: goodPassword, Name: "Bench User"})
		return err
	}
	t := timings{}
	benchOps(b, t, "argon2id.Hash", anchor, "signups/s")
	benchOps(b, t, "Service.Signup", signup, "signups/s")
	t.report(b, [2]string{"Service.Signup", "argon2id.Hash"}, [2]string{"Service.Signup-parallel", "argon2id.Hash-parallel"})
}

// timings keeps the ns/op of the last run of each sub-benchmark of one
// benchmark at each GOMAXPROCS (-cpu runs every sub-benchmark at each
// setting in turn), so that a final "ratio" sub-benchmark can set each figure
// against its anchor measured moments before in the same process. Run
// with -count 1 and repeat the go test command to get several ratios:
// with -count N each sub-benchmark repeats N times in a row, and only the
// last run of each is compared.
type timings map[string]float64

func (t timings) record(b *testing.B, name string) {
	if b.N > 0 {
		t[timingKey(name)] = float64(b.Elapsed().Nanoseconds()) / float64(b.N)
	}
}

func timingKey(name string) string { return fmt.Sprintf("%s@%d", name, runtime.GOMAXPROCS(0)) }

// report runs the sub-benchmark "ratio", which does no work and reports
// the time of each pair's first name over its second's.
func (t timings) report(b *testing.B, pairs ...[2]string) {
	b.Run("ratio", func(b *testing.B) {
		b.ReportMetric(0, "ns/op")
		for _, p := range pairs {
			if x, y := t[timingKey(p[0])], t[timingKey(p[1])]; x > 0 && y > 0 {
				b.ReportMetric(x/y, p[0]+"/"+p[1])
			}
		}
	})
}

// benchOps runs op as sub-benchmark name, serially and with RunParallel,
// reporting the rate as unit (per core when serial) and recording both
// timings in t.
func benchOps(b *testing.B, t timings, name string, op func() error, unit string) {
	b.Run(name, func(b *testing.B) {
		// Not b.Loop: a b.Loop benchmark is measured in its first call,
		// which under -cpu 1,2 runs at the GOMAXPROCS the previous
		// sub-benchmark left behind.
		for range b.N {
			if err := op(); err != nil {
				b.Fatal(err)
			}
		}
		t.record(b, name)
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), strings.TrimSuffix(unit, "/s")+"/s/core")
	})
	b.Run(name+"-parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := op(); err != nil {
					b.Error(err)
					return
				}
			}
		})
		t.record(b, name+"-parallel")
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), unit)
	})
}
