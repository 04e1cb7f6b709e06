package main

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stratadev/strata/internal/cache/redistest"
	"github.com/stretchr/testify/require"
)

// TestGatewayRateLimitHoldsAcrossGateways runs two gateways sharing a
// Redis: one client's requests, spread over both, are limited once, not
// once per gateway.
func TestGatewayRateLimitHoldsAcrossGateways(t *testing.T) {
	t.Parallel()
	redis := redistest.Start(t)
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer up.Close()
	args := []string{"--roles", "gateway", "--upstream-auth", up.URL, "--redis-url", redis.URL(),
		"--gateway-rate-limit", "5", "--gateway-rate-burst", "5", "--gateway-health-interval", "50ms"}
	a, b := start(t, t.TempDir(), args...), start(t, t.TempDir(), args...)
	// Both have seen the upstream healthy, and connected to Redis.
	for _, in := range []*instance{a, b} {
		require.Eventually(t, func() bool {
			status, _ := call(t, "GET", in.base+"/v1/auth/me", nil, "")
			return status == http.StatusOK || status == http.StatusTooManyRequests
		}, 10*time.Second, 20*time.Millisecond)
	}
	time.Sleep(1200 * time.Millisecond) // the buckets the checks above used refill (burst 5 at 5/s)

	allowed := 0
	start := time.Now()
	for i := range 20 {
		in := a
		if i%2 == 1 {
			in = b
		}
		status, body := call(t, "GET", in.base+"/v1/auth/me", nil, "")
		switch status {
		case http.StatusOK:
			allowed++
		case http.StatusTooManyRequests:
			require.Equal(t, "rate_limited", body["code"])
		default:
			t.Fatalf("status %d: %v", status, body)
		}
	}
	elapsed := time.Since(start).Seconds()
	require.LessOrEqual(t, float64(allowed), 5+5*elapsed+1, "the burst of 5 (and 5/s) holds across both gateways, not per gateway")
	require.GreaterOrEqual(t, allowed, 5)
}
