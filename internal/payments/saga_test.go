package payments_test

import (
	"context"
	"math"
	"net/http"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/payments"
	"github.com/stratadev/strata/internal/queue"
	"github.com/stretchr/testify/require"
)

// sagaEvents returns the saga's outbox events on every database, oldest
// first per database, the ones in skip left out.
func (h *harness) sagaEvents(skip map[string]bool) []queue.Message {
	h.t.Helper()
	var out []queue.Message
	for _, db := range h.router.DBs() {
		rows, err := db.Reader().Query("SELECT id, subject, payload FROM outbox_events WHERE subject LIKE 'payments.saga.%' ORDER BY id")
		require.NoError(h.t, err)
		for rows.Next() {
			var m queue.Message
			var payload string
			require.NoError(h.t, rows.Scan(&m.ID, &m.Subject, &payload))
			m.Data, m.NumDelivered = []byte(payload), 1
			if !skip[m.ID] {
				out = append(out, m)
			}
		}
		require.NoError(h.t, rows.Err())
		rows.Close()
	}
	return out
}

// runSaga delivers every saga event not delivered yet to the saga worker,
// as the queue would, until none is left, and returns how many it
// delivered. seen remembers them across calls (nil: deliver all again).
func (h *harness) runSaga(seen map[string]bool) int {
	h.t.Helper()
	if seen == nil {
		seen = map[string]bool{}
	}
	w := payments.SagaWorker{Service: h.svc}
	n := 0
	for {
		evs := h.sagaEvents(seen)
		if len(evs) == 0 {
			return n
		}
		for _, m := range evs {
			require.NoError(h.t, w.Handle(context.Background(), m), "%s %s", m.Subject, m.Data)
			seen[m.ID] = true
			n++
		}
	}
}

func (h *harness) verify() *payments.Report {
	h.t.Helper()
	r, err := h.svc.Verify(context.Background())
	require.NoError(h.t, err)
	return r
}

// crossSetup is a creator on shard 1 (the first of three databases) with
// a 100 USD item, and a buyer on shard 12 (the third) holding 1000.
func crossSetup(t *testing.T) (h *harness, creator, buyer user, item strata.ID) {
	h = newHarness(t, 3) // shards 0-5, 6-10, 11-15 in three files
	creator = h.newUser(strata.RoleCreator, 1)
	buyer = h.newUser(strata.RoleBuyer, 12)
	item = h.item(creator, 100, "USD")
	r := h.do(buyer, "POST", "/v1/topups", topUpBody(1000, "USD", "4242424242424242"))
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	require.Equal(t, int64(1000), h.wallet(buyer, "USD"))
	return h, creator, buyer, item
}

// cleanBut asserts that rep found no violation but of the invariants
// named (TopUpForTest credits wallets without an intent, which the
// reconciler rightly reports as topup_transfer).
func cleanBut(t *testing.T, rep *payments.Report, allowed ...string) {
	t.Helper()
	for _, v := range rep.Violations {
		require.Contains(t, allowed, v.Invariant, "violation: %+v", v)
	}
}

func TestCrossDatabasePurchaseCreditsTheCreatorOnce(t *testing.T) {
	h, creator, buyer, item := crossSetup(t)
	r := h.do(buyer, "POST", "/v1/purchases", map[string]any{"item_id": item})
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	require.Equal(t, "saga", r.json(t)["settlement"])
	pur := strata.ID(r.json(t)["id"].(string))

	// The buyer's side committed: the item is theirs at once.
	require.Equal(t, int64(900), h.wallet(buyer, "USD"))
	require.Equal(t, int64(100), h.balance(payments.KindTransit, "", "USD", 12))
	ok, err := h.svc.Has(context.Background(), buyer.id, item)
	require.NoError(t, err)
	require.True(t, ok)
	require.Zero(t, h.balance(payments.KindEarnings, creator.id, "USD", 1), "the credit has not run yet")
	require.True(t, h.verify().Clean(), "a credit in flight breaks no invariant")
	h.checkInvariants()

	seen := map[string]bool{}
	require.Equal(t, 2, h.runSaga(seen), "credit, then credited")
	fee := payments.Fee(100, testFee)
	require.Equal(t, 100-fee, h.balance(payments.KindEarnings, creator.id, "USD", 1))
	require.Equal(t, fee, h.balance(payments.KindRevenue, "", "USD", 1))
	require.Equal(t, int64(-100), h.balance(payments.KindTransit, "", "USD", 1))

	// Every event delivered again (the queue is at-least-once): nothing moves twice.
	require.Equal(t, 2, h.runSaga(nil))
	require.Equal(t, 100-fee, h.balance(payments.KindEarnings, creator.id, "USD", 1))
	require.Equal(t, int64(900), h.wallet(buyer, "USD"))

	h.clock.Advance(2 * payments.SagaSettleBound)
	rep := h.verify()
	require.True(t, rep.Clean(), "violations: %+v", rep.Violations)
	h.checkInvariants()

	got := h.do(buyer, "GET", "/v1/purchases", nil).json(t)["purchases"].([]any)[0].(map[string]any)
	require.Equal(t, string(pur), got["id"])
	require.Equal(t, "completed", got["status"])
}

func TestCrossDatabaseRefund(t *testing.T) {
	h, creator, buyer, item := crossSetup(t)
	pur := h.do(buyer, "POST", "/v1/purchases", map[string]any{"item_id": item}).json(t)["id"].(string)
	h.runSaga(map[string]bool{})

	r := h.do(creator, "POST", "/v1/purchases/"+pur+"/refund", map[string]any{})
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(t, "refunded", r.json(t)["status"])
	require.Equal(t, int64(1000), h.wallet(buyer, "USD"))
	require.Zero(t, h.balance(payments.KindEarnings, creator.id, "USD", 1))
	require.Zero(t, h.balance(payments.KindRevenue, "", "USD", 1))
	require.Zero(t, h.balance(payments.KindTransit, "", "USD", 1))
	require.Zero(t, h.balance(payments.KindTransit, "", "USD", 12))
	ok, err := h.svc.Has(context.Background(), buyer.id, item)
	require.NoError(t, err)
	require.False(t, ok, "the entitlement is revoked")

	r = h.do(creator, "POST", "/v1/purchases/"+pur+"/refund", map[string]any{})
	require.Equal(t, http.StatusConflict, r.status)
	require.Equal(t, "already_refunded", r.code(t))
	// The refund's backstop event (and every other) delivered again: no-ops.
	h.runSaga(nil)
	require.Equal(t, int64(1000), h.wallet(buyer, "USD"))
	require.Zero(t, h.balance(payments.KindEarnings, creator.id, "USD", 1))

	rep := h.verify()
	require.True(t, rep.Clean(), "violations: %+v", rep.Violations)
	h.checkInvariants()
}

// A refund that overtakes the credit fences it off: the credit never
// happens, and no money is created.
func TestCrossDatabaseRefundBeforeTheCredit(t *testing.T) {
	h, creator, buyer, item := crossSetup(t)
	pur := h.do(buyer, "POST", "/v1/purchases", map[string]any{"item_id": item}).json(t)["id"].(string)
	r := h.do(creator, "POST", "/v1/purchases/"+pur+"/refund", map[string]any{})
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(t, int64(1000), h.wallet(buyer, "USD"))

	h.runSaga(map[string]bool{}) // the credit arrives late
	require.Zero(t, h.balance(payments.KindEarnings, creator.id, "USD", 1), "a canceled credit is never applied")
	require.Zero(t, h.balance(payments.KindTransit, "", "USD", 1))
	require.Zero(t, h.balance(payments.KindTransit, "", "USD", 12))
	h.clock.Advance(2 * payments.SagaSettleBound)
	rep := h.verify()
	require.True(t, rep.Clean(), "violations: %+v", rep.Violations)
	h.checkInvariants()
}

// A credit that can never succeed (here the creator's earnings would
// overflow) is compensated: the buyer gets the money back, loses the
// item, and the purchase says why.
func TestCrossDatabaseCreditFailureCompensates(t *testing.T) {
	h, creator, buyer, item := crossSetup(t)
	// First fill the creator's earnings almost to the brim through a rich
	// buyer's cross-database purchase.
	rich := h.newUser(strata.RoleBuyer, 13)
	huge := h.item(creator, math.MaxInt64-50, "USD")
	h.topUp(rich, math.MaxInt64-50, "USD")
	require.Equal(t, http.StatusCreated, h.do(rich, "POST", "/v1/purchases", map[string]any{"item_id": huge}).status)
	seen := map[string]bool{}
	h.runSaga(seen)

	r := h.do(buyer, "POST", "/v1/purchases", map[string]any{"item_id": item})
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	pur := r.json(t)["id"].(string)
	h.runSaga(seen) // the credit overflows: compensated

	require.Equal(t, int64(1000), h.wallet(buyer, "USD"))
	ok, err := h.svc.Has(context.Background(), buyer.id, item)
	require.NoError(t, err)
	require.False(t, ok)
	got := h.do(buyer, "GET", "/v1/purchases", nil).json(t)["purchases"].([]any)[0].(map[string]any)
	require.Equal(t, pur, got["id"])
	require.Equal(t, "refunded", got["status"])
	require.Equal(t, payments.RefundCreditFailed, got["refund_reason"])
	require.Zero(t, h.balance(payments.KindTransit, "", "USD", 12))

	h.runSaga(nil) // everything again: still compensated once
	require.Equal(t, int64(1000), h.wallet(buyer, "USD"))
	h.clock.Advance(2 * payments.SagaSettleBound)
	cleanBut(t, h.verify(), payments.InvariantTopUpTransfer)
	h.checkInvariants()
}

// The reconciler reports a credit still missing after the bound, and
// transit money that the saga's rows do not account for.
func TestReconcilerWatchesTheSaga(t *testing.T) {
	h, _, buyer, item := crossSetup(t)
	require.Equal(t, http.StatusCreated, h.do(buyer, "POST", "/v1/purchases", map[string]any{"item_id": item}).status)
	h.clock.Advance(payments.SagaSettleBound + time.Minute)
	rep := h.verify()
	require.Equal(t, int64(1), rep.Found[payments.InvariantCreditSettled], "violations: %+v", rep.Violations)
	h.runSaga(map[string]bool{})
	require.True(t, h.verify().Clean())

	// A receipt lost (by hand): the creator's transit money is no longer accounted for.
	_, err := h.router.Shard(1).Writer().Exec("DELETE FROM payments_saga_receipts")
	require.NoError(t, err)
	rep = h.verify()
	require.Equal(t, int64(1), rep.Found[payments.InvariantTransitAccounted], "violations: %+v", rep.Violations)
}

// A forced refund of a cross-database purchase records its deficit beside
// the earnings (the reconciler checks it there); a refund retried after
// its buyer's side failed finishes it without taking the money twice.
func TestCrossDatabaseForcedRefundAndRetry(t *testing.T) {
	h, creator, buyer, item := crossSetup(t)
	admin := h.newUser(strata.RoleAdmin, 7)
	pur := h.do(buyer, "POST", "/v1/purchases", map[string]any{"item_id": item}).json(t)["id"].(string)
	h.runSaga(map[string]bool{})
	h.drainEarnings(creator, 1, "USD", 50) // the earnings leave the ledger, as a payout would

	r := h.do(creator, "POST", "/v1/purchases/"+pur+"/refund", nil)
	require.Equal(t, http.StatusConflict, r.status, "body: %s", r.body)
	require.Equal(t, "insufficient_earnings", r.code(t))

	// The buyer's database fails the buyer's side once: the creator's side
	// has committed, the answer is 503.
	failing := h.failShardOnce(12)
	r = h.do(admin, "POST", "/v1/purchases/"+pur+"/refund", map[string]any{"force": true})
	require.Equal(t, http.StatusServiceUnavailable, r.status, "body: %s", r.body)
	require.True(t, failing.Load(), "the buyer's side was attempted")
	kept := 100 - payments.Fee(100, testFee)
	require.Equal(t, kept-50-kept, h.balance(payments.KindEarnings, creator.id, "USD", 1), "the creator's side is done")

	// The retry finishes the buyer's side, and takes nothing twice.
	r = h.do(admin, "POST", "/v1/purchases/"+pur+"/refund", map[string]any{"force": true})
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(t, int64(1000), h.wallet(buyer, "USD"))
	require.Equal(t, int64(-50), h.balance(payments.KindEarnings, creator.id, "USD", 1))
	var deficit int64
	require.NoError(t, h.router.Shard(1).Reader().QueryRow("SELECT refund_deficit FROM payments_saga_receipts WHERE purchase_id = $1", pur).Scan(&deficit))
	require.Equal(t, int64(50), deficit)
	h.runSaga(nil) // the backstop event too: a no-op now
	require.Equal(t, int64(1000), h.wallet(buyer, "USD"))
	// drainEarnings tops up by hand (topup_transfer); the negative
	// earnings are covered by the deficit recorded beside them.
	cleanBut(t, h.verify(), payments.InvariantTopUpTransfer)
}

// The creator's database down for a while: every delivery of the credit
// fails and is retried (the queue redelivers); the buyer keeps the item
// meanwhile; once the database is back the credit applies exactly once.
func TestCrossDatabaseCreditWaitsForTheCreatorsDatabase(t *testing.T) {
	h, creator, buyer, item := crossSetup(t)
	require.Equal(t, http.StatusCreated, h.do(buyer, "POST", "/v1/purchases", map[string]any{"item_id": item}).status)
	var credit queue.Message
	for _, m := range h.sagaEvents(nil) {
		if m.Subject == payments.SubjectSagaCredit {
			credit = m
		}
	}
	require.NotEmpty(t, credit.ID)
	w := payments.SagaWorker{Service: h.svc}
	h.setShardDown(1, true)
	for n := uint64(1); n <= 5; n++ {
		credit.NumDelivered = n
		require.Error(t, w.Handle(context.Background(), credit), "delivery %d: retried later", n)
	}
	require.Zero(t, h.balance(payments.KindEarnings, creator.id, "USD", 1))
	ok, err := h.svc.Has(context.Background(), buyer.id, item)
	require.NoError(t, err)
	require.True(t, ok, "the buyer keeps the item while the credit waits")

	h.setShardDown(1, false)
	credit.NumDelivered = 6
	require.NoError(t, w.Handle(context.Background(), credit))
	require.NoError(t, w.Handle(context.Background(), credit), "a duplicate delivery")
	h.runSaga(map[string]bool{credit.ID: true})
	require.Equal(t, 100-payments.Fee(100, testFee), h.balance(payments.KindEarnings, creator.id, "USD", 1))
	h.clock.Advance(2 * payments.SagaSettleBound)
	rep := h.verify()
	require.True(t, rep.Clean(), "violations: %+v", rep.Violations)
}
