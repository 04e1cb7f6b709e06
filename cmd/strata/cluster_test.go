package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratadev/strata/internal/gateway"
	"github.com/stretchr/testify/require"
)

// buildStrata builds the strata binary once per test binary run.
var buildStrata = sync.OnceValues(func() (string, error) {
	dir, err := os.MkdirTemp("", "strata-bin-")
	if err != nil {
		return "", err
	}
	bin := filepath.Join(dir, "strata")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
})

// clusterCtl runs the strata binary's cluster commands on dir.
type clusterCtl struct {
	t   *testing.T
	bin string
	dir string
}

func (c clusterCtl) run(args ...string) string {
	c.t.Helper()
	cmd := exec.Command(c.bin, append([]string{"cluster", "--dir", c.dir}, args...)...)
	out, err := cmd.CombinedOutput()
	require.NoError(c.t, err, "strata cluster %s:\n%s", strings.Join(args, " "), out)
	return string(out)
}

// instanceState reads what the gateway thinks of the instance at url in
// the auth pool.
func instanceState(t *testing.T, gw, url string) (gateway.InstanceStatus, bool) {
	resp, err := http.Get(gw + "/gateway/status")
	if err != nil {
		return gateway.InstanceStatus{}, false
	}
	defer resp.Body.Close()
	var st map[string][]gateway.InstanceStatus
	if json.NewDecoder(resp.Body).Decode(&st) != nil {
		return gateway.InstanceStatus{}, false
	}
	for _, in := range st["auth"] {
		if in.URL == url {
			return in, true
		}
	}
	return gateway.InstanceStatus{}, false
}

// TestClusterSurvivesKilledInstances runs a split deployment (a gateway,
// three API instances, two workers, NATS in its own process) under a mixed
// workload while one API instance and one worker are killed with SIGKILL
// and later restarted. Requests that are safe to retry must all succeed
// (clients retry only what the API tells them to: 409 for a key still in
// flight), no money effect may be lost or doubled, and the gateway must
// eject the dead instance within 2 seconds and readmit it after restart.
func TestClusterSurvivesKilledInstances(t *testing.T) {
	if testing.Short() {
		t.Skip("starts eight processes; not in -short")
	}
	bin, err := buildStrata()
	require.NoError(t, err)
	c := clusterCtl{t: t, bin: bin, dir: t.TempDir()}
	out := c.run("up", "--api", "3", "--workers", "2", "--port", "0", "--",
		"--idempotency-lock-timeout", "2s", "--argon2-memory", "19456", "--argon2-time", "2", "--fee-basis-points", "1000")
	t.Cleanup(func() {
		if _, err := readClusterState(c.dir); err == nil {
			c.run("down")
		}
		if t.Failed() {
			for _, name := range []string{"gateway", "api-2", "worker-1"} {
				t.Logf("%s log (tail):\n%s", name, tail(filepath.Join(c.dir, "logs", name+".log"), 30))
			}
		}
	})
	st, err := readClusterState(c.dir)
	require.NoError(t, err, out)
	gw := &instance{base: st.Gateway}
	api2, err := st.find("api-2")
	require.NoError(t, err)

	signup := func(email, role string) (string, string, error) {
		status, body, _ := tryCall("POST", gw.base+"/v1/auth/signup", map[string]string{"email": email, "password": "correct horse battery staple", "name": "X", "role": role}, "", nil)
		if status != http.StatusCreated {
			return "", "", fmt.Errorf("signup %s: %d %v", email, status, body)
		}
		return body["access_token"].(string), body["user"].(map[string]any)["id"].(string), nil
	}
	creator, _, err := signup("seller@example.com", "creator")
	require.NoError(t, err)
	const price = 100
	var items []string
	for range 4 {
		id, _ := publishItem(t, gw, creator, price)
		items = append(items, id)
	}

	var (
		stop                          atomic.Bool
		idempotentOK, idempotentFail  atomic.Int64
		otherOK, otherFail, conflicts atomic.Int64
		failures                      sync.Map // description -> struct{}
		wg                            sync.WaitGroup
	)
	fail := func(counter *atomic.Int64, what string) {
		counter.Add(1)
		failures.Store(what, struct{}{})
	}
	// idempotent sends a request that is safe to repeat: a GET, or a POST
	// with an Idempotency-Key, retried with the same key while the API
	// says the key is in flight. Any other failure counts.
	idempotent := func(method, url string, body any, token, key string) (int, map[string]any) {
		h := http.Header{}
		if key != "" {
			h.Set("Idempotency-Key", key)
		}
		deadline := time.Now().Add(20 * time.Second)
		for {
			status, resp, err := tryCall(method, url, body, token, h)
			if err == nil && status == http.StatusConflict && resp["code"] == "idempotency_key_in_use" && time.Now().Before(deadline) {
				conflicts.Add(1)
				time.Sleep(200 * time.Millisecond)
				continue
			}
			if err != nil || status >= 500 {
				fail(&idempotentFail, fmt.Sprintf("%s %s: %d %v %v", method, url, status, err, resp))
				return status, resp
			}
			idempotentOK.Add(1)
			return status, resp
		}
	}
	type buyer struct {
		token     string
		toppedUp  int
		purchased int
	}
	var buyersMu sync.Mutex
	var buyers []*buyer
	for w := range 6 {
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				email := fmt.Sprintf("buyer-%d-%d@example.com", w, i)
				token, _, err := signup(email, "buyer")
				if err != nil {
					fail(&otherFail, err.Error())
					continue
				}
				otherOK.Add(1)
				status, _, err := tryCall("POST", gw.base+"/v1/auth/login", map[string]string{"email": email, "password": "correct horse battery staple"}, "", nil)
				if err != nil || status != http.StatusOK {
					fail(&otherFail, fmt.Sprintf("login: %d %v", status, err))
				} else {
					otherOK.Add(1)
				}
				b := &buyer{token: token}
				buyersMu.Lock()
				buyers = append(buyers, b)
				buyersMu.Unlock()
				idempotent("GET", gw.base+"/v1/items", nil, token, "")
				status, resp := idempotent("POST", gw.base+"/v1/topups", map[string]any{"amount": map[string]any{"amount": 1000, "currency": "USD"},
					"card": map[string]any{"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"}}, token, "topup-"+email)
				if status == http.StatusCreated && resp["status"] == "succeeded" {
					b.toppedUp = 1000
				} else if status < 500 {
					fail(&idempotentFail, fmt.Sprintf("topup: %d %v", status, resp))
				}
				for _, item := range items[:2] {
					status, resp := idempotent("POST", gw.base+"/v1/purchases", map[string]any{"item_id": item}, token, "buy-"+email+item)
					switch {
					case status == http.StatusCreated:
						b.purchased += price
					case status == http.StatusConflict && resp["code"] == "already_purchased":
						// A retry whose first try bought the item on an instance
						// that died before recording the answer: bought once.
						b.purchased += price
					case status < 500:
						fail(&idempotentFail, fmt.Sprintf("purchase: %d %v", status, resp))
					}
					if status, _ := idempotent("GET", gw.base+"/v1/items/"+item+"/download", nil, token, ""); status != http.StatusOK && status < 500 {
						fail(&idempotentFail, fmt.Sprintf("download: %d", status))
					}
				}
			}
		})
	}

	time.Sleep(3 * time.Second)
	killed := time.Now()
	c.run("kill", "api-2")
	c.run("kill", "worker-1")
	require.Eventually(t, func() bool {
		in, ok := instanceState(t, gw.base, api2.URL)
		return ok && (!in.Healthy || in.Ejected)
	}, 5*time.Second, 20*time.Millisecond)
	ejectedAfter := time.Since(killed)
	require.LessOrEqual(t, ejectedAfter, 2*time.Second, "the dead instance is taken out within 2 s")

	time.Sleep(4 * time.Second) // the workload goes on without them
	c.run("start", "api-2")
	c.run("start", "worker-1")
	require.Eventually(t, func() bool {
		in, ok := instanceState(t, gw.base, api2.URL)
		return ok && in.Healthy && !in.Ejected
	}, 10*time.Second, 20*time.Millisecond, "the restarted instance is readmitted")
	time.Sleep(3 * time.Second) // and takes traffic again
	stop.Store(true)
	wg.Wait()

	failures.Range(func(k, _ any) bool { t.Logf("failure: %s", k); return true })
	t.Logf("ejected after %s; idempotent requests ok %d, failed %d (409 in-flight answers retried: %d); other requests ok %d, failed %d",
		ejectedAfter, idempotentOK.Load(), idempotentFail.Load(), conflicts.Load(), otherOK.Load(), otherFail.Load())
	require.Zero(t, idempotentFail.Load(), "no request that is safe to retry fails")
	require.Greater(t, idempotentOK.Load(), int64(100), "the workload ran")
	in, _ := instanceState(t, gw.base, api2.URL)
	require.True(t, in.Healthy)

	// No money effect lost or doubled: every wallet holds what its owner
	// topped up less what they bought.
	for _, b := range buyers {
		if b.toppedUp == 0 && b.purchased == 0 {
			continue
		}
		status, body, err := tryCall("GET", gw.base+"/v1/wallet", nil, b.token, nil)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, status)
		want := []any{map[string]any{"available": float64(b.toppedUp - b.purchased), "currency": "USD"}}
		require.Equal(t, want, body["balances"], "wallet of a buyer who topped up %d and bought %d", b.toppedUp, b.purchased)
	}

	c.run("down")
	var verify bytes.Buffer
	require.NoError(t, run(t.Context(), []string{"ledger", "verify", "--data-dir", filepath.Join(c.dir, "data")}, noEnv, nil, &verify, io.Discard),
		"strata ledger verify:\n%s", verify.String())
}

// tryCall is callWith without failing the test on a transport error.
func tryCall(method, url string, body any, token string, header http.Header) (int, map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return resp.StatusCode, nil, err
	}
	var m map[string]any
	if strings.Contains(resp.Header.Get("Content-Type"), "json") {
		_ = json.Unmarshal(raw, &m)
	}
	return resp.StatusCode, m, nil
}
