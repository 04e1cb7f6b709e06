package webhook_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/payments"
	"github.com/stratadev/strata/internal/payments/webhook"
	"github.com/stretchr/testify/require"
)

// dev is the configuration of delivery tests: the receivers are httptest
// servers on 127.0.0.1.
var dev = webhook.Config{AllowPrivate: true, Timeout: 5 * time.Second}

// verifyIndependently checks a Strata-Signature header the way a receiver
// in another language would, without the package's Verify: split on ",",
// find t and the v1 values, recompute the HMAC of "<t>.<body>".
func verifyIndependently(t testing.TB, header string, body []byte, secret string) bool {
	t.Helper()
	var ts string
	var sigs []string
	for _, kv := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(kv, "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sigs = append(sigs, v)
		}
	}
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "." + string(body)))
	want := m.Sum(nil)
	for _, s := range sigs {
		got, err := hex.DecodeString(s)
		if err == nil && hmac.Equal(got, want) {
			return true
		}
	}
	return false
}

func TestDeliverySignedAndVerified(t *testing.T) {
	t.Parallel()
	h := newHarness(t, dev)
	rc := newReceiver(t, always(http.StatusOK))
	ep, secret := h.createEndpoint(rc.URL+"/hooks?src=strata", "purchase.completed")
	payload := map[string]any{"purchase_id": "pur_1", "price": map[string]any{"amount": 1000, "currency": "EUR"}}
	m := h.message(payments.SubjectPurchaseCompleted, payload)
	h.dispatch(m)

	require.Equal(t, 1, h.sendDue(h.svc))
	reqs := rc.requests()
	require.Len(t, reqs, 1)
	got := reqs[0]
	require.Equal(t, "application/json", got.header.Get("Content-Type"))
	require.Equal(t, webhook.UserAgent, got.header.Get("User-Agent"))
	sig := got.header.Get("Strata-Signature")
	require.Equal(t, "t="+strconv.FormatInt(h.clock.Now().Unix(), 10), strings.Split(sig, ",")[0])
	require.Len(t, strings.Split(sig, ","), 2, "one v1: no rotation")
	require.NoError(t, webhook.Verify(sig, got.body, [][]byte{[]byte(secret)}, h.clock.Now(), 5*time.Minute))
	require.True(t, verifyIndependently(t, sig, got.body, secret))
	require.False(t, verifyIndependently(t, sig, got.body, webhook.NewSecret()))

	var env struct {
		ID      string          `json:"id"`
		Type    string          `json:"type"`
		Created int64           `json:"created"`
		Data    json.RawMessage `json:"data"`
	}
	require.NoError(t, json.Unmarshal(got.body, &env))
	require.Equal(t, m.ID, env.ID)
	require.Equal(t, "purchase.completed", env.Type)
	require.Equal(t, strata.ID(m.ID).Time().Unix(), env.Created)
	require.JSONEq(t, string(m.Data), string(env.Data))

	d := h.only(ep)
	require.Equal(t, webhook.StatusSucceeded, d.Status)
	require.Equal(t, 1, d.Attempts)
	require.Equal(t, http.StatusOK, d.LastStatusCode)
	require.True(t, d.NextAttemptAt.IsZero())
	require.Len(t, d.Log, 1)
	require.Equal(t, http.StatusOK, d.Log[0].StatusCode)
	require.Empty(t, d.Log[0].Error)

	// Nothing more to send.
	require.Zero(t, h.sendDue(h.svc))
	require.Len(t, rc.requests(), 1)
}

func TestFailingReceiverIsRetriedOnTheSchedule(t *testing.T) {
	t.Parallel()
	h := newHarness(t, dev)
	h.svc.SetRandForTest(func(n int64) int64 { return n - 1 }) // the longest delay: the ceiling
	rc := newReceiver(t, func(n int) int {
		if n <= 3 {
			return http.StatusInternalServerError
		}
		return http.StatusNoContent
	})
	ep, _ := h.createEndpoint(rc.URL, "*")
	h.dispatch(h.message(payments.SubjectIntentSucceeded, map[string]any{"intent_id": "pi_1"}))

	for n := 1; n <= 3; n++ {
		require.Equal(t, 1, h.sendDue(h.svc), "attempt %d", n)
		d := h.only(ep)
		require.Equal(t, webhook.StatusPending, d.Status)
		require.Equal(t, n, d.Attempts)
		require.Equal(t, http.StatusInternalServerError, d.LastStatusCode)
		require.Contains(t, d.LastError, "500")
		ceiling := webhook.RetryCeiling(n)
		require.Equal(t, 30*time.Second<<(n-1), ceiling)
		require.Equal(t, h.clock.Now().Add(ceiling), d.NextAttemptAt)

		// Not before its time.
		h.clock.Advance(ceiling - time.Millisecond)
		require.Zero(t, h.sendDue(h.svc))
		h.clock.Advance(time.Millisecond)
	}
	require.Equal(t, 1, h.sendDue(h.svc))
	d := h.only(ep)
	require.Equal(t, webhook.StatusSucceeded, d.Status)
	require.Equal(t, 4, d.Attempts)
	require.Equal(t, http.StatusNoContent, d.LastStatusCode)
	codes := []int{}
	for _, a := range d.Log {
		codes = append(codes, a.StatusCode)
	}
	require.Equal(t, []int{204, 500, 500, 500}, codes, "the log, newest first")

	// Every attempt carries the same body: receivers de-duplicate on its id.
	reqs := rc.requests()
	require.Len(t, reqs, 4)
	for _, r := range reqs[1:] {
		require.Equal(t, reqs[0].body, r.body)
	}
}

func TestRetryScheduleAndJitter(t *testing.T) {
	t.Parallel()
	want := []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 4 * time.Minute, 8 * time.Minute,
		16 * time.Minute, 32 * time.Minute, time.Hour, time.Hour}
	for i, w := range want {
		require.Equal(t, w, webhook.RetryCeiling(i+1), "after failure %d", i+1)
	}
	require.Equal(t, time.Hour, webhook.RetryCeiling(1000))

	// Full jitter draws below the ceiling, with a floor of a second.
	h := newHarness(t, dev)
	h.svc.SetRandForTest(func(int64) int64 { return 0 })
	rc := newReceiver(t, always(http.StatusServiceUnavailable))
	ep, _ := h.createEndpoint(rc.URL, "*")
	h.dispatch(h.message(payments.SubjectPurchaseCompleted, map[string]any{}))
	require.Equal(t, 1, h.sendDue(h.svc))
	require.Equal(t, h.clock.Now().Add(time.Second), h.only(ep).NextAttemptAt)
}

func TestDeliveryFailsAfterMaxAge(t *testing.T) {
	t.Parallel()
	cfg := dev
	cfg.MaxAge = 3 * time.Hour
	h := newHarness(t, cfg)
	rc := newReceiver(t, always(http.StatusBadGateway))
	ep, _ := h.createEndpoint(rc.URL, "*")
	h.dispatch(h.message(payments.SubjectPurchaseCompleted, map[string]any{}))
	first := h.clock.Now()

	attempts := 0
	for h.only(ep).Status == webhook.StatusPending {
		d := h.only(ep)
		require.False(t, d.NextAttemptAt.After(first.Add(cfg.MaxAge)), "never scheduled past the deadline")
		h.clock.Advance(d.NextAttemptAt.Sub(h.clock.Now()))
		require.Equal(t, 1, h.sendDue(h.svc))
		attempts++
		require.Less(t, attempts, 100)
	}
	d := h.only(ep)
	require.Equal(t, webhook.StatusFailed, d.Status)
	require.Equal(t, first.Add(cfg.MaxAge), h.clock.Now(), "the last attempt is made at the deadline")
	require.Equal(t, attempts, d.Attempts)
	require.GreaterOrEqual(t, attempts, 5, "exponential: 30s, 1m, 2m, 4m, ... capped at 1h")
	require.True(t, d.NextAttemptAt.IsZero())

	// A failed delivery stays failed.
	h.clock.Advance(24 * time.Hour)
	require.Zero(t, h.sendDue(h.svc))
	require.Len(t, rc.requests(), attempts)
}

// TestWorkerKilledMidDeliveryStillDelivers: a sender dies holding a
// delivery (it took the lease, perhaps even reached the receiver, and
// recorded nothing). Nobody else touches the delivery while the lease
// lasts; once it lapses another sender delivers it.
func TestWorkerKilledMidDeliveryStillDelivers(t *testing.T) {
	t.Parallel()

	t.Run("claimed, then killed", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, dev)
		rc := newReceiver(t, always(http.StatusOK))
		ep, _ := h.createEndpoint(rc.URL, "*")
		h.dispatch(h.message(payments.SubjectPurchaseCompleted, map[string]any{}))
		d := h.only(ep)

		ok, err := h.svc.ClaimForTest(context.Background(), d.ID)
		require.NoError(t, err)
		require.True(t, ok, "the doomed worker takes the lease")

		other := h.newService(dev)
		require.Zero(t, h.sendDue(other), "the lease holds")
		ok, err = other.ClaimForTest(context.Background(), d.ID)
		require.NoError(t, err)
		require.False(t, ok, "two senders never hold it at once")
		h.clock.Advance(other.Lease() - time.Millisecond)
		require.Zero(t, h.sendDue(other))
		require.Empty(t, rc.requests())

		h.clock.Advance(2 * time.Millisecond)
		require.Equal(t, 1, h.sendDue(other), "the lease lapsed")
		require.Len(t, rc.requests(), 1)
		require.Equal(t, webhook.StatusSucceeded, h.only(ep).Status)
	})

	t.Run("killed while the receiver handles the request", func(t *testing.T) {
		t.Parallel()
		h := newHarness(t, dev)
		arrived := make(chan struct{})
		release := make(chan struct{})
		var once sync.Once
		rc := newReceiver(t, func(n int) int {
			if n == 1 {
				once.Do(func() { close(arrived) })
				<-release // hangs until the test is done with it
			}
			return http.StatusOK
		})
		t.Cleanup(func() { close(release) })
		ep, _ := h.createEndpoint(rc.URL, "*")
		m := h.message(payments.SubjectPurchaseCompleted, map[string]any{"purchase_id": "pur_9"})
		h.dispatch(m)

		doomed := h.newService(dev)
		ctx, kill := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			_, err := doomed.SendDue(ctx)
			done <- err
		}()
		<-arrived
		kill() // the worker dies mid-request
		require.Error(t, <-done)
		d := h.only(ep)
		require.Equal(t, webhook.StatusPending, d.Status)
		require.Zero(t, d.Attempts, "the dead worker recorded nothing")

		other := h.newService(dev)
		require.Zero(t, h.sendDue(other), "the dead worker's lease still holds")
		h.clock.Advance(other.Lease() + time.Millisecond)
		require.Equal(t, 1, h.sendDue(other))
		d = h.only(ep)
		require.Equal(t, webhook.StatusSucceeded, d.Status)
		require.Equal(t, 1, d.Attempts)
		reqs := rc.requests()
		require.Len(t, reqs, 2, "at least once: the receiver saw it twice")
		require.Equal(t, reqs[0].body, reqs[1].body, "with the same event id, to de-duplicate on")
	})
}

func TestRotationSignsWithBothSecretsFor24Hours(t *testing.T) {
	t.Parallel()
	h := newHarness(t, dev)
	rc := newReceiver(t, always(http.StatusOK))
	ep, oldSecret := h.createEndpoint(rc.URL, "*")
	rotated, err := h.svc.RotateSecret(context.Background(), ep)
	require.NoError(t, err)
	newSecret := rotated.Secret

	h.dispatch(h.message(payments.SubjectPurchaseCompleted, map[string]any{}))
	require.Equal(t, 1, h.sendDue(h.svc))
	got := rc.requests()[0]
	sig := got.header.Get("Strata-Signature")
	require.Len(t, strings.Split(sig, ","), 3, "t and two v1")
	for _, s := range []string{oldSecret, newSecret} {
		require.NoError(t, webhook.Verify(sig, got.body, [][]byte{[]byte(s)}, h.clock.Now(), 0))
		require.True(t, verifyIndependently(t, sig, got.body, s))
	}

	h.clock.Advance(webhook.RotationOverlap)
	h.dispatch(h.message(payments.SubjectPurchaseCompleted, map[string]any{}))
	require.Equal(t, 1, h.sendDue(h.svc))
	got = rc.requests()[1]
	sig = got.header.Get("Strata-Signature")
	require.Len(t, strings.Split(sig, ","), 2, "the old secret stopped signing")
	require.NoError(t, webhook.Verify(sig, got.body, [][]byte{[]byte(newSecret)}, h.clock.Now(), 0))
	require.ErrorIs(t, webhook.Verify(sig, got.body, [][]byte{[]byte(oldSecret)}, h.clock.Now(), 0), webhook.ErrSignatureMismatch)
}

func TestDisabledEndpointHoldsItsDeliveries(t *testing.T) {
	t.Parallel()
	h := newHarness(t, dev)
	rc := newReceiver(t, always(http.StatusOK))
	ep, _ := h.createEndpoint(rc.URL, "*")
	h.dispatch(h.message(payments.SubjectPurchaseCompleted, map[string]any{}))
	r := h.do(h.admin, "PATCH", "/v1/webhooks/endpoints/"+string(ep), map[string]any{"enabled": false})
	require.Equal(t, http.StatusOK, r.status)
	require.Zero(t, h.sendDue(h.svc))
	h.dispatch(h.message(payments.SubjectPurchaseCompleted, map[string]any{}))
	require.Len(t, h.deliveries(ep), 1, "no new deliveries while disabled")

	r = h.do(h.admin, "PATCH", "/v1/webhooks/endpoints/"+string(ep), map[string]any{"enabled": true})
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, 1, h.sendDue(h.svc), "the held delivery goes once enabled")
	require.Len(t, rc.requests(), 1)
}

func TestReplay(t *testing.T) {
	t.Parallel()
	h := newHarness(t, dev)
	rc := newReceiver(t, always(http.StatusOK))
	ep, _ := h.createEndpoint(rc.URL, "*")
	h.dispatch(h.message(payments.SubjectPurchaseRefunded, map[string]any{"purchase_id": "pur_1"}))
	require.Equal(t, 1, h.sendDue(h.svc))
	d := h.only(ep)
	require.Equal(t, webhook.StatusSucceeded, d.Status)

	h.clock.Advance(time.Hour)
	r := h.do(h.admin, "POST", "/v1/webhooks/deliveries/"+string(d.ID)+"/replay", nil)
	require.Equal(t, http.StatusAccepted, r.status, "body: %s", r.body)
	j := r.json(t)
	require.Equal(t, "pending", j["status"])
	require.Equal(t, float64(1), j["attempt_count"])
	require.Len(t, j["attempts"], 1)
	require.Equal(t, 1, h.sendDue(h.svc))
	d = h.only(ep)
	require.Equal(t, webhook.StatusSucceeded, d.Status)
	require.Equal(t, 2, d.Attempts)
	reqs := rc.requests()
	require.Len(t, reqs, 2)
	require.Equal(t, reqs[0].body, reqs[1].body, "the same event, the same id")

	// Not while a sender holds it, nor to a disabled endpoint.
	r = h.do(h.admin, "POST", "/v1/webhooks/deliveries/"+string(d.ID)+"/replay", nil)
	require.Equal(t, http.StatusAccepted, r.status)
	ok, err := h.svc.ClaimForTest(context.Background(), d.ID)
	require.NoError(t, err)
	require.True(t, ok)
	r = h.do(h.admin, "POST", "/v1/webhooks/deliveries/"+string(d.ID)+"/replay", nil)
	require.Equal(t, http.StatusConflict, r.status)
	require.Equal(t, "delivery_in_flight", r.code(t))
	h.clock.Advance(h.svc.Lease() + time.Millisecond)
	_, err = h.svc.UpdateEndpoint(context.Background(), ep, webhook.EndpointUpdate{Enabled: new(false)})
	require.NoError(t, err)
	r = h.do(h.admin, "POST", "/v1/webhooks/deliveries/"+string(d.ID)+"/replay", nil)
	require.Equal(t, http.StatusConflict, r.status)
	require.Equal(t, "endpoint_disabled", r.code(t))
}

func TestReplayRevivesAFailedDelivery(t *testing.T) {
	t.Parallel()
	cfg := dev
	cfg.MaxAge = time.Minute
	h := newHarness(t, cfg)
	var mu sync.Mutex
	status := http.StatusInternalServerError
	rc := newReceiver(t, func(int) int { mu.Lock(); defer mu.Unlock(); return status })
	ep, _ := h.createEndpoint(rc.URL, "*")
	h.dispatch(h.message(payments.SubjectPurchaseCompleted, map[string]any{}))
	for h.only(ep).Status == webhook.StatusPending {
		h.clock.Advance(time.Minute)
		h.sendDue(h.svc)
	}
	d := h.only(ep)
	require.Equal(t, webhook.StatusFailed, d.Status)

	// The receiver is fixed; an admin replays: a fresh retry window.
	mu.Lock()
	status = http.StatusOK
	mu.Unlock()
	_, err := h.svc.Replay(context.Background(), d.ID)
	require.NoError(t, err)
	require.Equal(t, 1, h.sendDue(h.svc))
	d2 := h.only(ep)
	require.Equal(t, webhook.StatusSucceeded, d2.Status)
	require.Equal(t, d.Attempts+1, d2.Attempts)
}

func TestDeliveryLog(t *testing.T) {
	t.Parallel()
	h := newHarness(t, dev)
	rc := newReceiver(t, always(http.StatusOK))
	ep, _ := h.createEndpoint(rc.URL, "*")
	var ids []string
	for range 3 {
		m := h.message(payments.SubjectPurchaseCompleted, map[string]any{})
		ids = append(ids, m.ID)
		h.dispatch(m)
		h.clock.Advance(time.Millisecond)
	}
	require.Equal(t, 3, h.sendDue(h.svc))
	h.dispatch(h.message(payments.SubjectPurchaseRefunded, map[string]any{})) // pending

	path := "/v1/webhooks/endpoints/" + string(ep) + "/deliveries"
	r := h.do(h.admin, "GET", path+"?limit=2", nil)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	page := r.json(t)
	ds := page["deliveries"].([]any)
	require.Len(t, ds, 2)
	first := ds[0].(map[string]any)
	require.Equal(t, "pending", first["status"], "newest first")
	require.NotEmpty(t, first["next_attempt_at"])
	require.Empty(t, first["attempts"])
	second := ds[1].(map[string]any)
	require.Equal(t, ids[2], second["event_id"])
	require.Equal(t, "purchase.completed", second["event_type"])
	require.Equal(t, string(ep), second["endpoint_id"])
	require.Equal(t, "succeeded", second["status"])
	log := second["attempts"].([]any)
	require.Len(t, log, 1)
	require.Equal(t, float64(200), log[0].(map[string]any)["status_code"])
	require.Contains(t, log[0], "duration_ms")

	r = h.do(h.admin, "GET", path+"?limit=2&cursor="+page["next_cursor"].(string), nil)
	require.Equal(t, http.StatusOK, r.status)
	page = r.json(t)
	require.Len(t, page["deliveries"], 2)
	require.NotContains(t, page, "next_cursor")

	r = h.do(h.admin, "GET", path+"?status=succeeded", nil)
	require.Len(t, r.json(t)["deliveries"], 3)
	one := r.json(t)["deliveries"].([]any)[0].(map[string]any)
	r = h.do(h.admin, "GET", "/v1/webhooks/deliveries/"+one["id"].(string), nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, one["event_id"], r.json(t)["event_id"])
}

func TestAttemptLogIsBounded(t *testing.T) {
	t.Parallel()
	h := newHarness(t, dev)
	h.svc.SetRandForTest(func(int64) int64 { return 0 })
	rc := newReceiver(t, always(http.StatusTeapot))
	ep, _ := h.createEndpoint(rc.URL, "*")
	h.dispatch(h.message(payments.SubjectPurchaseCompleted, map[string]any{}))
	for range 55 {
		require.Equal(t, 1, h.sendDue(h.svc))
		h.clock.Advance(time.Second)
	}
	d := h.only(ep)
	require.Equal(t, 55, d.Attempts)
	require.Len(t, d.Log, 50, "the last 50 attempts")
	require.Equal(t, http.StatusTeapot, d.Log[0].StatusCode)
}

func TestSweepForgetsOldDeliveries(t *testing.T) {
	t.Parallel()
	h := newHarness(t, dev)
	rc := newReceiver(t, always(http.StatusOK))
	ep, _ := h.createEndpoint(rc.URL, "*")
	h.dispatch(h.message(payments.SubjectPurchaseCompleted, map[string]any{}))
	require.Equal(t, 1, h.sendDue(h.svc))
	h.svc.SetRandForTest(func(int64) int64 { return 0 })
	h.dispatch(h.message(payments.SubjectPurchaseCompleted, map[string]any{})) // stays pending
	_, err := h.svc.UpdateEndpoint(context.Background(), ep, webhook.EndpointUpdate{Enabled: new(false)})
	require.NoError(t, err)

	n, err := h.svc.Sweep(context.Background())
	require.NoError(t, err)
	require.Zero(t, n)
	h.clock.Advance(webhook.Retention + time.Second)
	n, err = h.svc.Sweep(context.Background())
	require.NoError(t, err)
	require.Equal(t, 2, n, "the finished delivery and its event; its attempt went with it")
	ds := h.deliveries(ep)
	require.Len(t, ds, 1)
	require.Equal(t, webhook.StatusPending, ds[0].Status, "pending deliveries are kept")
	var attempts int
	require.NoError(t, h.router.Shard(0).Reader().QueryRow("SELECT COUNT(*) FROM payments_webhook_attempts").Scan(&attempts))
	require.Zero(t, attempts)
}

func TestDeletingAnEndpointDropsItsDeliveries(t *testing.T) {
	t.Parallel()
	h := newHarness(t, dev)
	rc := newReceiver(t, always(http.StatusOK))
	ep, _ := h.createEndpoint(rc.URL, "*")
	h.dispatch(h.message(payments.SubjectPurchaseCompleted, map[string]any{}))
	require.NoError(t, h.svc.DeleteEndpoint(context.Background(), ep))
	require.Zero(t, h.sendDue(h.svc))
	var n int
	require.NoError(t, h.router.Shard(0).Reader().QueryRow("SELECT COUNT(*) FROM payments_webhook_deliveries").Scan(&n))
	require.Zero(t, n)
}

// TestRunSender runs the loop as the worker does: a dispatched event is
// delivered without waiting for the next poll.
func TestRunSender(t *testing.T) {
	t.Parallel()
	h := newHarness(t, dev)
	rc := newReceiver(t, always(http.StatusOK))
	ep, _ := h.createEndpoint(rc.URL, "*")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.svc.RunSender(ctx) }()
	h.dispatch(h.message(payments.SubjectPurchaseCompleted, map[string]any{}))
	deadline := time.Now().Add(10 * time.Second)
	for h.only(ep).Status != webhook.StatusSucceeded {
		require.True(t, time.Now().Before(deadline), "not delivered")
		time.Sleep(5 * time.Millisecond) // polling for the outcome, not waiting for work to happen
	}
	cancel()
	require.NoError(t, <-done)
}
