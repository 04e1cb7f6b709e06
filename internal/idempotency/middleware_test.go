package idempotency_test

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/idempotency"
	"github.com/stretchr/testify/require"
)

const body = `{"item_id":"itm_1","amount":500}`

func TestReplaySameRequest(t *testing.T) {
	t.Parallel()
	h := setup(t, idempotency.Config{})
	u := user(2)

	first := h.post(u, "key-1", body)
	requireFresh(t, first, http.StatusCreated)
	require.Equal(t, "/v1/things/thing_1", first.Header().Get("Location"))
	require.Equal(t, "session=secret", first.Header().Get("Set-Cookie"), "the fresh response is untouched")

	for range 2 {
		again := h.post(u, "key-1", body)
		requireReplay(t, first, again)
	}
	require.EqualValues(t, 1, h.calls.Load(), "the handler ran once")
	require.Equal(t, []string{body}, h.handlerBodies(), "the handler read the whole body")
	require.Equal(t, []int{1, 0, 0}, h.rows(t), "the row lives on the caller's shard")
}

func TestKeyReusedWithDifferentRequest(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name           string
		method, target string
		body           string
	}{
		{name: "other body", method: http.MethodPost, target: "/v1/things", body: `{"item_id":"itm_2","amount":500}`},
		{name: "same JSON, other bytes", method: http.MethodPost, target: "/v1/things", body: `{"amount":500,"item_id":"itm_1"}`},
		{name: "empty body", method: http.MethodPost, target: "/v1/things", body: ""},
		{name: "other path", method: http.MethodPost, target: "/v1/things/thing_9/refund", body: body},
		{name: "with a query", method: http.MethodPost, target: "/v1/things?dry_run=1", body: body},
		{name: "other method", method: http.MethodPut, target: "/v1/things", body: body},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := setup(t, idempotency.Config{})
			u := user(4)
			requireFresh(t, h.post(u, "k", body), http.StatusCreated)

			w := h.send(newRequest(u, tt.method, tt.target, "k", tt.body))
			require.Equal(t, http.StatusUnprocessableEntity, w.Code)
			require.Equal(t, idempotency.ReasonKeyReused, problem(t, w).Code)
			require.EqualValues(t, 1, h.calls.Load())

			requireReplay(t, h.post(u, "k", body), h.post(u, "k", body))
		})
	}
}

func TestConcurrentRequestIsInUse(t *testing.T) {
	t.Parallel()
	h := setup(t, idempotency.Config{})
	u := user(7)
	entered, release := make(chan struct{}), make(chan struct{})
	h.setBefore(func(n int64) {
		if n == 1 {
			close(entered)
			<-release
		}
	})

	done := make(chan *bytesRecorder, 1)
	go func() { done <- record(h.post(u, "k", body)) }()
	<-entered

	w := h.post(u, "k", body)
	require.Equal(t, http.StatusConflict, w.Code)
	require.Equal(t, "1", w.Header().Get("Retry-After"))
	require.Equal(t, idempotency.ReasonKeyInUse, problem(t, w).Code)
	// A different request with the key is refused as reuse, running or not.
	w = h.post(u, "k", `{"other":true}`)
	require.Equal(t, http.StatusUnprocessableEntity, w.Code)

	close(release)
	first := <-done
	require.Equal(t, http.StatusCreated, first.code)
	again := h.post(u, "k", body)
	require.Equal(t, "true", again.Header().Get(idempotency.HeaderReplayed))
	require.Equal(t, first.body, again.Body.String())
	require.EqualValues(t, 1, h.calls.Load(), "the handler ran once")
}

// bytesRecorder is what a goroutine hands back of a response.
type bytesRecorder struct {
	code int
	body string
}

func record(w interface {
	Result() *http.Response
}) *bytesRecorder {
	res := w.Result()
	var b bytes.Buffer
	_, _ = b.ReadFrom(res.Body)
	return &bytesRecorder{code: res.StatusCode, body: b.String()}
}

func TestConcurrentRequestsRunOnce(t *testing.T) {
	t.Parallel()
	h := setup(t, idempotency.Config{})
	u := user(3)
	var wg sync.WaitGroup
	codes := make(chan int, 20)
	for range 20 {
		wg.Go(func() { codes <- h.post(u, "burst", body).Code })
	}
	wg.Wait()
	close(codes)
	for code := range codes {
		require.Contains(t, []int{http.StatusCreated, http.StatusConflict}, code)
	}
	require.EqualValues(t, 1, h.calls.Load(), "however they interleave, one request runs")
}

func TestConcurrentTakeoverRunsOnce(t *testing.T) {
	t.Parallel()
	h := setup(t, idempotency.Config{LockTimeout: 30 * time.Second})
	u := user(6)
	entered, release := make(chan struct{}), make(chan struct{})
	h.setBefore(func(n int64) {
		if n == 1 {
			close(entered)
			<-release
		}
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.post(u, "k", body)
	}()
	<-entered
	h.clock.Advance(time.Minute)

	var wg sync.WaitGroup
	codes := make(chan int, 20)
	for range 20 {
		wg.Go(func() { codes <- h.post(u, "k", body).Code })
	}
	wg.Wait()
	close(codes)
	for code := range codes {
		require.Contains(t, []int{http.StatusCreated, http.StatusConflict}, code)
	}
	require.EqualValues(t, 2, h.calls.Load(), "of the retries of an abandoned key, one takes it over")
	close(release)
	<-done
}

func TestWhichResponsesAreRecorded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		status   int
		recorded bool
	}{
		{http.StatusOK, true},
		{http.StatusCreated, true},
		{http.StatusAccepted, true},
		{http.StatusNoContent, true},
		{http.StatusSeeOther, true},
		{http.StatusPaymentRequired, true},
		{http.StatusNotFound, true},
		{http.StatusGone, true},
		{http.StatusBadRequest, false},
		{http.StatusUnauthorized, false},
		{http.StatusForbidden, false},
		{http.StatusRequestTimeout, false},
		{http.StatusConflict, false},
		{http.StatusRequestEntityTooLarge, false},
		{http.StatusUnsupportedMediaType, false},
		{http.StatusUnprocessableEntity, false},
		{http.StatusTooManyRequests, false},
		{http.StatusInternalServerError, false},
		{http.StatusBadGateway, false},
		{http.StatusServiceUnavailable, false},
	}
	for _, tt := range tests {
		t.Run(http.StatusText(tt.status), func(t *testing.T) {
			t.Parallel()
			h := setup(t, idempotency.Config{})
			h.setReply(replyWith(tt.status))
			u := user(5)
			first := h.post(u, "k", body)
			requireFresh(t, first, tt.status)
			again := h.post(u, "k", body)
			if tt.recorded {
				requireReplay(t, first, again)
				require.EqualValues(t, 1, h.calls.Load())
				return
			}
			requireFresh(t, again, tt.status)
			require.EqualValues(t, 2, h.calls.Load(), "a retry runs the handler again")
			require.Equal(t, []int{0, 0, 0}, h.rows(t), "no row stays behind")

			// A corrected retry succeeds and is recorded from then on.
			h.setReply(created)
			fixed := h.post(u, "k", body)
			requireFresh(t, fixed, http.StatusCreated)
			requireReplay(t, fixed, h.post(u, "k", body))
			require.EqualValues(t, 3, h.calls.Load())
		})
	}
}

func TestKeysAreScopedPerUser(t *testing.T) {
	t.Parallel()
	h := setup(t, idempotency.Config{})
	alice, bob, carol := user(1), user(6), user(1) // carol shares alice's shard
	a := h.post(alice, "shared", body)
	b := h.post(bob, "shared", body)
	c := h.post(carol, "shared", body)
	for _, w := range []int{a.Code, b.Code, c.Code} {
		require.Equal(t, http.StatusCreated, w)
	}
	require.EqualValues(t, 3, h.calls.Load(), "equal keys of different users never meet")
	require.Equal(t, []int{2, 0, 1}, h.rows(t))

	requireReplay(t, a, h.post(alice, "shared", body))
	requireReplay(t, b, h.post(bob, "shared", body))
	requireReplay(t, c, h.post(carol, "shared", body))
	require.NotEqual(t, a.Body.String(), b.Body.String())
}

func TestScopeThatIsNotAnID(t *testing.T) {
	t.Parallel()
	h := setup(t, idempotency.Config{})
	u := &strata.Principal{UserID: "service-account"}
	first := h.post(u, "k", body)
	requireFresh(t, first, http.StatusCreated)
	requireReplay(t, first, h.post(u, "k", body))
	require.EqualValues(t, 1, h.calls.Load())
}

func TestPassThrough(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name              string
		anonymous         bool
		method, key, body string
	}{
		{name: "no key", method: http.MethodPost, body: body},
		{name: "no principal", anonymous: true, method: http.MethodPost, key: "k", body: body},
		{name: "no principal, bad key", anonymous: true, method: http.MethodPost, key: "bad key", body: body},
		{name: "safe method", method: http.MethodGet, key: "k"},
		{name: "head", method: http.MethodHead, key: "k"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := setup(t, idempotency.Config{})
			u := user(0)
			if tt.anonymous {
				u = nil
			}
			for range 2 {
				w := h.send(newRequest(u, tt.method, "/v1/things", tt.key, tt.body))
				requireFresh(t, w, http.StatusCreated)
				require.Equal(t, "session=secret", w.Header().Get("Set-Cookie"))
			}
			require.EqualValues(t, 2, h.calls.Load())
			require.Equal(t, []int{0, 0, 0}, h.rows(t), "nothing stored")
		})
	}
}

func TestBadKeys(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		values []string
		valid  bool
	}{
		{name: "empty", values: []string{""}},
		{name: "blank", values: []string{"   "}},
		{name: "256 characters", values: []string{strings.Repeat("k", 256)}},
		{name: "inner space", values: []string{"my key"}},
		{name: "control character", values: []string{"key\x01"}},
		{name: "tab", values: []string{"key\t1"}},
		{name: "delete", values: []string{"key\x7f"}},
		{name: "not ascii", values: []string{"clé"}},
		{name: "given twice", values: []string{"a", "b"}},
		{name: "255 characters", values: []string{strings.Repeat("k", 255)}, valid: true},
		{name: "one character", values: []string{"k"}, valid: true},
		{name: "uuid", values: []string{"0b9c5a8e-2f1d-4c7a-9e3b-5d6f7a8b9c0d"}, valid: true},
		{name: "printable edges", values: []string{"!~\"{}"}, valid: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := setup(t, idempotency.Config{})
			r := newRequest(user(0), http.MethodPost, "/v1/things", "", body)
			r.Header[idempotency.HeaderKey] = tt.values
			w := h.send(r)
			if tt.valid {
				requireFresh(t, w, http.StatusCreated)
				return
			}
			require.Equal(t, http.StatusBadRequest, w.Code)
			p := problem(t, w)
			require.Equal(t, "validation_failed", p.Code)
			require.Len(t, p.Errors, 1)
			require.Equal(t, idempotency.HeaderKey, p.Errors[0].Field)
			require.Zero(t, h.calls.Load(), "the handler did not run")
		})
	}
}

func TestBodyTooLarge(t *testing.T) {
	t.Parallel()
	h := setup(t, idempotency.Config{MaxBody: 16})
	u := user(0)
	w := h.post(u, "k", strings.Repeat("x", 17))
	require.Equal(t, http.StatusRequestEntityTooLarge, w.Code)
	require.Equal(t, "body_too_large", problem(t, w).Code)
	require.Zero(t, h.calls.Load())
	require.Equal(t, []int{0, 0, 0}, h.rows(t))

	requireFresh(t, h.post(u, "k", strings.Repeat("x", 16)), http.StatusCreated)
	require.Equal(t, []string{strings.Repeat("x", 16)}, h.handlerBodies())
}

func TestLockTakeover(t *testing.T) {
	t.Parallel()
	// The late request's own outcome: recorded (201) or released (500).
	for _, lateStatus := range []int{http.StatusCreated, http.StatusInternalServerError} {
		t.Run(http.StatusText(lateStatus), func(t *testing.T) {
			t.Parallel()
			h := setup(t, idempotency.Config{LockTimeout: 30 * time.Second})
			h.setReply(func(n int64) reply {
				if n == 1 {
					return replyWith(lateStatus)(n)
				}
				return created(n)
			})
			u := user(4)
			entered := []chan struct{}{make(chan struct{}), make(chan struct{})}
			release := []chan struct{}{make(chan struct{}), make(chan struct{})}
			h.setBefore(func(n int64) {
				if n <= 2 {
					close(entered[n-1])
					<-release[n-1]
				}
			})
			done := []chan *bytesRecorder{make(chan *bytesRecorder, 1), make(chan *bytesRecorder, 1)}
			// The first request hangs past its lock, like an instance that died.
			go func() { done[0] <- record(h.post(u, "k", body)) }()
			<-entered[0]

			h.clock.Advance(29 * time.Second)
			require.Equal(t, http.StatusConflict, h.post(u, "k", body).Code, "the lock still holds")

			h.clock.Advance(time.Second)
			go func() { done[1] <- record(h.post(u, "k", body)) }()
			<-entered[1] // the retry took the key over and runs

			// The hung request finishes late: it must neither record its
			// response nor free the key of the request that took over.
			close(release[0])
			require.Equal(t, lateStatus, (<-done[0]).code)
			require.Equal(t, http.StatusConflict, h.post(u, "k", body).Code, "the key is still held by the taker")

			close(release[1])
			second := <-done[1]
			require.Equal(t, http.StatusCreated, second.code)
			again := h.post(u, "k", body)
			require.Equal(t, "true", again.Header().Get(idempotency.HeaderReplayed))
			require.Equal(t, second.body, again.Body.String())
			require.Equal(t, "/v1/things/thing_2", again.Header().Get("Location"))
			require.EqualValues(t, 2, h.calls.Load())
		})
	}
}

func TestExpiryAfterTTL(t *testing.T) {
	t.Parallel()
	h := setup(t, idempotency.Config{TTL: 2 * time.Hour})
	u := user(6)
	first := h.post(u, "k", body)
	requireFresh(t, first, http.StatusCreated)

	h.clock.Advance(2*time.Hour - time.Millisecond)
	requireReplay(t, first, h.post(u, "k", body))

	h.clock.Advance(time.Millisecond)
	// Expired: the key is unused again, even by another request.
	second := h.post(u, "k", `{"a":"new request"}`)
	requireFresh(t, second, http.StatusCreated)
	require.Equal(t, "/v1/things/thing_2", second.Header().Get("Location"))
	requireReplay(t, second, h.post(u, "k", `{"a":"new request"}`))
	require.Equal(t, http.StatusUnprocessableEntity, h.post(u, "k", body).Code)
	require.EqualValues(t, 2, h.calls.Load())
}

func TestStorageFailure(t *testing.T) {
	t.Parallel()
	h := setup(t, idempotency.Config{})
	require.NoError(t, h.router.Close())
	w := h.post(user(0), "k", body)
	require.Equal(t, http.StatusServiceUnavailable, w.Code)
	require.Equal(t, "unavailable", problem(t, w).Code)
	require.NotEmpty(t, w.Header().Get("Retry-After"))
	require.Zero(t, h.calls.Load(), "the handler did not run")
}

func TestResponseTooLargeToRecord(t *testing.T) {
	t.Parallel()
	h := setup(t, idempotency.Config{MaxStoredBody: 64})
	big := bytes.Repeat([]byte("y"), 100)
	h.setReply(func(n int64) reply { rp := created(n); rp.body = big; return rp })
	u := user(0)
	first := h.post(u, "k", body)
	requireFresh(t, first, http.StatusCreated)
	require.Equal(t, big, first.Body.Bytes(), "the client gets the whole body")
	requireFresh(t, h.post(u, "k", body), http.StatusCreated)
	require.EqualValues(t, 2, h.calls.Load(), "not recorded: a retry runs again")

	h.setReply(func(n int64) reply { rp := created(n); rp.body = big[:64]; return rp })
	at := h.post(u, "k", body)
	requireReplay(t, at, h.post(u, "k", body))
}

func TestBinaryBodyReplaysExactly(t *testing.T) {
	t.Parallel()
	h := setup(t, idempotency.Config{})
	raw := []byte{0x00, 0xff, 0xfe, 'a', 0x00, 0xc3}
	h.setReply(func(n int64) reply {
		return reply{status: http.StatusOK, body: raw, headers: map[string]string{"Content-Type": "application/octet-stream"}}
	})
	u := user(0)
	first := h.post(u, "k", body)
	requireFresh(t, first, http.StatusOK)
	again := h.post(u, "k", body)
	requireReplay(t, first, again)
	require.Equal(t, raw, again.Body.Bytes())
}

func TestHandlerPanicReleasesKey(t *testing.T) {
	t.Parallel()
	h := setup(t, idempotency.Config{})
	h.setBefore(func(n int64) {
		if n == 1 {
			panic("boom")
		}
	})
	u := user(0)
	require.Equal(t, http.StatusInternalServerError, h.post(u, "k", body).Code)
	require.Equal(t, []int{0, 0, 0}, h.rows(t), "the key was released")
	requireFresh(t, h.post(u, "k", body), http.StatusCreated)
	require.EqualValues(t, 2, h.calls.Load())
}

func TestHandlerWritingNothingIsRecordedAs200(t *testing.T) {
	t.Parallel()
	h := setup(t, idempotency.Config{})
	h.setReply(func(int64) reply { return reply{status: http.StatusOK} })
	u := user(0)
	first := h.post(u, "k", "")
	requireFresh(t, first, http.StatusOK)
	again := h.post(u, "k", "")
	require.Equal(t, http.StatusOK, again.Code)
	require.Empty(t, again.Body.String())
	require.Equal(t, "true", again.Header().Get(idempotency.HeaderReplayed))
	require.EqualValues(t, 1, h.calls.Load())
}

func TestClientGoneStillRecords(t *testing.T) {
	t.Parallel()
	h := setup(t, idempotency.Config{})
	u := user(0)
	ctx, cancel := context.WithCancel(strata.NewContext(context.Background(), u))
	defer cancel()
	h.setBefore(func(int64) { cancel() }) // the client leaves while the handler runs
	first := h.send(newRequest(nil, http.MethodPost, "/v1/things", "k", body).WithContext(ctx))
	requireFresh(t, first, http.StatusCreated)
	h.setBefore(nil)
	requireReplay(t, first, h.post(u, "k", body))
	require.EqualValues(t, 1, h.calls.Load())
}
