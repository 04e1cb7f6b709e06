package payments_test

import (
	"context"
	"math"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/payments"
	"github.com/stretchr/testify/require"
)

func TestBuyMovesMoneyAndGrantsTheItem(t *testing.T) {
	h := newHarness(t, 1)
	ctx := context.Background()
	creator := h.newUser(strata.RoleCreator, 3)
	buyer := h.newUser(strata.RoleBuyer, 9)
	item := h.item(creator, 1000, "USD")
	h.topUp(buyer, 2500, "USD")

	ok, err := h.svc.Has(ctx, buyer.id, item)
	require.NoError(t, err)
	require.False(t, ok)

	r := h.do(buyer, "POST", "/v1/purchases", map[string]any{"item_id": item})
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	p := r.json(t)
	require.Equal(t, string(item), p["item_id"])
	require.Equal(t, "completed", p["status"])
	require.Equal(t, map[string]any{"amount": float64(1000), "currency": "USD"}, p["price"])
	require.Equal(t, map[string]any{"amount": float64(125), "currency": "USD"}, p["fee"])

	require.Equal(t, int64(1500), h.wallet(buyer, "USD"))
	require.Equal(t, int64(875), h.balance(payments.KindEarnings, creator.id, "USD", 3))
	require.Equal(t, int64(125), h.balance(payments.KindRevenue, "", "USD", 9), "revenue on the buyer's shard")
	ok, err = h.svc.Has(ctx, buyer.id, item)
	require.NoError(t, err)
	require.True(t, ok, "read-your-writes: the entitlement is there at once")

	// The wallet, as the buyer and as the creator see it.
	r = h.do(buyer, "GET", "/v1/wallet", nil)
	require.Equal(t, http.StatusOK, r.status)
	require.Equal(t, []any{map[string]any{"available": float64(1500), "currency": "USD"}}, r.json(t)["balances"])
	r = h.do(creator, "GET", "/v1/wallet", nil)
	require.Equal(t, []any{map[string]any{"available": float64(875), "currency": "USD"}}, r.json(t)["earnings"])

	// The event, in the same transaction.
	var subject, payload string
	require.NoError(t, h.router.Shard(9).Reader().QueryRow(
		"SELECT subject, payload FROM outbox_events WHERE subject = $1", payments.SubjectPurchaseCompleted).Scan(&subject, &payload))
	require.Contains(t, payload, string(item))
	h.checkInvariants()
}

func TestBuyRefusals(t *testing.T) {
	h := newHarness(t, 1)
	creator := h.newUser(strata.RoleCreator, 1)
	buyer := h.newUser(strata.RoleBuyer, 2)
	poor := h.newUser(strata.RoleBuyer, 5)
	item := h.item(creator, 700, "EUR")
	free := h.item(creator, 0, "EUR")
	hidden := h.item(creator, 100, "EUR")
	h.catalog.items[hidden] = payments.CatalogItem{ID: hidden, CreatorID: creator.id, Price: strata.Money{Amount: 100, Currency: "EUR"}}
	h.topUp(buyer, 5000, "EUR")
	h.topUp(poor, 699, "EUR")
	h.topUp(poor, 10_000, "USD") // money in another currency does not count
	require.Equal(t, http.StatusCreated, h.do(buyer, "POST", "/v1/purchases", map[string]any{"item_id": item}).status)

	tests := []struct {
		name   string
		caller user
		body   any
		status int
		code   string
	}{
		{"twice", buyer, map[string]any{"item_id": item}, http.StatusConflict, "already_purchased"},
		{"own item", creator, map[string]any{"item_id": item}, http.StatusConflict, "own_item"},
		{"free item", buyer, map[string]any{"item_id": free}, http.StatusConflict, "item_free"},
		{"unpublished item", buyer, map[string]any{"item_id": hidden}, http.StatusNotFound, "item_not_found"},
		{"unknown item", buyer, map[string]any{"item_id": strata.NewID("itm", 1, h.clock.Now())}, http.StatusNotFound, "item_not_found"},
		{"malformed item id", buyer, map[string]any{"item_id": "../x"}, http.StatusNotFound, "item_not_found"},
		{"not enough money", poor, map[string]any{"item_id": item}, http.StatusPaymentRequired, "insufficient_funds"},
		{"no item id", buyer, map[string]any{}, http.StatusBadRequest, "validation_failed"},
		{"unknown field", buyer, map[string]any{"item_id": item, "price": 1}, http.StatusBadRequest, "unknown_field"},
		{"item id of the wrong type", buyer, map[string]any{"item_id": 5}, http.StatusBadRequest, "invalid_type"},
		{"not json", buyer, "{", http.StatusBadRequest, "malformed_json"},
		{"anonymous", user{}, map[string]any{"item_id": item}, http.StatusUnauthorized, "token_missing"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(tc.caller, "POST", "/v1/purchases", tc.body)
			require.Equal(t, tc.status, r.status, "body: %s", r.body)
			require.Equal(t, tc.code, r.code(t))
		})
	}
	// Nothing changed for the refused buyer.
	require.Equal(t, int64(699), h.wallet(poor, "EUR"))
	ok, err := h.svc.Has(context.Background(), poor.id, item)
	require.NoError(t, err)
	require.False(t, ok)
	h.checkInvariants()
}

func TestConcurrentPurchasesCannotOverdraw(t *testing.T) {
	h := newHarness(t, 1)
	creator := h.newUser(strata.RoleCreator, 4)
	buyer := h.newUser(strata.RoleBuyer, 6)
	const price, items, affordable = 300, 20, 7
	h.topUp(buyer, price*affordable+price/2, "USD")
	ids := make([]strata.ID, items)
	for i := range ids {
		ids[i] = h.item(creator, price, "USD")
	}
	var wg sync.WaitGroup
	var bought, broke atomic.Int32
	for _, id := range ids {
		wg.Go(func() {
			_, err := h.svc.Buy(buyer.ctx(), id)
			switch strata.ErrorReason(err) {
			case "":
				bought.Add(1)
			case "insufficient_funds":
				broke.Add(1)
			default:
				t.Errorf("buy: %v", err)
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(affordable), bought.Load())
	require.Equal(t, int32(items-affordable), broke.Load())
	require.Equal(t, int64(price/2), h.wallet(buyer, "USD"))

	// The same item bought concurrently: once.
	rich := h.newUser(strata.RoleBuyer, 11)
	h.topUp(rich, 100*price, "USD")
	var once atomic.Int32
	for range 10 {
		wg.Go(func() {
			if _, err := h.svc.Buy(rich.ctx(), ids[0]); err == nil {
				once.Add(1)
			} else {
				require.Equal(t, "already_purchased", strata.ErrorReason(err))
			}
		})
	}
	wg.Wait()
	require.Equal(t, int32(1), once.Load())
	require.Equal(t, int64(99*price), h.wallet(rich, "USD"))
	h.checkInvariants()
}

func TestAmountsNeverWrap(t *testing.T) {
	h := newHarness(t, 1)
	u := h.newUser(strata.RoleBuyer, 2)
	h.topUp(u, math.MaxInt64-10, "JPY")
	shard, _ := u.id.Shard()
	err := h.svc.TopUpForTest(context.Background(), u.id, strata.NewID("pi", shard, h.clock.Now()), strata.Money{Amount: 11, Currency: "JPY"})
	require.Equal(t, "amount_overflow", strata.ErrorReason(err))
	require.Equal(t, int64(math.MaxInt64-10), h.wallet(u, "JPY"))
	h.checkInvariants()

	for _, tc := range []struct {
		amount int64
		bps    int
		want   int64
	}{
		{1000, 1250, 125}, {7, 1250, 0}, {8, 1250, 1}, {1, 10000, 1}, {100, 0, 0},
		{math.MaxInt64, 10000, math.MaxInt64}, {math.MaxInt64, 5000, math.MaxInt64 / 2},
	} {
		require.Equal(t, tc.want, payments.Fee(tc.amount, tc.bps), "fee(%d, %d)", tc.amount, tc.bps)
	}
}

func TestTopUpCreditsOnce(t *testing.T) {
	h := newHarness(t, 1)
	u := h.newUser(strata.RoleBuyer, 2)
	shard, _ := u.id.Shard()
	intent := strata.NewID("pi", shard, h.clock.Now())
	m := strata.Money{Amount: 500, Currency: "USD"}
	require.NoError(t, h.svc.TopUpForTest(context.Background(), u.id, intent, m))
	err := h.svc.TopUpForTest(context.Background(), u.id, intent, m)
	require.Equal(t, "duplicate_transfer", strata.ErrorReason(err), "the database refuses a second credit")
	require.Equal(t, int64(500), h.wallet(u, "USD"))
	h.checkInvariants()
}

func TestReads(t *testing.T) {
	h := newHarness(t, 1)
	creator := h.newUser(strata.RoleCreator, 1)
	buyer := h.newUser(strata.RoleBuyer, 2)
	other := h.newUser(strata.RoleBuyer, 3)
	admin := h.newUser(strata.RoleAdmin, 4)
	h.topUp(buyer, 10_000, "USD")
	var bought []string
	for i := range 5 {
		id := h.item(creator, int64(100+i), "USD")
		r := h.do(buyer, "POST", "/v1/purchases", map[string]any{"item_id": id})
		require.Equal(t, http.StatusCreated, r.status)
		bought = append(bought, r.json(t)["id"].(string))
	}
	// Newest first, two per page.
	var seen []string
	cursor := ""
	for range 5 {
		r := h.do(buyer, "GET", "/v1/purchases?limit=2&cursor="+cursor, nil)
		require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
		page := r.json(t)
		for _, p := range page["purchases"].([]any) {
			seen = append(seen, p.(map[string]any)["id"].(string))
		}
		next, _ := page["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	require.Equal(t, []string{bought[4], bought[3], bought[2], bought[1], bought[0]}, seen)

	tests := []struct {
		name   string
		caller user
		path   string
		status int
	}{
		{"someone else's wallet", other, "/v1/wallet?user=" + string(buyer.id), http.StatusForbidden},
		{"an admin reads any wallet", admin, "/v1/wallet?user=" + string(buyer.id), http.StatusOK},
		{"someone else's purchases", other, "/v1/purchases?user=" + string(buyer.id), http.StatusForbidden},
		{"an admin reads any purchases", admin, "/v1/purchases?user=" + string(buyer.id), http.StatusOK},
		{"bad limit", buyer, "/v1/purchases?limit=0", http.StatusBadRequest},
		{"limit too large", buyer, "/v1/purchases?limit=101", http.StatusBadRequest},
		{"anonymous", user{}, "/v1/wallet", http.StatusUnauthorized},
		{"an empty wallet", other, "/v1/wallet", http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(tc.caller, "GET", tc.path, nil)
			require.Equal(t, tc.status, r.status, "body: %s", r.body)
		})
	}
	r := h.do(other, "GET", "/v1/wallet", nil)
	require.Equal(t, map[string]any{"balances": []any{}, "earnings": []any{}}, r.json(t))
}
