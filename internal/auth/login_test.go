package auth_test

import (
	"context"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/auth"
	"github.com/stratadev/strata/internal/auth/authsql"
	"github.com/stratadev/strata/internal/auth/password"
	"github.com/stretchr/testify/require"
)

func login(h *harness, email, pw string) response {
	h.t.Helper()
	return h.do("POST", "/v1/auth/login", map[string]string{"email": email, "password": pw})
}

func TestLoginScenarios(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.signup("lola@example.com")

	ok := login(h, "LOLA@example.com", goodPassword)
	require.Equal(t, http.StatusOK, ok.status, "body: %s", ok.body)
	require.Equal(t, "lola@example.com", h.decodeTokens(ok).User.Email)

	wrong := login(h, "lola@example.com", "not the password at all")
	unknown := login(h, "nobody@example.com", "not the password at all")
	for _, r := range []response{wrong, unknown} {
		require.Equal(t, http.StatusUnauthorized, r.status)
		require.Equal(t, "invalid_credentials", r.problemCode(t))
	}
	w, u := wrong.json(t), unknown.json(t)
	delete(w, "request_id")
	delete(u, "request_id")
	require.Equal(t, w, u, "an unknown email and a wrong password get the same answer")

	missing := h.do("POST", "/v1/auth/login", map[string]string{"email": "lola@example.com"})
	require.Equal(t, http.StatusBadRequest, missing.status)
	require.Contains(t, string(missing.body), `"field":"password"`)

	events, err := h.svc.ListAudit(context.Background(), auth.AuditFilter{Event: auth.EventLoginFailed, Limit: 10})
	require.NoError(t, err)
	require.Len(t, events, 2)
}

func TestLoginThrottle(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.signup("target@example.com")
	for range h.cfg.ThrottleAccountFailures {
		require.Equal(t, http.StatusUnauthorized, login(h, "target@example.com", "wrong password 123").status)
	}
	r := login(h, "target@example.com", goodPassword)
	require.Equal(t, http.StatusTooManyRequests, r.status, "a locked account refuses even the right password")
	require.Equal(t, "login_throttled", r.problemCode(t))
	secs, err := strconv.Atoi(r.header.Get("Retry-After"))
	require.NoError(t, err)
	require.InDelta(t, h.cfg.ThrottleLockout.Seconds(), secs, 1)
	throttled, err := h.svc.ListAudit(context.Background(), auth.AuditFilter{Event: auth.EventLoginThrottled, Limit: 5})
	require.NoError(t, err)
	require.Len(t, throttled, 1)

	h.clock.Advance(h.cfg.ThrottleLockout + time.Second)
	require.Equal(t, http.StatusOK, login(h, "target@example.com", goodPassword).status, "the lock expires")
	require.Equal(t, http.StatusUnauthorized, login(h, "target@example.com", "wrong password 123").status, "success reset the count")
}

func TestLoginThrottlePerAddress(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *auth.Config) { c.ThrottleIPFailures = 3 })
	h.signup("victim@example.com")
	for i := range 3 {
		r := login(h, "spray"+strconv.Itoa(i)+"@example.com", "wrong password 123")
		require.Equal(t, http.StatusUnauthorized, r.status)
	}
	r := login(h, "victim@example.com", goodPassword)
	require.Equal(t, http.StatusTooManyRequests, r.status, "the address is locked across accounts")
	other := h.do("POST", "/v1/auth/login", map[string]string{"email": "victim@example.com", "password": goodPassword}, "X-Forwarded-For", "198.51.100.7")
	require.Equal(t, http.StatusOK, other.status, "another address is not")
}

func TestLoginRehashesOnParameterChange(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tk := h.signup("rehash@example.com")
	ctx := context.Background()
	before, err := authsql.New(h.router, h.clock).UserByID(ctx, strata.ID(tk.User.ID))
	require.NoError(t, err)

	stronger := cheapParams
	stronger.Time = 2
	svc := auth.NewService(h.cfg, auth.Deps{
		Store: authsql.New(h.router, h.clock), Shards: h.router.NumShards(), Hasher: password.NewHasher(stronger, 2),
		Sealer: mustSealer(t), Clock: h.clock, Logger: discard(),
	})
	require.NoError(t, svc.Start(ctx))
	_, err = svc.Login(ctx, "rehash@example.com", goodPassword)
	require.NoError(t, err)
	after, err := authsql.New(h.router, h.clock).UserByID(ctx, strata.ID(tk.User.ID))
	require.NoError(t, err)
	require.NotEqual(t, before.PasswordHash, after.PasswordHash)
	require.Contains(t, after.PasswordHash, "t=2")
	events, err := svc.ListAudit(ctx, auth.AuditFilter{Event: auth.EventPasswordRehashed, Limit: 10})
	require.NoError(t, err)
	require.Len(t, events, 1)
	_, err = svc.Login(ctx, "rehash@example.com", goodPassword)
	require.NoError(t, err, "the new hash verifies")
}

// TestConcurrentLoginsCannotOutrunTheThrottle: attempts are counted before
// the password check, so a burst of parallel guesses gets no more than the
// limit through to argon2id.
func TestConcurrentLoginsCannotOutrunTheThrottle(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.signup("burst@example.com")
	const n = 30
	statuses := make(chan int, n)
	for range n {
		go func() { statuses <- login(h, "burst@example.com", "guess guess guess").status }()
	}
	counts := map[int]int{}
	for range n {
		counts[<-statuses]++
	}
	require.Equal(t, h.cfg.ThrottleAccountFailures, counts[http.StatusUnauthorized], "only the allowed attempts reach the password check")
	require.Equal(t, n-h.cfg.ThrottleAccountFailures, counts[http.StatusTooManyRequests])
}

// TestLockedAddressDoesNotLockTheAccount: attempts refused because the
// client address is locked do not count against the account, so a user
// behind a locked NAT is not locked out everywhere else.
func TestLockedAddressDoesNotLockTheAccount(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *auth.Config) { c.ThrottleIPFailures = 3 })
	h.signup("nat@example.com")
	for i := range 3 {
		require.Equal(t, http.StatusUnauthorized, login(h, "other"+strconv.Itoa(i)+"@example.com", "wrong password 123").status)
	}
	for range 2 * h.cfg.ThrottleAccountFailures {
		require.Equal(t, http.StatusTooManyRequests, login(h, "nat@example.com", goodPassword).status)
	}
	elsewhere := h.do("POST", "/v1/auth/login", map[string]string{"email": "nat@example.com", "password": goodPassword}, "X-Forwarded-For", "198.51.100.99")
	require.Equal(t, http.StatusOK, elsewhere.status, "body: %s", elsewhere.body)
}

// TestSuccessfulLoginsDoNotLockTheAddress: only failures use up an
// address's budget.
func TestSuccessfulLoginsDoNotLockTheAddress(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *auth.Config) { c.ThrottleIPFailures = 3 })
	h.signup("a1@example.com")
	h.signup("a2@example.com")
	require.Equal(t, http.StatusUnauthorized, login(h, "x1@example.com", "wrong password 123").status)
	require.Equal(t, http.StatusUnauthorized, login(h, "x2@example.com", "wrong password 123").status)
	for range 10 {
		require.Equal(t, http.StatusOK, login(h, "a1@example.com", goodPassword).status)
	}
	require.Equal(t, http.StatusOK, login(h, "a2@example.com", goodPassword).status)
}

// TestLockoutDoublesAfterEachLock: after a lock ends one more attempt is
// allowed; failing it locks again for twice as long.
func TestLockoutDoublesAfterEachLock(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.signup("double@example.com")
	for range h.cfg.ThrottleAccountFailures {
		login(h, "double@example.com", "wrong password 123")
	}
	first, err := strconv.Atoi(login(h, "double@example.com", goodPassword).header.Get("Retry-After"))
	require.NoError(t, err)
	h.clock.Advance(time.Duration(first)*time.Second + time.Second)
	require.Equal(t, http.StatusUnauthorized, login(h, "double@example.com", "wrong password 123").status, "one attempt after the lock")
	r := login(h, "double@example.com", goodPassword)
	require.Equal(t, http.StatusTooManyRequests, r.status)
	second, err := strconv.Atoi(r.header.Get("Retry-After"))
	require.NoError(t, err)
	require.InDelta(t, 2*first, second, 1)
	locks, err := h.svc.ListAudit(context.Background(), auth.AuditFilter{Event: auth.EventLoginThrottled, Limit: 10})
	require.NoError(t, err)
	require.Len(t, locks, 2)
	require.Equal(t, "account", locks[0].Detail["locked"])
}

// TestRefusedAttemptsDoNotPileUp: a burst of correct logins from one
// address may be turned away while the budget is held by attempts in
// flight, but refusals are not counted, so the address is free again as
// soon as the burst is over.
func TestRefusedAttemptsDoNotPileUp(t *testing.T) {
	t.Parallel()
	h := newHarness(t, func(c *auth.Config) { c.ThrottleIPFailures = 3 })
	h.signup("busy@example.com")
	statuses := make(chan int, 12)
	for range 12 {
		go func() { statuses <- login(h, "busy@example.com", goodPassword).status }()
	}
	for range 12 {
		s := <-statuses
		require.Contains(t, []int{http.StatusOK, http.StatusTooManyRequests}, s)
	}
	for range 5 {
		require.Equal(t, http.StatusOK, login(h, "busy@example.com", goodPassword).status, "nothing lingers after the burst")
	}
}
