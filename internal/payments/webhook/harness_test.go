package webhook_test

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/httpx"
	"github.com/stratadev/strata/internal/httpx/httpxtest"
	"github.com/stratadev/strata/internal/payments/paymentssql"
	"github.com/stratadev/strata/internal/payments/webhook"
	"github.com/stratadev/strata/internal/queue"
	"github.com/stratadev/strata/internal/storage/sqldb"
	"github.com/stratadev/strata/internal/storage/sqldbtest"
	"github.com/stratadev/strata/stratatest"
	"github.com/stretchr/testify/require"
)

// gcmSealer is AES-256-GCM under a fixed key, standing in for auth's
// token.Sealer, which this module must not import.
type gcmSealer struct{ aead cipher.AEAD }

func newSealer(t testing.TB) *gcmSealer {
	t.Helper()
	block, err := aes.NewCipher([]byte("0123456789abcdef0123456789abcdef"))
	require.NoError(t, err)
	aead, err := cipher.NewGCM(block)
	require.NoError(t, err)
	return &gcmSealer{aead: aead}
}

func (s *gcmSealer) Seal(plain, ad []byte) ([]byte, error) {
	nonce := make([]byte, s.aead.NonceSize())
	if _, err := rand.Read(nonce); err != nil {
		return nil, err
	}
	return s.aead.Seal(nonce, nonce, plain, ad), nil
}

func (s *gcmSealer) Open(sealed, ad []byte) ([]byte, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return nil, errors.New("short")
	}
	return s.aead.Open(nil, sealed[:n], sealed[n:], ad)
}

// fakeResolver maps host names to addresses, standing in for DNS.
type fakeResolver map[string][]netip.Addr

func (r fakeResolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host " + host)
}

type harness struct {
	t        testing.TB
	router   *sqldb.Router
	clock    *stratatest.Clock
	sealer   *gcmSealer
	resolver fakeResolver
	svc      *webhook.Service
	handler  http.Handler
	admin    string // bearer token of an admin
}

// newHarness runs webhooks over 16 logical shards on 2 databases, so that
// rows on shard 0's database are told apart from the other's.
func newHarness(t testing.TB, cfg webhook.Config) *harness {
	t.Helper()
	router := sqldbtest.OpenShards(t, 16, 2)
	require.NoError(t, paymentssql.Migrate(context.Background(), router))
	h := &harness{t: t, router: router, clock: stratatest.NewClock(time.Now().UTC().Truncate(time.Millisecond)),
		sealer: newSealer(t), resolver: fakeResolver{}}
	h.svc = h.newService(cfg)
	mux := httpx.NewMux()
	webhook.Routes(mux, h.svc, httpxtest.Verifier{}, nil)
	h.handler = httpx.Chain(mux, httpx.RequestID, httpx.Recover)
	h.admin = h.token(strata.RoleAdmin)
	return h
}

// newService returns another instance over the same databases: another
// worker.
func (h *harness) newService(cfg webhook.Config) *webhook.Service {
	return webhook.NewService(webhook.Deps{Router: h.router, Sealer: h.sealer, Clock: h.clock, Config: cfg, Resolver: h.resolver})
}

func (h *harness) token(role strata.Role) string {
	return httpxtest.Token(strata.NewID("usr", 5, h.clock.Now()), role)
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body: %s", r.body)
	return m
}

func (r response) code(t testing.TB) string {
	t.Helper()
	var p httpx.Problem
	require.NoError(t, json.Unmarshal(r.body, &p), "body: %s", r.body)
	return p.Code
}

func (r response) fields(t testing.TB) []string {
	t.Helper()
	var p httpx.Problem
	require.NoError(t, json.Unmarshal(r.body, &p), "body: %s", r.body)
	var out []string
	for _, f := range p.Errors {
		out = append(out, f.Field)
	}
	return out
}

func (h *harness) do(token, method, path string, body any) response {
	h.t.Helper()
	req := httpxtest.NewRequest(h.t, method, path, body)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// createEndpoint registers url for events through the API and returns
// its id and secret.
func (h *harness) createEndpoint(url string, events ...string) (strata.ID, string) {
	h.t.Helper()
	r := h.do(h.admin, "POST", "/v1/webhooks/endpoints", map[string]any{"url": url, "events": events})
	require.Equal(h.t, http.StatusCreated, r.status, "body: %s", r.body)
	m := r.json(h.t)
	return strata.ID(m["id"].(string)), m["secret"].(string)
}

// message is a queue delivery of an event written to the outbox now.
func (h *harness) message(subject string, payload any) queue.Message {
	h.t.Helper()
	data, err := json.Marshal(payload)
	require.NoError(h.t, err)
	return queue.Message{Subject: subject, ID: string(strata.NewID("evt", 7, h.clock.Now())), Data: data, NumDelivered: 1}
}

// dispatch hands m to the dispatcher of svc.
func (h *harness) dispatch(m queue.Message) {
	h.t.Helper()
	require.NoError(h.t, webhook.Dispatcher{Service: h.svc}.Handle(context.Background(), m))
}

// deliveries returns the deliveries of endpoint, newest first.
func (h *harness) deliveries(endpoint strata.ID) []webhook.Delivery {
	h.t.Helper()
	ds, err := h.svc.Deliveries(context.Background(), endpoint, webhook.DeliveryFilter{Limit: 100})
	require.NoError(h.t, err)
	return ds
}

// only returns the one delivery of endpoint.
func (h *harness) only(endpoint strata.ID) webhook.Delivery {
	h.t.Helper()
	ds := h.deliveries(endpoint)
	require.Len(h.t, ds, 1)
	return ds[0]
}

// sendDue runs one round of svc's sender and returns how many it sent.
func (h *harness) sendDue(svc *webhook.Service) int {
	h.t.Helper()
	n, err := svc.SendDue(context.Background())
	require.NoError(h.t, err)
	return n
}

// received is one request a receiver got.
type received struct {
	header http.Header
	body   []byte
}

// receiver is an HTTP endpoint on 127.0.0.1 that records requests and
// answers with status(n) for its n-th request (from 1).
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	got    []received
	status func(n int) int
}

func newReceiver(t testing.TB, status func(n int) int) *receiver {
	t.Helper()
	rc := &receiver{status: status}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, received{header: r.Header.Clone(), body: body})
		n := len(rc.got)
		rc.mu.Unlock()
		w.WriteHeader(rc.status(n))
	}))
	t.Cleanup(rc.Close)
	return rc
}

func always(code int) func(int) int { return func(int) int { return code } }

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// stored reads a column of an endpoint's row on the database of shard.
func (h *harness) stored(shard int, column string, id strata.ID) (string, error) {
	var v string
	err := h.router.Shard(shard).Reader().QueryRow("SELECT "+column+" FROM payments_webhook_endpoints WHERE id = $1", id).Scan(&v)
	return v, err
}
