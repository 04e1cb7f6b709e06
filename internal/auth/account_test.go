package auth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/auth"
	"github.com/stratadev/strata/internal/queue"
	"github.com/stretchr/testify/require"
)

// linkToken extracts the token from the link in a mail body.
func linkToken(t *testing.T, body string) string {
	t.Helper()
	i := strings.Index(body, "?token=")
	require.GreaterOrEqual(t, i, 0, "no link in %q", body)
	raw := body[i+len("?token="):]
	raw = raw[:strings.IndexAny(raw, "\n ")]
	tok, err := url.QueryUnescape(raw)
	require.NoError(t, err)
	return tok
}

func TestEmailVerification(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tk := h.signup("verify@example.com")
	msg := h.mail.waitFor(t, "verify@example.com", "Confirm")
	require.Contains(t, msg.Body, h.cfg.PublicURL+"/verify-email?token=")
	tok := linkToken(t, msg.Body)
	before := h.do("GET", "/v1/auth/me", nil, bearer(tk.Access)...)
	require.Equal(t, false, before.json(t)["email_verified"], "the profile is now cached")

	r := h.do("POST", "/v1/auth/email/verify", map[string]string{"token": tok})
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(t, true, r.json(t)["email_verified"])
	me := h.do("GET", "/v1/auth/me", nil, bearer(tk.Access)...)
	require.Equal(t, true, me.json(t)["email_verified"], "a change on this instance drops the cached profile")

	again := h.do("POST", "/v1/auth/email/verify", map[string]string{"token": tok})
	require.Equal(t, http.StatusBadRequest, again.status)
	require.Equal(t, "one_time_token_used", again.problemCode(t))

	for name, bad := range map[string]string{"garbage": "xyz", "tampered": tok[:len(tok)-3] + "AAA", "empty": ""} {
		r := h.do("POST", "/v1/auth/email/verify", map[string]string{"token": bad})
		require.Equal(t, http.StatusBadRequest, r.status, name)
		require.Contains(t, string(r.body), `"field":"token"`, name)
	}
}

func TestEmailVerificationExpires(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.signup("late@example.com")
	tok := linkToken(t, h.mail.waitFor(t, "late@example.com", "Confirm").Body)
	h.clock.Advance(h.cfg.VerifyEmailTTL + time.Second)
	r := h.do("POST", "/v1/auth/email/verify", map[string]string{"token": tok})
	require.Equal(t, http.StatusBadRequest, r.status)
	require.Equal(t, "one_time_token_expired", r.problemCode(t))
}

func TestPasswordReset(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	tk := h.signup("forgetful@example.com")
	// Lock the account first: a reset must lift the lock.
	for range h.cfg.ThrottleAccountFailures {
		login(h, "forgetful@example.com", "a wrong password!")
	}

	r := h.do("POST", "/v1/auth/password/forgot", map[string]string{"email": "Forgetful@example.com"})
	require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
	unknown := h.do("POST", "/v1/auth/password/forgot", map[string]string{"email": "ghost@example.com"})
	require.Equal(t, http.StatusAccepted, unknown.status, "an unknown email gets the same answer")

	tok := linkToken(t, h.mail.waitFor(t, "forgetful@example.com", "Reset").Body)

	weak := h.do("POST", "/v1/auth/password/reset", map[string]string{"token": tok, "password": "short"})
	require.Equal(t, http.StatusBadRequest, weak.status)
	require.Equal(t, "password_too_short", weak.problemCode(t))

	const newPassword = "a brand new passphrase"
	ok := h.do("POST", "/v1/auth/password/reset", map[string]string{"token": tok, "password": newPassword})
	require.Equal(t, http.StatusNoContent, ok.status, "body: %s", ok.body)

	rr := refresh(h, tk.Refresh)
	require.Equal(t, http.StatusUnauthorized, rr.status, "a reset revokes every session")
	require.Equal(t, "refresh_token_revoked", rr.problemCode(t))
	require.Equal(t, http.StatusUnauthorized, login(h, "forgetful@example.com", goodPassword).status)
	require.Equal(t, http.StatusOK, login(h, "forgetful@example.com", newPassword).status, "the lock is lifted")

	reuse := h.do("POST", "/v1/auth/password/reset", map[string]string{"token": tok, "password": "yet another passphrase"})
	require.Equal(t, http.StatusBadRequest, reuse.status)
	require.Equal(t, "one_time_token_used", reuse.problemCode(t))
	require.Zero(t, h.mail.count("ghost@example.com"))
}

func TestForgotPasswordIsThrottledPerAddress(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.signup("spam@example.com")
	for range 3 {
		require.Equal(t, http.StatusAccepted, h.do("POST", "/v1/auth/password/forgot", map[string]string{"email": "spam@example.com"}).status)
	}
	h.mail.waitFor(t, "spam@example.com", "Reset")
	events, err := h.svc.ListAudit(context.Background(), auth.AuditFilter{Event: auth.EventPasswordResetReq, Limit: 10})
	require.NoError(t, err)
	require.Len(t, events, 1, "one reset mail per interval")
	h.clock.Advance(h.cfg.MailInterval + time.Second)
	require.Equal(t, http.StatusAccepted, h.do("POST", "/v1/auth/password/forgot", map[string]string{"email": "spam@example.com"}).status)
	events, err = h.svc.ListAudit(context.Background(), auth.AuditFilter{Event: auth.EventPasswordResetReq, Limit: 10})
	require.NoError(t, err)
	require.Len(t, events, 2)
}

func TestAdminAuditAndRoles(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	// Audit ids order events to the millisecond; the fake clock stands
	// still unless moved.
	_, err := h.svc.CreateUser(ctx, "root@example.com", "Root", goodPassword, []strata.Role{strata.RoleAdmin})
	require.NoError(t, err)
	h.clock.Advance(time.Millisecond)
	admin := h.decodeTokens(login(h, "root@example.com", goodPassword))
	h.clock.Advance(time.Millisecond)
	buyer := h.signup("buyer@example.com")
	h.clock.Advance(time.Millisecond)
	login(h, "buyer@example.com", "wrong wrong wrong")

	forbidden := h.do("GET", "/v1/admin/audit", nil, bearer(buyer.Access)...)
	require.Equal(t, http.StatusForbidden, forbidden.status)
	require.Equal(t, "role_required", forbidden.problemCode(t))
	require.Equal(t, http.StatusUnauthorized, h.do("GET", "/v1/admin/audit", nil).status)

	r := h.do("GET", "/v1/admin/audit?limit=2", nil, bearer(admin.Access)...)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	page := r.json(t)
	require.Len(t, page["events"], 2)
	require.NotEmpty(t, page["next_cursor"])
	var seen []string
	for cursor := ""; ; {
		r := h.do("GET", "/v1/admin/audit?limit=2&cursor="+cursor, nil, bearer(admin.Access)...)
		require.Equal(t, http.StatusOK, r.status)
		p := r.json(t)
		for _, e := range p["events"].([]any) {
			seen = append(seen, e.(map[string]any)["event"].(string))
		}
		next, _ := p["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	require.Equal(t, []string{"login_failed", "signup", "login_succeeded", "user_created_by_cli"}, seen, "newest first, every event once")

	byUser := h.do("GET", "/v1/admin/audit?user_id="+buyer.User.ID, nil, bearer(admin.Access)...)
	require.Len(t, byUser.json(t)["events"], 2)
	require.Equal(t, http.StatusBadRequest, h.do("GET", "/v1/admin/audit?limit=1000", nil, bearer(admin.Access)...).status)
	require.Equal(t, http.StatusBadRequest, h.do("GET", "/v1/admin/audit?cursor=bogus", nil, bearer(admin.Access)...).status)

	roles := h.do("PUT", "/v1/admin/users/"+buyer.User.ID+"/roles", map[string]any{"roles": []string{"buyer", "creator"}}, bearer(admin.Access)...)
	require.Equal(t, http.StatusOK, roles.status, "body: %s", roles.body)
	require.Equal(t, []any{"buyer", "creator"}, roles.json(t)["roles"])
	refreshed := h.decodeTokens(refresh(h, buyer.Refresh))
	require.Equal(t, []string{"buyer", "creator"}, refreshed.User.Roles, "new roles reach tokens at the next refresh")
	changed, err := h.svc.ListAudit(ctx, auth.AuditFilter{Event: auth.EventRoleChanged, Limit: 5})
	require.NoError(t, err)
	require.Len(t, changed, 1)
	require.Equal(t, admin.User.ID, string(changed[0].Detail["by"]))

	for name, body := range map[string]any{"empty": map[string]any{"roles": []string{}}, "unknown": map[string]any{"roles": []string{"king"}}} {
		r := h.do("PUT", "/v1/admin/users/"+buyer.User.ID+"/roles", body, bearer(admin.Access)...)
		require.Equal(t, http.StatusBadRequest, r.status, name)
	}
	missing := h.do("PUT", "/v1/admin/users/usr_nope/roles", map[string]any{"roles": []string{"buyer"}}, bearer(admin.Access)...)
	require.Equal(t, http.StatusNotFound, missing.status)
}

func TestMailedTokensNeverRestInClear(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.signup("sealed@example.com")
	require.Equal(t, http.StatusAccepted, h.do("POST", "/v1/auth/password/forgot", map[string]string{"email": "sealed@example.com"}).status)
	verify := linkToken(t, h.mail.waitFor(t, "sealed@example.com", "Confirm").Body)
	reset := linkToken(t, h.mail.waitFor(t, "sealed@example.com", "Reset").Body)
	rows := 0
	for _, db := range h.router.DBs() {
		r, err := db.Reader().Query("SELECT payload FROM outbox_events")
		require.NoError(t, err)
		for r.Next() {
			var payload string
			require.NoError(t, r.Scan(&payload))
			require.NotContains(t, payload, verify)
			require.NotContains(t, payload, reset)
			require.NotContains(t, payload, "ott_")
			rows++
		}
		require.NoError(t, r.Close())
	}
	require.Equal(t, 2, rows)
}

func TestForgotPasswordIsLimitedPerClientAddress(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	for i := range 10 {
		r := h.do("POST", "/v1/auth/password/forgot", map[string]string{"email": fmt.Sprintf("probe%d@example.com", i)})
		require.Equal(t, http.StatusAccepted, r.status)
	}
	r := h.do("POST", "/v1/auth/password/forgot", map[string]string{"email": "probe-last@example.com"})
	require.Equal(t, http.StatusTooManyRequests, r.status)
	require.Equal(t, "too_many_requests", r.problemCode(t))
	require.NotEmpty(t, r.header.Get("Retry-After"))
	other := h.do("POST", "/v1/auth/password/forgot", map[string]string{"email": "probe-last@example.com"}, "X-Forwarded-For", "198.51.100.20")
	require.Equal(t, http.StatusAccepted, other.status)
}

func TestPurgeDeletesWhatHasExpired(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	ctx := context.Background()
	tk := h.signup("purge@example.com")
	login(h, "purge@example.com", "a wrong password!")
	require.Equal(t, http.StatusNoContent, h.do("POST", "/v1/auth/logout", map[string]string{"refresh_token": tk.Refresh}).status)

	n, err := h.svc.Purge(ctx)
	require.NoError(t, err)
	require.Zero(t, n, "nothing has expired yet")

	// More idle throttle rows than one purge batch holds.
	db := h.router.Shard(0)
	for i := range 1200 {
		_, err := db.Writer().Exec("INSERT INTO auth_throttle (key, window_start, failures, locked_until) VALUES ($1, 1, 1, 0)", fmt.Sprintf("ip:idle-%d", i))
		require.NoError(t, err)
	}

	h.clock.Advance(h.cfg.SessionTTL + time.Hour)
	n, err = h.svc.Purge(ctx)
	require.NoError(t, err)
	// Two sessions (signup, the failed login made none), their refresh
	// tokens, the verification token and two throttle rows.
	require.GreaterOrEqual(t, n, int64(1205))
	for _, table := range []string{"auth_sessions", "auth_refresh_tokens", "auth_one_time_tokens", "auth_throttle"} {
		total := 0
		for _, db := range h.router.DBs() {
			var c int
			require.NoError(t, db.Reader().QueryRow("SELECT count(*) FROM "+table).Scan(&c))
			total += c
		}
		require.Zero(t, total, table)
	}
	require.NoError(t, h.svc.RotateKeys(ctx))
	ok := login(h, "purge@example.com", goodPassword)
	require.Equal(t, http.StatusOK, ok.status, "accounts are kept: %s", ok.body)
}

// TestMailEventCannotBeRedirected: a mail event whose recipient was edited
// (say, by someone able to publish to the stream) does not open.
func TestMailEventCannotBeRedirected(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	h.signup("owner@example.com")
	var payload string
	for _, db := range h.router.DBs() {
		_ = db.Reader().QueryRow("SELECT payload FROM outbox_events WHERE subject = $1", auth.SubjectMailVerifyEmail).Scan(&payload)
		if payload != "" {
			break
		}
	}
	require.NotEmpty(t, payload)
	forged := strings.Replace(payload, "owner@example.com", "thief@example.com", 1)
	mc := auth.MailConsumer{Mailer: h.mail, Sealer: mustSealer(t)}
	err := mc.Handle(context.Background(), queue.Message{Subject: auth.SubjectMailVerifyEmail, ID: "forged", Data: []byte(forged)})
	require.Error(t, err)
	require.True(t, queue.IsPermanent(err), "a forged event goes to the dead-letter stream")
	require.Zero(t, h.mail.count("thief@example.com"))
	require.NoError(t, mc.Handle(context.Background(), queue.Message{Subject: auth.SubjectMailVerifyEmail, ID: "real", Data: []byte(payload)}))
}
