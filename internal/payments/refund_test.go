package payments_test

import (
	"context"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/payments"
	"github.com/stretchr/testify/require"
)

// bought makes buyer buy a new item of creator priced amount and returns
// the purchase id.
func (h *harness) bought(buyer, creator user, amount int64) (purchase string, item strata.ID) {
	h.t.Helper()
	item = h.item(creator, amount, "USD")
	r := h.do(buyer, "POST", "/v1/purchases", map[string]any{"item_id": item})
	require.Equal(h.t, http.StatusCreated, r.status, "body: %s", r.body)
	return r.json(h.t)["id"].(string), item
}

func TestRefundReversesEverythingOnce(t *testing.T) {
	h := newHarness(t, 1)
	ctx := context.Background()
	creator := h.newUser(strata.RoleCreator, 3)
	buyer := h.newUser(strata.RoleBuyer, 9)
	h.topUp(buyer, 1000, "USD")
	pur, item := h.bought(buyer, creator, 800) // fee 100, creator keeps 700
	require.Equal(t, int64(200), h.wallet(buyer, "USD"))

	r := h.do(creator, "POST", "/v1/purchases/"+pur+"/refund", nil)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(t, "refunded", r.json(t)["status"])
	require.NotEmpty(t, r.json(t)["refunded_at"])
	require.Equal(t, int64(1000), h.wallet(buyer, "USD"))
	require.Zero(t, h.balance(payments.KindEarnings, creator.id, "USD", 3))
	require.Zero(t, h.balance(payments.KindRevenue, "", "USD", 9))
	ok, err := h.svc.Has(ctx, buyer.id, item)
	require.NoError(t, err)
	require.False(t, ok, "the entitlement is revoked")

	// Exactly once, even when asked concurrently.
	var wg sync.WaitGroup
	var again atomic.Int32
	for range 5 {
		wg.Go(func() {
			r := h.do(creator, "POST", "/v1/purchases/"+pur+"/refund", nil)
			if r.status == http.StatusConflict && r.code(t) == "already_refunded" {
				again.Add(1)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(5), again.Load())
	require.Equal(t, int64(1000), h.wallet(buyer, "USD"))

	// The buyer may buy it again after a refund.
	require.Equal(t, http.StatusCreated, h.do(buyer, "POST", "/v1/purchases", map[string]any{"item_id": item}).status)
	h.checkInvariants()

	// The ledger shows the reversals.
	r = h.do(buyer, "GET", "/v1/ledger/transfers?limit=100", nil)
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	var types []string
	for _, tr := range r.json(t)["transfers"].([]any) {
		m := tr.(map[string]any)
		types = append(types, m["type"].(string))
		var sum float64
		for _, e := range m["entries"].([]any) {
			sum += e.(map[string]any)["amount"].(float64)
		}
		require.Zero(t, sum, "each transfer balances")
	}
	require.Equal(t, []string{"purchase", "refund", "topup"}, uniq(types))
}

func uniq(xs []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range xs {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	slices.Sort(out)
	return out
}

func TestRefundRules(t *testing.T) {
	h := newHarness(t, 1)
	creator := h.newUser(strata.RoleCreator, 1)
	rival := h.newUser(strata.RoleCreator, 2)
	buyer := h.newUser(strata.RoleBuyer, 5)
	admin := h.newUser(strata.RoleAdmin, 6)
	h.topUp(buyer, 10_000, "USD")
	old, _ := h.bought(buyer, creator, 100)
	h.clock.Advance(payments.DefaultRefundWindow + time.Minute)
	fresh, _ := h.bought(buyer, creator, 100)

	tests := []struct {
		name   string
		caller user
		id     string
		body   any
		status int
		code   string
	}{
		{"the buyer cannot refund", buyer, fresh, nil, http.StatusNotFound, "purchase_not_found"},
		{"another creator cannot", rival, fresh, nil, http.StatusNotFound, "purchase_not_found"},
		{"unknown purchase", creator, "pur_00000000000000000000000000", nil, http.StatusNotFound, "purchase_not_found"},
		{"after the window", creator, old, nil, http.StatusConflict, "refund_window_closed"},
		{"only admins force", creator, fresh, map[string]any{"force": true}, http.StatusForbidden, "admin_required"},
		{"unknown field", creator, fresh, map[string]any{"reason": "x"}, http.StatusBadRequest, "unknown_field"},
		{"an admin after the window", admin, old, nil, http.StatusOK, ""},
		{"anonymous", user{}, fresh, nil, http.StatusUnauthorized, "token_missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(tc.caller, "POST", "/v1/purchases/"+tc.id+"/refund", tc.body)
			require.Equal(t, tc.status, r.status, "body: %s", r.body)
			if tc.code != "" {
				require.Equal(t, tc.code, r.code(t))
			}
		})
	}
	h.checkInvariants()
}

func TestRefundBeyondEarnings(t *testing.T) {
	h := newHarness(t, 1)
	creator := h.newUser(strata.RoleCreator, 1)
	buyer := h.newUser(strata.RoleBuyer, 5)
	admin := h.newUser(strata.RoleAdmin, 6)
	h.topUp(buyer, 1000, "USD")
	pur, _ := h.bought(buyer, creator, 800)
	// The creator's earnings leave the ledger (as a payout would).
	h.drainEarnings(creator, 1, "USD", 500)

	r := h.do(creator, "POST", "/v1/purchases/"+pur+"/refund", nil)
	require.Equal(t, http.StatusConflict, r.status, "body: %s", r.body)
	require.Equal(t, "insufficient_earnings", r.code(t))
	require.Equal(t, int64(200), h.wallet(buyer, "USD"), "nothing changed")

	r = h.do(admin, "POST", "/v1/purchases/"+pur+"/refund", map[string]any{"force": true})
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(t, int64(1000), h.wallet(buyer, "USD"))
	require.Equal(t, int64(-500), h.balance(payments.KindEarnings, creator.id, "USD", 1), "the deficit is recorded, not hidden")
	var deficit int64
	require.NoError(t, h.router.Shard(5).Reader().QueryRow("SELECT refund_deficit FROM payments_purchases WHERE id = $1", pur).Scan(&deficit))
	require.Equal(t, int64(500), deficit)
}

// drainEarnings moves amount out of creator's earnings to the external
// account, as a payout would.
func (h *harness) drainEarnings(creator user, shard int, currency string, amount int64) {
	h.t.Helper()
	db := h.router.Shard(shard).Writer()
	var earnings, external string
	require.NoError(h.t, db.QueryRow("SELECT id FROM payments_accounts WHERE kind = 'earnings' AND owner_id = $1", creator.id).Scan(&earnings))
	require.NoError(h.t, h.svc.TopUpForTest(context.Background(), h.newUser(strata.RoleBuyer, shard).id,
		strata.NewID("pi", shard, h.clock.Now()), strata.Money{Amount: 1, Currency: currency})) // makes the external account exist
	require.NoError(h.t, db.QueryRow("SELECT id FROM payments_accounts WHERE kind = 'external' AND shard = $1 AND currency = $2", shard, currency).Scan(&external))
	id := strata.NewID("trf", shard, h.clock.Now())
	for _, q := range []struct {
		sql  string
		args []any
	}{
		{"INSERT INTO payments_transfers (id, shard, type, currency, amount, created_at) VALUES ($1, $2, 'payout', $3, $4, 0)", []any{id, shard, currency, amount}},
		{"INSERT INTO payments_entries (transfer_id, account_id, amount) VALUES ($1, $2, $3)", []any{id, earnings, -amount}},
		{"INSERT INTO payments_entries (transfer_id, account_id, amount) VALUES ($1, $2, $3)", []any{id, external, amount}},
		{"UPDATE payments_accounts SET balance = balance - $1 WHERE id = $2", []any{amount, earnings}},
		{"UPDATE payments_accounts SET balance = balance + $1 WHERE id = $2", []any{amount, external}},
	} {
		_, err := db.Exec(q.sql, q.args...)
		require.NoError(h.t, err)
	}
}

func TestTransfersListing(t *testing.T) {
	h := newHarness(t, 1)
	u := h.newUser(strata.RoleBuyer, 2)
	other := h.newUser(strata.RoleBuyer, 3)
	admin := h.newUser(strata.RoleAdmin, 4)
	for range 5 {
		h.topUp(u, 10, "USD")
	}
	var seen int
	cursor := ""
	for range 5 {
		r := h.do(u, "GET", "/v1/ledger/transfers?limit=2&cursor="+cursor, nil)
		require.Equal(t, http.StatusOK, r.status)
		page := r.json(t)
		seen += len(page["transfers"].([]any))
		next, _ := page["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	require.Equal(t, 5, seen)
	require.Equal(t, http.StatusForbidden, h.do(other, "GET", "/v1/ledger/transfers?user="+string(u.id), nil).status)
	r := h.do(admin, "GET", "/v1/ledger/transfers?user="+string(u.id), nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Len(t, r.json(t)["transfers"], 5)
	first := r.json(t)["transfers"].([]any)[0].(map[string]any)
	acct := first["entries"].([]any)[0].(map[string]any)["account_id"].(string)
	r = h.do(admin, "GET", "/v1/ledger/transfers?account="+acct, nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Len(t, r.json(t)["transfers"], 5)
	require.Equal(t, http.StatusForbidden, h.do(u, "GET", "/v1/ledger/transfers?account="+acct, nil).status, "accounts by id are for admins")
}

func TestCreatorInDeficitStillSells(t *testing.T) {
	h := newHarness(t, 1)
	creator := h.newUser(strata.RoleCreator, 1)
	buyer := h.newUser(strata.RoleBuyer, 5)
	admin := h.newUser(strata.RoleAdmin, 6)
	h.topUp(buyer, 10_000, "USD")
	pur, _ := h.bought(buyer, creator, 800)
	h.drainEarnings(creator, 1, "USD", 700)
	r := h.do(admin, "POST", "/v1/purchases/"+pur+"/refund", map[string]any{"force": true})
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(t, int64(-700), h.balance(payments.KindEarnings, creator.id, "USD", 1))
	// A sale of 100 (fee 12) leaves the creator at -612: the fee is taken
	// even though the earnings stay negative, and the buyer is not blamed.
	h.bought(buyer, creator, 100)
	require.Equal(t, int64(-612), h.balance(payments.KindEarnings, creator.id, "USD", 1))
}
