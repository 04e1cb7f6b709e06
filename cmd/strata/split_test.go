package main

import (
	"io"
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestSplitModulesCallEachOther runs content and payments in separate
// instances: a purchase on the payments instance prices the item through
// the content instance's internal API, and a download on the content
// instance checks the entitlement through the payments instance's.
func TestSplitModulesCallEachOther(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	natsPort, err := freePort()
	require.NoError(t, err)
	contentPort, err := freePort()
	require.NoError(t, err)
	paymentsPort, err := freePort()
	require.NoError(t, err)
	natsAddr := "127.0.0.1:" + strconv.Itoa(natsPort)
	contentURL := "http://127.0.0.1:" + strconv.Itoa(contentPort)
	paymentsURL := "http://127.0.0.1:" + strconv.Itoa(paymentsPort)

	// The content side runs the worker too (asset processing) and hosts NATS.
	contentIn := start(t, dir, "--roles", "auth,content,worker", "--nats-listen", natsAddr, "--http-addr", "127.0.0.1:"+strconv.Itoa(contentPort),
		"--upstream-payments", paymentsURL, "--gateway-health-interval", "50ms")
	paymentsIn := start(t, dir, "--roles", "payments", "--nats-url", "nats://"+natsAddr, "--http-addr", "127.0.0.1:"+strconv.Itoa(paymentsPort),
		"--upstream-content", contentURL, "--gateway-health-interval", "50ms")

	signup := func(email, role string) string {
		status, body := call(t, "POST", contentIn.base+"/v1/auth/signup", map[string]string{"email": email, "password": "correct horse battery staple", "name": "X", "role": role}, "")
		require.Equal(t, http.StatusCreated, status, "%v", body)
		return body["access_token"].(string)
	}
	creator, buyer := signup("maker@example.com", "creator"), signup("fan@example.com", "buyer")
	itemID, file := publishItem(t, contentIn, creator, 700)

	status, body := call(t, "GET", contentIn.base+"/v1/items/"+itemID+"/download", nil, buyer)
	require.Equal(t, http.StatusPaymentRequired, status, "%v", body)

	status, body, _ = callWith(t, "POST", paymentsIn.base+"/v1/topups", map[string]any{"amount": map[string]any{"amount": 1000, "currency": "USD"},
		"card": map[string]any{"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}}, buyer, http.Header{"Idempotency-Key": {"t1"}})
	require.Equal(t, http.StatusCreated, status, "%v", body)
	status, body = call(t, "POST", paymentsIn.base+"/v1/purchases", map[string]any{"item_id": itemID}, buyer)
	require.Equal(t, http.StatusCreated, status, "the payments instance prices the item through content: %v", body)
	require.Equal(t, map[string]any{"amount": float64(700), "currency": "USD"}, body["price"])
	status, body = call(t, "POST", paymentsIn.base+"/v1/purchases", map[string]any{"item_id": "itm_01m8fw0000000000000000000"}, buyer)
	require.Equal(t, http.StatusNotFound, status, "an unknown item is not found through the internal API: %v", body)

	req, err := http.NewRequest("GET", contentIn.base+"/v1/items/"+itemID+"/download", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+buyer)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "the content instance asks payments for the entitlement: %s", got)
	require.Equal(t, file, got)

	// Both calls went over HTTP, through the peer pools.
	for in, pool := range map[*instance]string{contentIn: "payments", paymentsIn: "content"} {
		resp, err := http.Get(in.base + "/metrics")
		require.NoError(t, err)
		metrics, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		require.Contains(t, string(metrics), `strata_gateway_attempts_total{outcome="ok",pool="`+pool+`"}`)
	}

	// The internal API wants the deployment's token.
	status, body = call(t, "GET", paymentsIn.base+"/internal/v1/entitlements/usr_x/"+itemID, nil, "")
	require.Equal(t, http.StatusUnauthorized, status, "%v", body)
	status, body = call(t, "GET", contentIn.base+"/internal/v1/catalog/"+itemID, nil, "not-the-token")
	require.Equal(t, http.StatusForbidden, status, "%v", body)
	require.Equal(t, "internal_token_invalid", body["code"])
}
