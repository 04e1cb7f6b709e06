package webhook_test

import (
	"context"
	"database/sql"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/payments/webhook"
	"github.com/stretchr/testify/require"
)

func TestEndpointLifecycle(t *testing.T) {
	t.Parallel()
	h := newHarness(t, webhook.Config{})

	r := h.do(h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{
		"url": "https://hooks.example.com/strata", "events": []string{"purchase.completed", "purchase.refunded", "purchase.completed"}})
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	require.Equal(t, "no-store", r.header.Get("Cache-Control"), "the answer carries a secret")
	created := r.json(t)
	id := created["id"].(string)
	secret := created["secret"].(string)
	require.True(t, strings.HasPrefix(id, "whe_"))
	require.True(t, strings.HasPrefix(secret, "whsec_"))
	require.Equal(t, "https://hooks.example.com/strata", created["url"])
	require.Equal(t, []any{"purchase.completed", "purchase.refunded"}, created["events"], "duplicates dropped")
	require.Equal(t, true, created["enabled"])
	require.NotContains(t, created, "previous_secret_expires_at")

	// Reads never show the secret.
	r = h.do(h.admin, "GET", "/v1/webhooks/endpoints/"+id, nil)
	require.Equal(t, http.StatusOK, r.status)
	require.NotContains(t, r.json(t), "secret")
	r = h.do(h.admin, "GET", "/v1/webhooks/endpoints", nil)
	require.Equal(t, http.StatusOK, r.status)
	list := r.json(t)["endpoints"].([]any)
	require.Len(t, list, 1)
	require.NotContains(t, list[0], "secret")
	require.NotContains(t, string(r.body), secret)

	// An admin may see it again on purpose.
	r = h.do(h.admin, "GET", "/v1/webhooks/endpoints/"+id+"/secret", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, secret, r.json(t)["secret"])
	require.Equal(t, "no-store", r.header.Get("Cache-Control"))

	// Update: events "*" swallows the rest; disable.
	r = h.do(h.admin, "PATCH", "/v1/webhooks/endpoints/"+id, map[string]any{
		"url": "https://other.example.com/hook", "events": []string{"payment_intent.succeeded", "*"}, "enabled": false})
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	up := r.json(t)
	require.Equal(t, "https://other.example.com/hook", up["url"])
	require.Equal(t, []any{"*"}, up["events"])
	require.Equal(t, false, up["enabled"])
	// A partial update leaves the rest alone.
	r = h.do(h.admin, "PATCH", "/v1/webhooks/endpoints/"+id, map[string]any{"enabled": true})
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, "https://other.example.com/hook", r.json(t)["url"])
	require.Equal(t, true, r.json(t)["enabled"])

	// Rotate: a new secret, the previous one signs for 24 hours more.
	h.clock.Advance(time.Minute)
	r = h.do(h.admin, "POST", "/v1/webhooks/endpoints/"+id+"/rotate", nil)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	rot := r.json(t)
	require.True(t, strings.HasPrefix(rot["secret"].(string), "whsec_"))
	require.NotEqual(t, secret, rot["secret"])
	exp, err := time.Parse(time.RFC3339, rot["previous_secret_expires_at"].(string))
	require.NoError(t, err)
	require.WithinDuration(t, h.clock.Now().Add(24*time.Hour), exp, time.Millisecond)
	r = h.do(h.admin, "GET", "/v1/webhooks/endpoints/"+id+"/secret", nil)
	require.Equal(t, rot["secret"], r.json(t)["secret"])

	r = h.do(h.admin, "DELETE", "/v1/webhooks/endpoints/"+id, nil)
	require.Equal(t, http.StatusNoContent, r.status)
	r = h.do(h.admin, "GET", "/v1/webhooks/endpoints/"+id, nil)
	require.Equal(t, http.StatusNotFound, r.status)
	require.Equal(t, "endpoint_not_found", r.code(t))
	r = h.do(h.admin, "DELETE", "/v1/webhooks/endpoints/"+id, nil)
	require.Equal(t, http.StatusNotFound, r.status)
}

func TestEndpointRefusals(t *testing.T) {
	t.Parallel()
	h := newHarness(t, webhook.Config{})
	id, _ := h.createEndpoint("https://hooks.example.com/x", "*")
	buyer := h.token(strata.RoleBuyer)
	creator := h.token(strata.RoleCreator)
	ok := []string{"purchase.completed"}
	tests := []struct {
		name   string
		token  string
		method string
		path   string
		body   any
		status int
		code   string
		field  string
	}{
		{"ftp url", h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "ftp://hooks.example.com/x", "events": ok}, 400, "validation_failed", "url"},
		{"javascript url", h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "javascript:alert(1)", "events": ok}, 400, "validation_failed", "url"},
		{"no host", h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "https:///path", "events": ok}, 400, "validation_failed", "url"},
		{"relative", h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "/hooks", "events": ok}, 400, "validation_failed", "url"},
		{"no url", h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"events": ok}, 400, "validation_failed", "url"},
		{"userinfo", h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "https://user:pw@hooks.example.com/x", "events": ok}, 400, "validation_failed", "url"},
		{"fragment", h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "https://hooks.example.com/x#frag", "events": ok}, 400, "validation_failed", "url"},
		{"bad port", h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "https://hooks.example.com:0/x", "events": ok}, 400, "validation_failed", "url"},
		{"loopback", h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "http://127.0.0.1:8080/x", "events": ok}, 400, "validation_failed", "url"},
		{"ipv6 loopback", h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "http://[::1]/x", "events": ok}, 400, "validation_failed", "url"},
		{"metadata", h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "http://169.254.169.254/latest/meta-data", "events": ok}, 400, "validation_failed", "url"},
		{"aws ipv6 metadata", h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "http://[fd00:ec2::254]/", "events": ok}, 400, "validation_failed", "url"},
		{"rfc 1918", h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "https://10.0.0.1/x", "events": ok}, 400, "validation_failed", "url"},
		{"rfc 1918 192.168", h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "https://192.168.1.20/x", "events": ok}, 400, "validation_failed", "url"},
		{"unspecified", h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "http://0.0.0.0/x", "events": ok}, 400, "validation_failed", "url"},
		{"ipv4-mapped loopback", h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "http://[::ffff:127.0.0.1]/x", "events": ok}, 400, "validation_failed", "url"},
		{"localhost", h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "http://localhost:3000/x", "events": ok}, 400, "validation_failed", "url"},
		{"sub.localhost", h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "http://app.localhost./x", "events": ok}, 400, "validation_failed", "url"},
		{"unknown event", h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "https://hooks.example.com/x", "events": []string{"purchase.completed", "user.created"}}, 400, "validation_failed", "events"},
		{"internal event", h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "https://hooks.example.com/x", "events": []string{"payment_intent.settle"}}, 400, "validation_failed", "events"},
		{"full subject", h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "https://hooks.example.com/x", "events": []string{"payments.purchase.completed"}}, 400, "validation_failed", "events"},
		{"no events", h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "https://hooks.example.com/x", "events": []string{}}, 400, "validation_failed", "events"},
		{"events missing", h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "https://hooks.example.com/x"}, 400, "validation_failed", "events"},
		{"events of the wrong type", h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "https://hooks.example.com/x", "events": "*"}, 400, "invalid_type", "events"},
		{"unknown field", h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "https://hooks.example.com/x", "events": ok, "secret": "mine"}, 400, "unknown_field", "secret"},
		{"buyer", buyer, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "https://hooks.example.com/x", "events": ok}, 403, "role_required", ""},
		{"creator lists", creator, "GET", "/v1/webhooks/endpoints", nil, 403, "role_required", ""},
		{"buyer reveals", buyer, "GET", "/v1/webhooks/endpoints/" + string(id) + "/secret", nil, 403, "role_required", ""},
		{"buyer replays", buyer, "POST", "/v1/webhooks/deliveries/whd_00000000000000000000000000/replay", nil, 403, "role_required", ""},
		{"anonymous", "", "GET", "/v1/webhooks/endpoints", nil, 401, "token_missing", ""},
		{"patch bad url", h.admin, "PATCH", "/v1/webhooks/endpoints/" + string(id), map[string]any{"url": "gopher://x"}, 400, "validation_failed", "url"},
		{"patch private url", h.admin, "PATCH", "/v1/webhooks/endpoints/" + string(id), map[string]any{"url": "http://172.16.5.4/"}, 400, "validation_failed", "url"},
		{"patch unknown event", h.admin, "PATCH", "/v1/webhooks/endpoints/" + string(id), map[string]any{"events": []string{"x"}}, 400, "validation_failed", "events"},
		{"patch unknown endpoint", h.admin, "PATCH", "/v1/webhooks/endpoints/" + string(strata.NewID("whe", 0, time.Now())), map[string]any{"enabled": false}, 404, "endpoint_not_found", ""},
		{"malformed id", h.admin, "GET", "/v1/webhooks/endpoints/evt_nope", nil, 404, "endpoint_not_found", ""},
		{"rotate unknown", h.admin, "POST", "/v1/webhooks/endpoints/" + string(strata.NewID("whe", 0, time.Now())) + "/rotate", nil, 404, "endpoint_not_found", ""},
		{"deliveries of unknown", h.admin, "GET", "/v1/webhooks/endpoints/" + string(strata.NewID("whe", 0, time.Now())) + "/deliveries", nil, 404, "endpoint_not_found", ""},
		{"bad limit", h.admin, "GET", "/v1/webhooks/endpoints/" + string(id) + "/deliveries?limit=0", nil, 400, "validation_failed", "limit"},
		{"bad status", h.admin, "GET", "/v1/webhooks/endpoints/" + string(id) + "/deliveries?status=lost", nil, 400, "validation_failed", "status"},
		{"bad cursor", h.admin, "GET", "/v1/webhooks/endpoints/" + string(id) + "/deliveries?cursor=x", nil, 400, "validation_failed", "cursor"},
		{"replay unknown", h.admin, "POST", "/v1/webhooks/deliveries/" + string(strata.NewID("whd", 0, time.Now())) + "/replay", nil, 404, "delivery_not_found", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(tc.token, tc.method, tc.path, tc.body)
			require.Equal(t, tc.status, r.status, "body: %s", r.body)
			require.Equal(t, tc.code, r.code(t))
			if tc.field != "" {
				require.Equal(t, []string{tc.field}, r.fields(t))
			}
		})
	}
	eps, err := h.svc.Endpoints(context.Background())
	require.NoError(t, err)
	require.Len(t, eps, 1, "nothing refused was stored")
	require.Equal(t, "https://hooks.example.com/x", eps[0].URL, "nothing refused was changed")
}

func TestPrivateURLsAllowedForDevelopment(t *testing.T) {
	t.Parallel()
	h := newHarness(t, webhook.Config{AllowPrivate: true})
	for _, u := range []string{"http://127.0.0.1:8080/x", "http://localhost:3000/hook", "http://10.1.2.3/", "http://[::1]:9000/"} {
		r := h.do(h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": u, "events": []string{"*"}})
		require.Equal(t, http.StatusCreated, r.status, "%s: %s", u, r.body)
	}
	// Scheme, host and userinfo rules hold even then.
	r := h.do(h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "file:///etc/passwd", "events": []string{"*"}})
	require.Equal(t, http.StatusBadRequest, r.status)
}

func TestEndpointsLiveOnShardZeroWithSealedSecrets(t *testing.T) {
	t.Parallel()
	h := newHarness(t, webhook.Config{})
	id, secret := h.createEndpoint("https://hooks.example.com/x", "*")

	stored, err := h.stored(0, "secret", id)
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(stored, "sealed:"), stored)
	require.NotContains(t, stored, strings.TrimPrefix(secret, "whsec_"))
	_, err = h.stored(15, "secret", id)
	require.ErrorIs(t, err, sql.ErrNoRows, "shard 15 lives in the other database, which holds no endpoint")

	// A sealed secret copied into another endpoint's row does not open.
	other, _ := h.createEndpoint("https://hooks.example.com/y", "*")
	_, err = h.router.Shard(0).Writer().Exec("UPDATE payments_webhook_endpoints SET secret = $1 WHERE id = $2", stored, other)
	require.NoError(t, err)
	r := h.do(h.admin, "GET", "/v1/webhooks/endpoints/"+string(other)+"/secret", nil)
	require.Equal(t, http.StatusInternalServerError, r.status)

	// Without a sealer, secrets are stored as they are.
	plain := webhook.NewService(webhook.Deps{Router: h.router, Clock: h.clock})
	ep, err := plain.CreateEndpoint(context.Background(), "https://hooks.example.com/z", []string{"*"})
	require.NoError(t, err)
	stored, err = h.stored(0, "secret", ep.ID)
	require.NoError(t, err)
	require.Equal(t, ep.Secret, stored)
}

func TestEndpointLimit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, webhook.Config{})
	ctx := context.Background()
	for range webhook.MaxEndpoints {
		_, err := h.svc.CreateEndpoint(ctx, "https://hooks.example.com/x", []string{"*"})
		require.NoError(t, err)
	}
	r := h.do(h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": "https://hooks.example.com/x", "events": []string{"*"}})
	require.Equal(t, http.StatusConflict, r.status)
	require.Equal(t, "too_many_endpoints", r.code(t))
}
