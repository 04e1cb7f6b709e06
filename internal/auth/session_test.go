package auth_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stratadev/strata/internal/auth"
	"github.com/stretchr/testify/require"
)

func refresh(h *harness, rt string) response {
	h.t.Helper()
	return h.do("POST", "/v1/auth/refresh", map[string]string{"refresh_token": rt})
}

func TestRefreshRotates(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	first := h.signup("rot@example.com")
	h.clock.Advance(time.Minute)

	r := refresh(h, first.Refresh)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	second := h.decodeTokens(r)
	require.NotEqual(t, first.Refresh, second.Refresh)
	require.NotEqual(t, first.Access, second.Access)
	require.Equal(t, http.StatusOK, h.do("GET", "/v1/auth/me", nil, bearer(second.Access)...).status)

	h.clock.Advance(time.Minute)
	third := h.decodeTokens(refresh(h, second.Refresh))
	require.NotEmpty(t, third.Refresh)
}

func TestRefreshReuseRevokesTheFamily(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	first := h.signup("reuse@example.com")
	second := h.decodeTokens(refresh(h, first.Refresh))

	// Within the grace window a second use is a racing tab: it gets the
	// same successor, so the session does not fork into two chains.
	h.clock.Advance(h.cfg.RefreshReuseGrace / 2)
	sibling := refresh(h, first.Refresh)
	require.Equal(t, http.StatusOK, sibling.status, "body: %s", sibling.body)
	require.Equal(t, second.Refresh, h.decodeTokens(sibling).Refresh)
	grace, err := h.svc.ListAudit(context.Background(), auth.AuditFilter{Event: auth.EventRefreshGrace, Limit: 5})
	require.NoError(t, err)
	require.Len(t, grace, 1, "a replay inside the window is audited")

	// After it, a replay is theft: the whole session ends.
	h.clock.Advance(h.cfg.RefreshReuseGrace)
	r := refresh(h, first.Refresh)
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Equal(t, "refresh_token_reused", r.problemCode(t))
	r = refresh(h, second.Refresh)
	require.Equal(t, http.StatusUnauthorized, r.status)
	require.Equal(t, "refresh_token_revoked", r.problemCode(t), "every token of the family is dead")
	events, err := h.svc.ListAudit(context.Background(), auth.AuditFilter{Event: auth.EventRefreshReuse, Limit: 5})
	require.NoError(t, err)
	require.Len(t, events, 1)

	// Other sessions of the user are untouched.
	other := h.decodeTokens(login(h, "reuse@example.com", goodPassword))
	require.Equal(t, http.StatusOK, refresh(h, other.Refresh).status)
}

func TestConcurrentRefreshesOfOneToken(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	first := h.signup("tabs@example.com")
	var wg sync.WaitGroup
	answers := make(chan response, 4)
	for range 4 {
		wg.Go(func() { answers <- refresh(h, first.Refresh) })
	}
	wg.Wait()
	close(answers)
	successors := map[string]bool{}
	for r := range answers {
		require.Equal(t, http.StatusOK, r.status, "racing refreshes inside the grace window all succeed")
		successors[h.decodeTokens(r).Refresh] = true
	}
	require.Len(t, successors, 1, "they all get the one successor: the session stays one chain")
}

// TestStolenTokenReplayedInGraceCannotFork: an attacker replaying a token
// inside the grace window gets the same successor as the victim, so the
// first of them to use it next makes the other's use a detected reuse.
func TestStolenTokenReplayedInGraceCannotFork(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	first := h.signup("victim2@example.com")
	victim := h.decodeTokens(refresh(h, first.Refresh))
	h.clock.Advance(2 * time.Second)
	thief := h.decodeTokens(refresh(h, first.Refresh))
	require.Equal(t, victim.Refresh, thief.Refresh)

	h.clock.Advance(time.Minute)
	require.Equal(t, http.StatusOK, refresh(h, thief.Refresh).status)
	h.clock.Advance(time.Minute)
	r := refresh(h, victim.Refresh)
	require.Equal(t, "refresh_token_reused", r.problemCode(t), "the second use of one successor is caught")
}

func TestRefreshScenarios(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tk := h.signup("rs@example.com")
	for _, tc := range []struct {
		name   string
		body   any
		status int
		code   string
	}{
		{name: "missing", body: map[string]string{}, status: 400, code: "validation_failed"},
		{name: "garbage", body: map[string]string{"refresh_token": "nope"}, status: 401, code: "refresh_token_invalid"},
		{name: "wrong secret", body: map[string]string{"refresh_token": tk.Refresh[:len(tk.Refresh)-4] + "AAAA"}, status: 401, code: "refresh_token_invalid"},
		{name: "access token instead", body: map[string]string{"refresh_token": tk.Access}, status: 401, code: "refresh_token_invalid"},
		{name: "wrong type", body: `{"refresh_token": 7}`, status: 400, code: "invalid_type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do("POST", "/v1/auth/refresh", tc.body)
			require.Equal(t, tc.status, r.status, "body: %s", r.body)
			require.Equal(t, tc.code, r.problemCode(t))
		})
	}
	t.Run("expired", func(t *testing.T) {
		h2 := newHarness(t)
		tk2 := h2.signup("old@example.com")
		h2.clock.Advance(h2.cfg.RefreshTTL + time.Second)
		r := refresh(h2, tk2.Refresh)
		require.Equal(t, http.StatusUnauthorized, r.status)
		require.Equal(t, "refresh_token_expired", r.problemCode(t))
	})
}

func TestLogout(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tk := h.signup("bye@example.com")
	r := h.do("POST", "/v1/auth/logout", map[string]string{"refresh_token": tk.Refresh})
	require.Equal(t, http.StatusNoContent, r.status, "body: %s", r.body)
	require.Empty(t, r.body)

	again := h.do("POST", "/v1/auth/logout", map[string]string{"refresh_token": tk.Refresh})
	require.Equal(t, http.StatusNoContent, again.status, "logging out twice is fine")

	rr := refresh(h, tk.Refresh)
	require.Equal(t, http.StatusUnauthorized, rr.status)
	require.Equal(t, "refresh_token_revoked", rr.problemCode(t))

	bad := h.do("POST", "/v1/auth/logout", map[string]string{"refresh_token": "rtk_x.y"})
	require.Equal(t, http.StatusUnauthorized, bad.status)
}

// TestGraceReplayFollowsTheChain: three tabs share storage; A spends T0,
// C spends T1, then B's slow T0 arrives inside the window: B gets the live
// end of the chain, T2, and nobody is logged out.
func TestGraceReplayFollowsTheChain(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	t0 := h.signup("chain@example.com")
	t1 := h.decodeTokens(refresh(h, t0.Refresh))
	t2 := h.decodeTokens(refresh(h, t1.Refresh))
	b := refresh(h, t0.Refresh)
	require.Equal(t, http.StatusOK, b.status, "body: %s", b.body)
	require.Equal(t, t2.Refresh, h.decodeTokens(b).Refresh)
	require.Equal(t, http.StatusOK, refresh(h, t2.Refresh).status)
}
