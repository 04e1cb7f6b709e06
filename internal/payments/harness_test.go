package payments_test

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/httpx"
	"github.com/stratadev/strata/internal/httpx/httpxtest"
	"github.com/stratadev/strata/internal/payments"
	"github.com/stratadev/strata/internal/payments/paymentssql"
	"github.com/stratadev/strata/internal/payments/provider"
	"github.com/stratadev/strata/internal/queue"
	"github.com/stratadev/strata/internal/storage/sqldb"
	"github.com/stratadev/strata/internal/storage/sqldbtest"
	"github.com/stratadev/strata/stratatest"
	"github.com/stretchr/testify/require"
)

// catalog is the Catalog the tests control, standing in for the content
// module's (cmd/strata wires the real one; its end-to-end test covers it).
type catalog struct {
	mu    sync.Mutex
	items map[strata.ID]payments.CatalogItem
}

func (c *catalog) Item(_ context.Context, id strata.ID) (payments.CatalogItem, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	it, ok := c.items[id]
	if !ok {
		return payments.CatalogItem{}, &strata.Error{Code: strata.CodeNotFound, Reason: "item_not_found", Message: "no such item"}
	}
	return it, nil
}

type harness struct {
	t       testing.TB
	svc     *payments.Service
	handler http.Handler
	router  *sqldb.Router
	clock   *stratatest.Clock
	catalog *catalog
	settler payments.IntentSettler
	faults  *faultStore
	// fail, when set, makes the card network fail the operations it
	// returns an error for (provider.TestConfig.FailFunc).
	fail atomic.Pointer[func(op string) error]
}

// testFee is the harness's platform fee: 12.5 %.
const testFee = 1250

// newHarness runs payments over 16 logical shards on files databases.
func newHarness(t testing.TB, files int) *harness {
	t.Helper()
	ctx := context.Background()
	router := sqldbtest.OpenShards(t, 16, files)
	require.NoError(t, queue.MigrateOutbox(ctx, router))
	require.NoError(t, paymentssql.Migrate(ctx, router))
	clock := stratatest.NewClock(time.Now().UTC().Truncate(time.Millisecond))
	cat := &catalog{items: map[strata.ID]payments.CatalogItem{}}
	h := &harness{t: t}
	prov, err := provider.NewTestProvider(provider.TestConfig{FailFunc: func(op string) error {
		if f := h.fail.Load(); f != nil {
			return (*f)(op)
		}
		return nil
	}}, clock)
	require.NoError(t, err)
	h.faults = &faultStore{Store: paymentssql.New(router, clock)}
	svc := payments.NewService(payments.Deps{Store: h.faults, Catalog: cat, Clock: clock, Provider: prov,
		Config: payments.Config{FeeBasisPoints: testFee, TopUpMax: 1_000_000}})
	mux := httpx.NewMux()
	payments.Routes(mux, svc, httpxtest.Verifier{}, nil)
	h.svc, h.handler, h.router, h.clock, h.catalog = svc, httpx.Chain(mux, httpx.RequestID, httpx.Recover), router, clock, cat
	h.settler = payments.IntentSettler{Service: svc}
	return h
}

// faultStore fails transactions after their work ran and before they
// commit, as a database failing mid-transaction would: the transaction
// rolls back and the caller sees errInjected (unavailable). It fails a
// fraction rate of them at random (with rnd), and those of a shard that is
// down or set to fail once.
type faultStore struct {
	payments.Store
	rate   float64
	rnd    *rand.Rand
	failed atomic.Int64 // transactions failed at random
	mu     sync.Mutex
	once   map[int]*atomic.Bool // shard -> fail its next transaction, then set
	down   map[int]bool         // shard -> fail every transaction
}

var errInjected = &strata.Error{Code: strata.CodeUnavailable, Reason: "database_unavailable", Message: "injected failure"}

func (f *faultStore) Tx(ctx context.Context, shard int, fn func(payments.Tx) error) error {
	return f.Store.Tx(ctx, shard, func(tx payments.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		f.mu.Lock()
		fired := f.once[shard]
		delete(f.once, shard)
		down := f.down[shard]
		random := f.rate > 0 && f.rnd.Float64() < f.rate
		f.mu.Unlock()
		switch {
		case down:
			return errInjected
		case fired != nil:
			fired.Store(true)
			return errInjected
		case random:
			f.failed.Add(1)
			return errInjected
		}
		return nil
	})
}

// Audit lets the service's reconciler read through the wrapper.
func (f *faultStore) Audit(ctx context.Context, limit int) ([]payments.DatabaseReport, []payments.Violation, error) {
	return f.Store.(payments.Auditor).Audit(ctx, limit)
}

// setShardDown makes every transaction on shard fail (down) or not.
func (h *harness) setShardDown(shard int, down bool) {
	f := h.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down == nil {
		f.down = map[int]bool{}
	}
	f.down[shard] = down
}

// failShardOnce makes the next transaction on shard fail before it
// commits; the flag it returns is set once one did.
func (h *harness) failShardOnce(shard int) *atomic.Bool {
	f := h.faults
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.once == nil {
		f.once = map[int]*atomic.Bool{}
	}
	b := &atomic.Bool{}
	f.once[shard] = b
	return b
}

type user struct {
	id    strata.ID
	token string
}

func (h *harness) newUser(role strata.Role, shard int) user {
	id := strata.NewID("usr", shard, h.clock.Now())
	return user{id: id, token: httpxtest.Token(id, role)}
}

// ctx is a context carrying u as the caller.
func (u user) ctx() context.Context {
	parts := strings.Split(u.token, ":")
	return strata.NewContext(context.Background(), &strata.Principal{UserID: u.id, Roles: []strata.Role{strata.Role(parts[2])}})
}

// item puts a buyable item of creator priced amount in the catalog.
func (h *harness) item(creator user, amount int64, currency string) strata.ID {
	shard, _ := creator.id.Shard()
	id := strata.NewID("itm", shard, h.clock.Now())
	h.catalog.mu.Lock()
	defer h.catalog.mu.Unlock()
	h.catalog.items[id] = payments.CatalogItem{ID: id, CreatorID: creator.id, Price: strata.Money{Amount: amount, Currency: currency}, Buyable: true}
	return id
}

// topUp credits u's wallet.
func (h *harness) topUp(u user, amount int64, currency string) {
	h.t.Helper()
	shard, _ := u.id.Shard()
	intent := strata.NewID("pi", shard, h.clock.Now())
	require.NoError(h.t, h.svc.TopUpForTest(context.Background(), u.id, intent, strata.Money{Amount: amount, Currency: currency}))
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

// balance returns the balance of the account of key (0 when absent).
func (h *harness) balance(kind payments.AccountKind, owner strata.ID, currency string, shard int) int64 {
	h.t.Helper()
	var b int64
	err := h.router.Shard(shard).Reader().QueryRow(
		"SELECT balance FROM payments_accounts WHERE kind = $1 AND owner_id = $2 AND currency = $3 AND shard = $4",
		string(kind), owner, currency, shard).Scan(&b)
	if err != nil {
		return 0
	}
	return b
}

// wallet is u's wallet balance in currency.
func (h *harness) wallet(u user, currency string) int64 {
	shard, _ := u.id.Shard()
	return h.balance(payments.KindWallet, u.id, currency, shard)
}

// checkInvariants asserts the ledger's invariants over every database:
// each transfer balances, each balance equals the sum of its entries, no
// guarded account is negative, and all balances of a currency sum to zero.
func (h *harness) checkInvariants() {
	h.t.Helper()
	totals := map[string]int64{}
	for _, db := range h.router.DBs() {
		r := db.Reader()
		var n int
		require.NoError(h.t, r.QueryRow(`SELECT COUNT(*) FROM (SELECT transfer_id FROM payments_entries
			GROUP BY transfer_id HAVING SUM(amount) <> 0) x`).Scan(&n))
		require.Zero(h.t, n, "unbalanced transfers")
		require.NoError(h.t, r.QueryRow(`SELECT COUNT(*) FROM payments_accounts a WHERE a.balance <>
			(SELECT COALESCE(SUM(e.amount), 0) FROM payments_entries e WHERE e.account_id = a.id)`).Scan(&n))
		require.Zero(h.t, n, "balances out of step with entries")
		require.NoError(h.t, r.QueryRow(`SELECT COUNT(*) FROM payments_accounts WHERE kind NOT IN ('external', 'transit') AND balance < 0`).Scan(&n))
		require.Zero(h.t, n, "negative guarded balances")
		rows, err := r.Query("SELECT currency, SUM(balance) FROM payments_accounts GROUP BY currency")
		require.NoError(h.t, err)
		for rows.Next() {
			var c string
			var sum int64
			require.NoError(h.t, rows.Scan(&c, &sum))
			totals[c] += sum
		}
		require.NoError(h.t, rows.Err())
		rows.Close()
	}
	for c, sum := range totals {
		require.Zero(h.t, sum, "balances of %s sum to %d", c, sum)
	}
}
