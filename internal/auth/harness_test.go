package auth_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/auth"
	"github.com/stratadev/strata/internal/auth/authsql"
	"github.com/stratadev/strata/internal/auth/password"
	"github.com/stratadev/strata/internal/auth/token"
	"github.com/stratadev/strata/internal/httpx"
	"github.com/stratadev/strata/internal/httpx/httpxtest"
	"github.com/stratadev/strata/internal/mail"
	"github.com/stratadev/strata/internal/queue"
	"github.com/stratadev/strata/internal/queue/queuetest"
	"github.com/stratadev/strata/internal/storage/sqldb"
	"github.com/stratadev/strata/internal/storage/sqldbtest"
	"github.com/stratadev/strata/stratatest"
	"github.com/stretchr/testify/require"
)

// mailbox captures mail the consumer sends.
type mailbox struct {
	mu   sync.Mutex
	msgs []mail.Message
}

func (m *mailbox) Send(_ context.Context, msg mail.Message) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.msgs = append(m.msgs, msg)
	return nil
}

// waitFor returns the first message to addr whose subject contains subj.
func (m *mailbox) waitFor(t *testing.T, addr, subj string) mail.Message {
	t.Helper()
	var found mail.Message
	require.Eventually(t, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, msg := range m.msgs {
			if msg.To == addr && strings.Contains(msg.Subject, subj) {
				found = msg
				return true
			}
		}
		return false
	}, 10*time.Second, 5*time.Millisecond, "no %q mail to %s", subj, addr)
	return found
}

func (m *mailbox) count(addr string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for _, msg := range m.msgs {
		if msg.To == addr {
			n++
		}
	}
	return n
}

type harness struct {
	t       testing.TB
	svc     *auth.Service
	handler http.Handler
	clock   *stratatest.Clock
	mail    *mailbox
	router  *sqldb.Router
	cfg     auth.Config
}

// testConfig returns the default auth settings, as the flags define them.
func testConfig(t testing.TB) auth.Config {
	t.Helper()
	var cfg auth.Config
	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	cfg.RegisterFlags(fs)
	require.NoError(t, fs.Parse(nil))
	require.NoError(t, cfg.Validate())
	return cfg
}

// cheapParams keeps tests fast; production parameters are tested in
// package password.
var cheapParams = password.Params{Memory: 1024, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func newHarness(t testing.TB, tweak ...func(*auth.Config)) *harness {
	t.Helper()
	cfg := testConfig(t)
	for _, f := range tweak {
		f(&cfg)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	logger := discard()
	clock := stratatest.NewClock(time.Now().UTC().Truncate(time.Millisecond))

	// Three databases: a user, their email index and the signing keys
	// usually live in different ones, as they will on PostgreSQL shards.
	router := sqldbtest.OpenShards(t, 16, 3)
	sqldbtest.Migrate(t, router, "outbox", queue.Migrations())
	require.NoError(t, authsql.Migrate(ctx, router))

	qc := queuetest.Connect(t)
	require.NoError(t, qc.EnsureStream(ctx, auth.StreamConfig()))
	relay := queue.NewRelay(router, qc, queue.RelayConfig{PollInterval: 20 * time.Millisecond}, logger, strata.SystemClock{})
	go relay.Run(ctx)
	box := &mailbox{}
	mc := auth.MailConsumer{Mailer: box, Sealer: mustSealer(t)}
	consumer, err := qc.Consume(ctx, mc.ConsumerConfig(), mc.Handle, logger)
	require.NoError(t, err)
	t.Cleanup(func() { consumer.Stop(context.Background()) })

	svc := auth.NewService(cfg, auth.Deps{
		Store: authsql.New(router, clock), Shards: router.NumShards(), Hasher: password.NewHasher(cheapParams, 4),
		Sealer: mustSealer(t), Clock: clock, Logger: logger, NotifyOutbox: relay.Notify,
	})
	require.NoError(t, svc.Start(ctx))
	mux := httpx.NewMux()
	auth.Routes(mux, svc, true)
	return &harness{
		t: t, svc: svc, clock: clock, mail: box, router: router, cfg: cfg,
		handler: httpx.Chain(mux, httpx.RequestID, httpx.Recover),
	}
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) json(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(r.body, &m), "body: %s", r.body)
	return m
}

// problemCode returns the code of a problem+json answer.
func (r response) problemCode(t *testing.T) string {
	t.Helper()
	require.Equal(t, "application/problem+json", r.header.Get("Content-Type"), "body: %s", r.body)
	code, _ := r.json(t)["code"].(string)
	return code
}

// do sends a request through the real router. body may be a string (sent
// as is) or a value (JSON-encoded).
func (h *harness) do(method, path string, body any, headers ...string) response {
	h.t.Helper()
	req := httpxtest.NewRequest(h.t, method, path, body)
	req.Header.Set("X-Forwarded-For", "203.0.113.9")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

type tokens struct {
	Access  string `json:"access_token"`
	Refresh string `json:"refresh_token"`
	Type    string `json:"token_type"`
	Expires int64  `json:"expires_in"`
	User    struct {
		ID            string   `json:"id"`
		Email         string   `json:"email"`
		Name          string   `json:"name"`
		Roles         []string `json:"roles"`
		EmailVerified bool     `json:"email_verified"`
	} `json:"user"`
}

func (h *harness) decodeTokens(r response) tokens {
	h.t.Helper()
	var tk tokens
	require.NoError(h.t, json.Unmarshal(r.body, &tk), "body: %s", r.body)
	return tk
}

const goodPassword = "correct horse battery staple"

func (h *harness) signup(email string) tokens {
	h.t.Helper()
	r := h.do("POST", "/v1/auth/signup", map[string]string{"email": email, "password": goodPassword, "name": "Test User"})
	require.Equal(h.t, http.StatusCreated, r.status, "body: %s", r.body)
	return h.decodeTokens(r)
}

func bearer(tok string) []string { return []string{"Authorization", "Bearer " + tok} }

func mustSealer(t testing.TB) *token.Sealer {
	t.Helper()
	s, err := token.NewSealer(bytes.Repeat([]byte{7}, 32))
	require.NoError(t, err)
	return s
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
