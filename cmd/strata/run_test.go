package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"image"
	pngpkg "image/png"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// syncBuffer is a bytes.Buffer safe to write from the server while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type instance struct {
	base    string
	stdout  *syncBuffer
	stderr  *syncBuffer
	cancel  context.CancelFunc
	done    chan error
	dataDir string
}

var listenRE = regexp.MustCompile(`listening on (http://\S+)`)

// start runs `strata serve` in-process on a free port with a fresh data
// directory and waits until it listens.
func start(t *testing.T, dataDir string, extra ...string) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	in := &instance{stdout: &syncBuffer{}, stderr: &syncBuffer{}, cancel: cancel, done: make(chan error, 1), dataDir: dataDir}
	args := append([]string{"serve", "--data-dir", dataDir, "--http-addr", "127.0.0.1:0", "--log-format", "text", "--shutdown-delay", "0s"}, extra...)
	go func() { in.done <- run(ctx, args, noEnv, strings.NewReader(""), in.stdout, in.stderr) }()
	require.Eventually(t, func() bool {
		select {
		case err := <-in.done:
			t.Fatalf("strata exited early: %v\nstderr: %s", err, in.stderr.String())
		default:
		}
		m := listenRE.FindStringSubmatch(in.stdout.String())
		if m == nil {
			return false
		}
		in.base = m[1]
		return true
	}, 30*time.Second, 10*time.Millisecond)
	t.Cleanup(func() { in.stop(t) })
	return in
}

func (in *instance) stop(t *testing.T) {
	t.Helper()
	in.cancel()
	select {
	case err, ok := <-in.done:
		if ok {
			require.NoError(t, err, "stderr: %s", in.stderr.String())
			close(in.done)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("strata did not stop within 30s")
	}
}

func noEnv(string) string { return "" }

func call(t *testing.T, method, url string, body any, token string) (int, map[string]any) {
	t.Helper()
	status, m, _ := callWith(t, method, url, body, token, nil)
	return status, m
}

// callWith is call with extra request headers, returning the response's.
func callWith(t *testing.T, method, url string, body any, token string, header http.Header) (int, map[string]any, http.Header) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for name, values := range header {
		req.Header[name] = values
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.NotEmpty(t, resp.Header.Get("X-Request-Id"))
	var m map[string]any
	if len(raw) > 0 && strings.Contains(resp.Header.Get("Content-Type"), "json") {
		require.NoError(t, json.Unmarshal(raw, &m), "body: %s", raw)
	}
	return resp.StatusCode, m, resp.Header
}

// publishItem has creator create an item priced amount USD, upload an
// 8×8 PNG as its file, wait until the worker processed it and publish it;
// it returns the item's id and the file.
func publishItem(t *testing.T, in *instance, creator string, amount int) (string, []byte) {
	t.Helper()
	status, body := call(t, "POST", in.base+"/v1/items", map[string]any{"title": "Song", "price": map[string]any{"amount": amount, "currency": "USD"}}, creator)
	require.Equal(t, http.StatusCreated, status, "%v", body)
	itemID := body["id"].(string)
	var png bytes.Buffer
	require.NoError(t, pngpkg.Encode(&png, image.NewRGBA(image.Rect(0, 0, 8, 8))))
	req, err := http.NewRequest("PUT", in.base+"/v1/items/"+itemID+"/file?filename=song.png", bytes.NewReader(png.Bytes()))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+creator)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusAccepted, resp.StatusCode)
	require.Eventually(t, func() bool {
		_, body := call(t, "GET", in.base+"/v1/items/"+itemID, nil, creator)
		asset, _ := body["asset"].(map[string]any)
		return asset != nil && asset["status"] == "ready"
	}, 15*time.Second, 20*time.Millisecond)
	status, _ = call(t, "POST", in.base+"/v1/items/"+itemID+"/publish", nil, creator)
	require.Equal(t, http.StatusOK, status)
	return itemID, png.Bytes()
}

// TestREADMEWalkthrough follows the curl walkthrough of README.md against
// the real binary's run(): signup, login, me, refresh, logout.
func TestREADMEWalkthrough(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir())
	require.Contains(t, in.stdout.String(), "data in "+in.dataDir)

	status, body := call(t, "POST", in.base+"/v1/auth/signup", map[string]string{"email": "ada@example.com", "password": "correct horse battery staple", "name": "Ada"}, "")
	require.Equal(t, http.StatusCreated, status, "%v", body)
	require.Equal(t, "Bearer", body["token_type"])

	status, body = call(t, "POST", in.base+"/v1/auth/login", map[string]string{"email": "ada@example.com", "password": "correct horse battery staple"}, "")
	require.Equal(t, http.StatusOK, status, "%v", body)
	access, refresh := body["access_token"].(string), body["refresh_token"].(string)

	status, body = call(t, "GET", in.base+"/v1/auth/me", nil, access)
	require.Equal(t, http.StatusOK, status, "%v", body)
	require.Equal(t, "ada@example.com", body["email"])

	status, body = call(t, "POST", in.base+"/v1/auth/refresh", map[string]string{"refresh_token": refresh}, "")
	require.Equal(t, http.StatusOK, status, "%v", body)
	newRefresh := body["refresh_token"].(string)
	require.NotEqual(t, refresh, newRefresh)

	status, _ = call(t, "POST", in.base+"/v1/auth/logout", map[string]string{"refresh_token": newRefresh}, "")
	require.Equal(t, http.StatusNoContent, status)
	status, body = call(t, "POST", in.base+"/v1/auth/refresh", map[string]string{"refresh_token": newRefresh}, "")
	require.Equal(t, http.StatusUnauthorized, status)
	require.Equal(t, "refresh_token_revoked", body["code"])

	// A creator's draft: visible to its owner, absent from the public listing.
	status, body = call(t, "POST", in.base+"/v1/auth/signup", map[string]string{"email": "cy@example.com", "password": "correct horse battery staple", "name": "Cy", "role": "creator"}, "")
	require.Equal(t, http.StatusCreated, status, "%v", body)
	creator := body["access_token"].(string)
	status, body = call(t, "POST", in.base+"/v1/items", map[string]any{"title": "First photo", "price": map[string]any{"amount": 0, "currency": "USD"}}, creator)
	require.Equal(t, http.StatusCreated, status, "%v", body)
	require.Equal(t, "draft", body["status"])
	itemID := body["id"].(string)
	status, _ = call(t, "GET", in.base+"/v1/items/"+itemID, nil, creator)
	require.Equal(t, http.StatusOK, status)
	status, _ = call(t, "GET", in.base+"/v1/items/"+itemID, nil, access)
	require.Equal(t, http.StatusNotFound, status, "a draft is hidden from others")
	status, body = call(t, "POST", in.base+"/v1/items", map[string]any{"title": "Nope", "price": map[string]any{"amount": 1, "currency": "USD"}}, access)
	require.Equal(t, http.StatusForbidden, status, "a buyer cannot create items: %v", body)
	status, body = call(t, "GET", in.base+"/v1/items", nil, "")
	require.Equal(t, http.StatusOK, status)
	require.Empty(t, body["items"])

	// Upload a picture by tus in two parts; the worker processes it and
	// makes its previews; publish; anyone lists it and downloads it
	// through the signed redirect.
	var png bytes.Buffer
	require.NoError(t, pngpkg.Encode(&png, image.NewRGBA(image.Rect(0, 0, 30, 20))))
	file := png.Bytes()
	tus := func(method, url string, body []byte, hdr ...string) *http.Response {
		t.Helper()
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+creator)
		req.Header.Set("Tus-Resumable", "1.0.0")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		return resp
	}
	resp := tus("POST", in.base+"/v1/uploads/", nil, "Upload-Length", fmt.Sprint(len(file)),
		"Upload-Metadata", "item_id "+base64.StdEncoding.EncodeToString([]byte(itemID))+",filename "+base64.StdEncoding.EncodeToString([]byte("first photo.png")))
	require.Equal(t, http.StatusCreated, resp.StatusCode)
	upload := in.base + resp.Header.Get("Location")
	half := len(file) / 2
	resp = tus("PATCH", upload, file[:half], "Content-Type", "application/offset+octet-stream", "Upload-Offset", "0")
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	resp = tus("HEAD", upload, nil)
	require.Equal(t, fmt.Sprint(half), resp.Header.Get("Upload-Offset"))
	resp = tus("PATCH", upload, file[half:], "Content-Type", "application/offset+octet-stream", "Upload-Offset", fmt.Sprint(half))
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, fmt.Sprint(len(file)), resp.Header.Get("Upload-Offset"))
	var asset map[string]any
	require.Eventually(t, func() bool {
		_, body := call(t, "GET", in.base+"/v1/items/"+itemID, nil, creator)
		asset, _ = body["asset"].(map[string]any)
		return asset != nil && asset["status"] == "ready"
	}, 15*time.Second, 20*time.Millisecond, "the worker marks the asset ready")
	require.Equal(t, "first photo.png", asset["filename"])
	require.Equal(t, float64(30), asset["width"])
	status, body = call(t, "POST", in.base+"/v1/items/"+itemID+"/publish", nil, creator)
	require.Equal(t, http.StatusOK, status, "%v", body)
	status, body = call(t, "GET", in.base+"/v1/items", nil, access)
	require.Equal(t, http.StatusOK, status)
	require.Len(t, body["items"], 1)

	// Another user downloads the free item: 302 to /cdn/, which serves it.
	get := func(url, token string) (*http.Response, []byte) {
		t.Helper()
		req, err := http.NewRequest("GET", url, nil)
		require.NoError(t, err)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req) // follows the redirect
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		return resp, b
	}
	resp, got := get(in.base+"/v1/items/"+itemID+"/download", access)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", got)
	require.Equal(t, file, got)
	require.True(t, strings.HasPrefix(resp.Request.URL.Path, "/cdn/o/"), resp.Request.URL.String())
	require.Equal(t, "image/png", resp.Header.Get("Content-Type"))
	require.Equal(t, `attachment; filename="first photo.png"`, resp.Header.Get("Content-Disposition"))
	// Its public preview (the thumbnail, the item being free).
	previewURL, _ := asset["preview_url"].(string)
	require.True(t, strings.HasPrefix(previewURL, "/cdn/p/"), "preview_url %q", previewURL)
	resp, got = get(in.base+previewURL, "")
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", got)
	require.Equal(t, "image/jpeg", resp.Header.Get("Content-Type"))
	require.Equal(t, "public, max-age=31536000, immutable", resp.Header.Get("Cache-Control"))

	status, _ = call(t, "GET", in.base+"/healthz", nil, "")
	require.Equal(t, http.StatusOK, status)
	status, body = call(t, "GET", in.base+"/readyz", nil, "")
	require.Equal(t, http.StatusOK, status, "%v", body)
	resp, err := http.Get(in.base + "/metrics")
	require.NoError(t, err)
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Contains(t, string(metrics), `strata_http_requests_total{method="POST",route="POST /v1/auth/login",status_class="2xx"} 1`)
	require.Contains(t, string(metrics), "go_goroutines")
	require.Contains(t, string(metrics), `strata_http_requests_in_flight{route="GET /metrics"} 1`, "the scrape itself is in flight")

	// The verification mail went through the outbox, NATS and the mail
	// consumer to the log.
	require.Eventually(t, func() bool {
		return strings.Contains(in.stderr.String(), "Confirm your email address")
	}, 10*time.Second, 20*time.Millisecond)
}

func TestRestartKeepsDataAndKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := start(t, dir)
	status, body := call(t, "POST", in.base+"/v1/auth/signup", map[string]string{"email": "bo@example.com", "password": "correct horse battery staple", "name": "Bo"}, "")
	require.Equal(t, http.StatusCreated, status, "%v", body)
	access := body["access_token"].(string)
	in.stop(t)

	again := start(t, dir)
	status, body = call(t, "GET", again.base+"/v1/auth/me", nil, access)
	require.Equal(t, http.StatusOK, status, "a token signed before the restart still verifies: %v", body)
	key, err := os.Stat(filepath.Join(dir, "master.key"))
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), key.Mode().Perm())
}

func TestShutdownDrainsReadinessFirst(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), "--shutdown-delay", "2s")
	in.cancel()
	require.Eventually(t, func() bool {
		resp, err := http.Get(in.base + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusServiceUnavailable
	}, 5*time.Second, 20*time.Millisecond, "readyz turns 503 while the listener still serves")
}

func TestUsersCreateAdmin(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var out, errOut syncBuffer
	err := run(context.Background(), []string{"users", "create", "--data-dir", dir, "--email", "Root@Example.com", "--role", "admin"},
		noEnv, strings.NewReader("a long admin passphrase\n"), &out, &errOut)
	require.NoError(t, err, "stderr: %s", errOut.String())
	require.Contains(t, out.String(), "root@example.com with role admin")

	in := start(t, dir)
	status, body := call(t, "POST", in.base+"/v1/auth/login", map[string]string{"email": "root@example.com", "password": "a long admin passphrase"}, "")
	require.Equal(t, http.StatusOK, status, "%v", body)
	status, body = call(t, "GET", in.base+"/v1/admin/audit", nil, body["access_token"].(string))
	require.Equal(t, http.StatusOK, status, "%v", body)

	err = run(context.Background(), []string{"users", "create", "--data-dir", t.TempDir(), "--email", "x@example.com"},
		noEnv, strings.NewReader(""), &out, &errOut)
	require.ErrorContains(t, err, "password")
}

func TestSettingsAreValidatedFirst(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{args: []string{"--shards", "0"}, want: "shards:"},
		{args: []string{"--roles", "auth,bogus"}, want: "roles:"},
		{args: []string{"--http-addr", "nonsense"}, want: "http-addr:"},
		{args: []string{"--log-format", "xml"}, want: "log-format:"},
		{args: []string{"--argon2-memory", "1024"}, want: "argon2-memory"},
		{args: []string{"--auth-access-ttl", "-1s"}, want: "auth-access-ttl:"},
		{args: []string{"--master-key", "c2hvcnQ="}, want: "master-key:"},
		{env: map[string]string{"STRATA_SHUTDOWN_GRACE": "0s"}, want: "shutdown-grace:"},
		{args: []string{"--smtp-url", "mail.example.com"}, want: "smtp-url:"},
		{args: []string{"--smtp-url", "smtp://mail.example.com", "--mail-from", "nobody"}, want: "mail-from:"},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		env := func(k string) string { return tc.env[k] }
		err := run(context.Background(), append([]string{"serve", "--data-dir", dir}, tc.args...), env, strings.NewReader(""), io.Discard, io.Discard)
		require.ErrorContains(t, err, tc.want, "args %v", tc.args)
		_, statErr := os.Stat(dir)
		require.True(t, os.IsNotExist(statErr), "nothing is created before validation passes")
	}
}

func TestShardCountIsFixedAtCreation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	in := start(t, dir, "--shards", "16")
	in.stop(t)
	err := run(context.Background(), []string{"serve", "--data-dir", dir, "--shards", "32", "--http-addr", "127.0.0.1:0"}, noEnv, strings.NewReader(""), io.Discard, io.Discard)
	require.ErrorContains(t, err, "created with 16 logical shards")
}

func TestVersionAndHelp(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	require.NoError(t, run(context.Background(), []string{"version"}, noEnv, nil, &out, io.Discard))
	require.Contains(t, out.String(), "strata ")
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"serve", "--help"}, noEnv, nil, &out, io.Discard))
	for _, flag := range []string{"--data-dir", "--http-addr", "--roles", "--auth-access-ttl", "--argon2-memory"} {
		require.Contains(t, out.String(), flag)
	}
	out.Reset()
	require.NoError(t, run(context.Background(), []string{"help"}, noEnv, nil, &out, io.Discard))
	require.Contains(t, out.String(), "serve")
}

// TestSplitRoles runs the worker role (with the embedded NATS server
// listening on loopback) and the auth role as two instances sharing the
// data: a signup on the auth instance is relayed by the worker, whose mail
// consumer sends the verification mail.
func TestSplitRoles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	natsAddr := l.Addr().String()
	l.Close()

	worker := start(t, dir, "--roles", "worker", "--nats-listen", natsAddr)
	api := start(t, dir, "--roles", "auth", "--nats-url", "nats://"+natsAddr)
	require.Contains(t, api.stdout.String(), "roles auth\n")
	require.Contains(t, worker.stdout.String(), "roles worker\n")

	status, body := call(t, "POST", worker.base+"/v1/auth/signup", map[string]string{"email": "w@example.com", "password": "correct horse battery staple", "name": "W"}, "")
	require.Equal(t, http.StatusNotFound, status, "the worker serves no auth routes")
	require.Equal(t, "route_not_found", body["code"])

	status, body = call(t, "POST", api.base+"/v1/auth/signup", map[string]string{"email": "split@example.com", "password": "correct horse battery staple", "name": "Split"}, "")
	require.Equal(t, http.StatusCreated, status, "%v", body)
	require.Eventually(t, func() bool {
		return strings.Contains(worker.stderr.String(), "to=split@example.com")
	}, 15*time.Second, 20*time.Millisecond, "the worker relays the outbox and sends the mail")
	require.NotContains(t, api.stderr.String(), "to=split@example.com", "the auth-only instance sends no mail")
	for _, in := range []*instance{api, worker} {
		status, _ := call(t, "GET", in.base+"/readyz", nil, "")
		require.Equal(t, http.StatusOK, status)
	}
}

// TestBuyAndDownload follows money end to end through run(): a creator
// sells a file, a buyer tops up by card (an idempotent retry credits once,
// an asynchronous card is settled by the worker), buys it and downloads it.
func TestBuyAndDownload(t *testing.T) {
	t.Parallel()
	in := start(t, t.TempDir(), "--payments-test-confirm-after", "300ms", "--fee-basis-points", "1000")
	signup := func(email, role string) (string, string) {
		status, body := call(t, "POST", in.base+"/v1/auth/signup", map[string]string{"email": email, "password": "correct horse battery staple", "name": "X", "role": role}, "")
		require.Equal(t, http.StatusCreated, status, "%v", body)
		return body["access_token"].(string), body["user"].(map[string]any)["id"].(string)
	}
	creator, _ := signup("seller@example.com", "creator")
	buyer, _ := signup("buyer@example.com", "buyer")

	itemID, file := publishItem(t, in, creator, 1500)
	var status int
	var body map[string]any

	// Not bought yet: no download.
	status, body = call(t, "GET", in.base+"/v1/items/"+itemID+"/download", nil, buyer)
	require.Equal(t, http.StatusPaymentRequired, status, "%v", body)

	// Top up 10.00 by card, sending the request twice with one key.
	topUp := func(amount int, number, key string) (int, map[string]any, http.Header) {
		b, _ := json.Marshal(map[string]any{"amount": map[string]any{"amount": amount, "currency": "USD"},
			"card": map[string]any{"number": number, "exp_month": 12, "exp_year": 2099, "cvc": "123"}})
		req, err := http.NewRequest("POST", in.base+"/v1/topups", bytes.NewReader(b))
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+buyer)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", key)
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var m map[string]any
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&m))
		return resp.StatusCode, m, resp.Header
	}
	status, first, _ := topUp(1000, "4242424242424242", "topup-1")
	require.Equal(t, http.StatusCreated, status, "%v", first)
	require.Equal(t, "succeeded", first["status"])
	status, again, hdr := topUp(1000, "4242424242424242", "topup-1")
	require.Equal(t, http.StatusCreated, status)
	require.Equal(t, first["id"], again["id"], "the retry replays the first answer")
	require.Equal(t, "true", hdr.Get("Idempotent-Replayed"))
	status, body, _ = topUp(500, "4242424242424242", "topup-1")
	require.Equal(t, http.StatusUnprocessableEntity, status, "%v", body)
	require.Equal(t, "idempotency_key_reused", body["code"])

	// An asynchronous card: processing, then settled by the worker.
	status, pending, _ := topUp(800, "4000000000000259", "topup-2")
	require.Equal(t, http.StatusCreated, status, "%v", pending)
	require.Equal(t, "processing", pending["status"])
	require.Eventually(t, func() bool {
		_, body := call(t, "GET", in.base+"/v1/topups/"+pending["id"].(string), nil, buyer)
		return body["status"] == "succeeded"
	}, 20*time.Second, 50*time.Millisecond, "the worker confirms the asynchronous charge")
	status, body = call(t, "GET", in.base+"/v1/wallet", nil, buyer)
	require.Equal(t, http.StatusOK, status)
	require.Equal(t, []any{map[string]any{"available": float64(1800), "currency": "USD"}}, body["balances"])

	// Buy, then download at once.
	status, body = call(t, "POST", in.base+"/v1/purchases", map[string]any{"item_id": itemID}, buyer)
	require.Equal(t, http.StatusCreated, status, "%v", body)
	require.Equal(t, map[string]any{"amount": float64(150), "currency": "USD"}, body["fee"])
	status, body = call(t, "POST", in.base+"/v1/purchases", map[string]any{"item_id": itemID}, buyer)
	require.Equal(t, http.StatusConflict, status)
	require.Equal(t, "already_purchased", body["code"])
	req, err := http.NewRequest("GET", in.base+"/v1/items/"+itemID+"/download", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+buyer)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	got, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", got)
	require.Equal(t, file, got)
	status, body = call(t, "GET", in.base+"/v1/wallet", nil, buyer)
	require.Equal(t, []any{map[string]any{"available": float64(300), "currency": "USD"}}, body["balances"])
	status, body = call(t, "GET", in.base+"/v1/wallet", nil, creator)
	require.Equal(t, []any{map[string]any{"available": float64(1350), "currency": "USD"}}, body["earnings"])
}
