package content_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/content"
	"github.com/stratadev/strata/internal/content/contentsql"
	"github.com/stratadev/strata/internal/httpx"
	"github.com/stratadev/strata/internal/httpx/httpxtest"
	"github.com/stratadev/strata/internal/queue"
	"github.com/stratadev/strata/internal/storage/blob"
	"github.com/stratadev/strata/internal/storage/sqldb"
	"github.com/stratadev/strata/internal/storage/sqldbtest"
	"github.com/stratadev/strata/stratatest"
	"github.com/stretchr/testify/require"
)

// Shards of the test users: 16 logical shards on 3 databases put shards
// 0-5, 6-10 and 11-15 in different files.
var testShards = []int{1, 7, 12}

type harness struct {
	t       testing.TB
	handler http.Handler
	store   *contentsql.Store
	router  *sqldb.Router
	clock   *stratatest.Clock
	blobDir string // the folder of the blob store
	proc    content.AssetProcessor
	ents    *memEntitlements
	blobs   *blob.Store
	svc     *content.Service
}

// testSigningKey signs the harness's download URLs.
var testSigningKey = content.SigningKey{ID: "k1", Secret: []byte("0123456789abcdef0123456789abcdef")}

// memEntitlements is an Entitlements whose grants the test sets, standing
// in for the payments module.
type memEntitlements struct {
	mu   sync.Mutex
	held map[[2]strata.ID]bool
	err  error
}

func (m *memEntitlements) Has(_ context.Context, user, item strata.ID) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.held[[2]strata.ID{user, item}], m.err
}

func (m *memEntitlements) grant(user, item strata.ID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.held[[2]strata.ID{user, item}] = true
}

// testUploadMax is the upload limit of the harness.
const testUploadMax = 1 << 20

func newHarness(t testing.TB) *harness {
	t.Helper()
	return newHarnessWith(t, nil)
}

// newHarnessWith is newHarness with the service's Deps changed by edit
// (when not nil) before the service is made.
func newHarnessWith(t testing.TB, edit func(*content.Deps)) *harness {
	t.Helper()
	ctx := context.Background()
	router := sqldbtest.OpenShards(t, 16, 3)
	require.NoError(t, queue.MigrateOutbox(ctx, router))
	require.NoError(t, contentsql.Migrate(ctx, router))
	clock := stratatest.NewClock(time.Now().UTC().Truncate(time.Millisecond))
	store := contentsql.New(router, clock)
	// Like blobtest.Open, but the tests need the folder to damage files.
	blobDir := t.TempDir()
	blobs, err := blob.Open(ctx, blobDir)
	require.NoError(t, err)
	t.Cleanup(func() { blobs.Close() })
	cfg := content.Config{UploadMaxBytes: testUploadMax, UploadTypes: []string{"image/png", "image/jpeg", "image/gif", "application/pdf"},
		UploadExpiry: content.DefaultUploadExpiry, UploadChunkMaxBytes: content.DefaultUploadChunkMaxBytes}
	require.NoError(t, cfg.Validate())
	signer, err := content.NewURLSigner([]content.SigningKey{testSigningKey}, content.DefaultURLLifetime)
	require.NoError(t, err)
	ents := &memEntitlements{held: map[[2]strata.ID]bool{}}
	deps := content.Deps{Store: store, Entitlements: ents, Clock: clock, Config: cfg, Blobs: blobs,
		Previews: blobs.Namespace("previews"), Signer: signer,
		Delivery: content.DeliveryConfig{CacheBytes: 1 << 20, CacheObjectMaxBytes: 64 << 10}}
	if edit != nil {
		edit(&deps)
	}
	svc := content.NewService(deps)
	mux := httpx.NewMux()
	content.Routes(mux, svc, httpxtest.Verifier{}, nil)
	return &harness{t: t, ents: ents, blobs: blobs, svc: svc, handler: httpx.Chain(mux, httpx.RequestID, httpx.Recover), store: store, router: router, clock: clock,
		blobDir: blobDir, proc: content.AssetProcessor{Store: store, Blobs: blobs, Clock: clock, Previews: blobs.Namespace("previews")}}
}

// user is a caller: its id and bearer token.
type user struct {
	id    strata.ID
	token string
}

// newUser makes a user with role on logical shard shard.
func (h *harness) newUser(role strata.Role, shard int) user {
	id := strata.NewID("usr", shard, h.clock.Now())
	return user{id: id, token: httpxtest.Token(id, role)}
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

// problem returns the code of a problem+json answer (the error's reason)
// and the fields it names.
func (r response) problem(t testing.TB) (code string, fields []string) {
	t.Helper()
	require.Equal(t, "application/problem+json", r.header.Get("Content-Type"), "body: %s", r.body)
	var p httpx.Problem
	require.NoError(t, json.Unmarshal(r.body, &p), "body: %s", r.body)
	for _, f := range p.Errors {
		fields = append(fields, f.Field)
	}
	return p.Code, fields
}

// do sends a request through the real router as u (anonymous when u is
// the zero user). body may be a string (sent as is) or a value
// (JSON-encoded).
func (h *harness) do(u user, method, path string, body any) response {
	h.t.Helper()
	req := httpxtest.NewRequest(h.t, method, path, body)
	if u.token != "" {
		req.Header.Set("Authorization", "Bearer "+u.token)
	}
	rec := httptest.NewRecorder()
	h.handler.ServeHTTP(rec, req)
	return response{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// item is an item as the API answers it.
type item struct {
	ID          string       `json:"id"`
	CreatorID   string       `json:"creator_id"`
	Title       string       `json:"title"`
	Description string       `json:"description"`
	Price       strata.Money `json:"price"`
	Tags        []string     `json:"tags"`
	Status      string       `json:"status"`
	Asset       *struct {
		Status string `json:"status"`
	} `json:"asset"`
	Version   int64  `json:"version"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
	DeletedAt string `json:"deleted_at"`
}

func decodeItem(t testing.TB, r response) item {
	t.Helper()
	var it item
	require.NoError(t, json.Unmarshal(r.body, &it), "body: %s", r.body)
	return it
}

func itemBody(title string, amount int64, tags ...string) map[string]any {
	if tags == nil {
		tags = []string{}
	}
	return map[string]any{"title": title, "description": "about " + title, "price": map[string]any{"amount": amount, "currency": "USD"}, "tags": tags}
}

// create makes a draft item of u and returns it.
func (h *harness) create(u user, body any) item {
	h.t.Helper()
	r := h.do(u, "POST", "/v1/items", body)
	require.Equal(h.t, http.StatusCreated, r.status, "body: %s", r.body)
	return decodeItem(h.t, r)
}

// ready marks an item's asset ready, as the processing work will.
func (h *harness) ready(id string) {
	h.t.Helper()
	require.NoError(h.t, h.store.PutAsset(context.Background(), strata.ID(id), content.Asset{
		Status: content.AssetReady, SHA256: strings.Repeat("ab", 32), Size: 1234, MediaType: "image/png", Width: 10, Height: 20,
	}))
}

// published makes a published item of u.
func (h *harness) published(u user, body any) item {
	h.t.Helper()
	it := h.create(u, body)
	h.ready(it.ID)
	r := h.do(u, "POST", "/v1/items/"+it.ID+"/publish", nil)
	require.Equal(h.t, http.StatusOK, r.status, "body: %s", r.body)
	return decodeItem(h.t, r)
}

// outbox counts outbox rows by subject over every database, and returns
// the payloads of rows about item (all rows when item is "").
func (h *harness) outbox(item string) (map[string]int, []content.ItemEvent) {
	h.t.Helper()
	counts := map[string]int{}
	var events []content.ItemEvent
	for _, db := range h.router.DBs() {
		rows, err := db.Reader().Query("SELECT subject, payload FROM outbox_events ORDER BY id")
		require.NoError(h.t, err)
		for rows.Next() {
			var subject, payload string
			require.NoError(h.t, rows.Scan(&subject, &payload))
			var ev content.ItemEvent
			require.NoError(h.t, json.Unmarshal([]byte(payload), &ev))
			if item == "" || string(ev.ItemID) == item {
				counts[subject]++
				events = append(events, ev)
			}
		}
		require.NoError(h.t, rows.Err())
		rows.Close()
	}
	return counts, events
}
