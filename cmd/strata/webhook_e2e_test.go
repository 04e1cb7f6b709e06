package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratadev/strata/internal/payments/webhook"
	"github.com/stretchr/testify/require"
)

func TestWebhookEndToEnd(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var out, errOut syncBuffer
	require.NoError(t, run(context.Background(), []string{"users", "create", "--data-dir", dir, "--email", "root@example.com", "--role", "admin"},
		noEnv, strings.NewReader("a long admin passphrase\n"), &out, &errOut), errOut.String())

	var mu sync.Mutex
	var got []*http.Request
	var bodies [][]byte
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, r)
		bodies = append(bodies, b)
		mu.Unlock()
	}))
	defer rc.Close()

	in := start(t, dir, "--webhooks-allow-private")
	_, body := call(t, "POST", in.base+"/v1/auth/login", map[string]string{"email": "root@example.com", "password": "a long admin passphrase"}, "")
	admin := body["access_token"].(string)
	status, ep := call(t, "POST", in.base+"/v1/webhooks/endpoints", map[string]any{"url": rc.URL + "/hook", "events": []string{"payment_intent.succeeded"}}, admin)
	require.Equal(t, http.StatusCreated, status, "%v", ep)
	secret := ep["secret"].(string)

	status, body = call(t, "POST", in.base+"/v1/auth/signup", map[string]string{"email": "b@example.com", "password": "correct horse battery staple", "name": "B"}, "")
	require.Equal(t, http.StatusCreated, status, "%v", body)
	buyer := body["access_token"].(string)
	status, body = call(t, "POST", in.base+"/v1/topups", map[string]any{"amount": map[string]any{"amount": 1000, "currency": "USD"},
		"card": map[string]any{"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}}, buyer)
	require.Equal(t, http.StatusCreated, status, "%v", body)

	require.Eventually(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 }, 15*time.Second, 20*time.Millisecond)
	mu.Lock()
	r, b := got[0], bodies[0]
	mu.Unlock()
	require.NoError(t, webhook.Verify(r.Header.Get("Strata-Signature"), b, [][]byte{[]byte(secret)}, time.Now(), 0))
	var env map[string]any
	require.NoError(t, json.Unmarshal(b, &env))
	require.Equal(t, "payment_intent.succeeded", env["type"])
	require.Equal(t, body["id"], env["data"].(map[string]any)["intent_id"])
	t.Logf("received %s", b)

	status, list := call(t, "GET", in.base+"/v1/webhooks/endpoints/"+ep["id"].(string)+"/deliveries", nil, admin)
	require.Equal(t, http.StatusOK, status)
	require.Eventually(t, func() bool {
		_, list = call(t, "GET", in.base+"/v1/webhooks/endpoints/"+ep["id"].(string)+"/deliveries", nil, admin)
		return list["deliveries"].([]any)[0].(map[string]any)["status"] == "succeeded"
	}, 5*time.Second, 20*time.Millisecond)
}
