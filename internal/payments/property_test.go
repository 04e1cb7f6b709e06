package payments_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/httpx"
	"github.com/stratadev/strata/internal/httpx/httpxtest"
	"github.com/stratadev/strata/internal/idempotency"
	"github.com/stratadev/strata/internal/payments"
	"github.com/stratadev/strata/internal/payments/paymentssql"
	"github.com/stratadev/strata/internal/payments/provider"
	"github.com/stratadev/strata/internal/queue"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLedgerProperty runs thousands of random concurrent top-ups,
// purchases and refunds through the HTTP routes with the Idempotency-Key
// middleware, while clients retry (the same key, as after a lost
// response), the database fails transactions mid-way, the card network
// loses replies and the queue delivers settle events more than once; then
// every invariant holds and every operation took effect exactly once.
func TestLedgerProperty(t *testing.T) {
	h := newHarness(t, 1)
	ctx := context.Background()
	require.NoError(t, idempotency.Migrate(ctx, h.router))
	flaky := &faultStore{Store: paymentssql.New(h.router, h.clock), rate: 0.05, rnd: rand.New(rand.NewPCG(1, 2))}
	var netMu sync.Mutex
	netRnd := rand.New(rand.NewPCG(3, 4))
	cards, err := provider.NewTestProvider(provider.TestConfig{FailFunc: func(op string) error {
		netMu.Lock()
		defer netMu.Unlock()
		if op == provider.OpChargeReply && netRnd.Float64() < 0.05 {
			return errors.New("reply lost")
		}
		return nil
	}}, h.clock)
	require.NoError(t, err)
	svc := payments.NewService(payments.Deps{Store: flaky, Catalog: h.catalog, Clock: h.clock, Provider: cards,
		Config: payments.Config{FeeBasisPoints: testFee, TopUpMax: 1_000_000}})
	mux := httpx.NewMux()
	keys := idempotency.NewStore(h.router, h.clock)
	payments.Routes(mux, svc, httpxtest.Verifier{}, idempotency.Middleware(keys, idempotency.Config{}))
	handler := httpx.Chain(mux, httpx.RequestID, httpx.Recover)
	settler := payments.IntentSettler{Service: svc}

	const buyers, creators, itemCount, workers, opsPerWorker = 12, 4, 24, 8, 250
	var bs, cs []user
	for i := range buyers {
		bs = append(bs, h.newUser(strata.RoleBuyer, i%16))
	}
	for i := range creators {
		cs = append(cs, h.newUser(strata.RoleCreator, (i*5+3)%16))
	}
	admin := h.newUser(strata.RoleAdmin, 15)
	var items []strata.ID
	for i := range itemCount {
		items = append(items, h.item(cs[i%creators], int64(50+i*37), "USD"))
	}

	send := func(u user, method, path, key string, body any) (int, map[string]any) {
		req := httpxtest.NewRequest(t, method, path, body)
		req.Header.Set("Authorization", "Bearer "+u.token)
		req.Header.Set("Idempotency-Key", key)
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		var m map[string]any
		_ = json.Unmarshal(rec.Body.Bytes(), &m)
		return rec.Code, m
	}
	// call sends a request, retrying with the same key after failures and,
	// at random, once more after a success (a client that lost the
	// response): the answer must be the same.
	var retries, replays atomic.Int64
	call := func(rnd *rand.Rand, u user, method, path string, body any) (int, map[string]any) {
		key := fmt.Sprintf("k-%d-%d", rnd.Uint64(), rnd.Uint64())
		for {
			status, m := send(u, method, path, key, body)
			if status == http.StatusServiceUnavailable || status == http.StatusConflict && m["code"] == "idempotency_key_in_use" {
				retries.Add(1)
				continue
			}
			if status < 300 && rnd.IntN(4) == 0 {
				again, m2 := send(u, method, path, key, body)
				assert.Equal(t, status, again)
				assert.Equal(t, m["id"], m2["id"], "a retried key replays the first answer")
				replays.Add(1)
			}
			return status, m
		}
	}

	var mu sync.Mutex
	var purchases []map[string]any // completed purchases, refundable
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(w), 99))
			for range opsPerWorker {
				b := bs[rnd.IntN(len(bs))]
				switch op := rnd.IntN(10); {
				case op < 4: // top up
					number := []string{provider.TestCardSucceeds, provider.TestCardSucceeds, provider.TestCardDeclined, provider.TestCardAsync}[rnd.IntN(4)]
					status, m := call(rnd, b, "POST", "/v1/topups", topUpBody(int64(100+rnd.IntN(900)), "USD", number))
					assert.Equal(t, http.StatusCreated, status, "%v", m)
				case op < 8: // buy
					status, m := call(rnd, b, "POST", "/v1/purchases", map[string]any{"item_id": items[rnd.IntN(len(items))]})
					switch {
					case status == http.StatusCreated:
						mu.Lock()
						purchases = append(purchases, m)
						mu.Unlock()
					case status == http.StatusPaymentRequired || status == http.StatusConflict:
					default:
						t.Errorf("buy: %d %v", status, m)
					}
				default: // refund a random purchase as an admin, forced at random
					mu.Lock()
					if len(purchases) == 0 {
						mu.Unlock()
						continue
					}
					i := rnd.IntN(len(purchases))
					p := purchases[i]
					purchases = append(purchases[:i], purchases[i+1:]...)
					mu.Unlock()
					status, m := call(rnd, admin, "POST", "/v1/purchases/"+p["id"].(string)+"/refund", map[string]any{"force": rnd.IntN(2) == 0})
					assert.Contains(t, []int{http.StatusOK, http.StatusConflict}, status, "%v", m)
				}
			}
		})
	}
	// Meanwhile the worker settles intents, each event delivered twice.
	stop := make(chan struct{})
	settled := make(chan struct{})
	go func() {
		defer close(settled)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for _, m := range h.allSettleEvents() {
				_ = settler.Handle(ctx, m)
				_ = settler.Handle(ctx, m)
			}
		}
	}()
	wg.Wait()
	close(stop)
	<-settled
	// Let every asynchronous or unanswered charge settle, delivering each
	// settle event several times.
	h.clock.Advance(payments.SettleGrace + provider.DefaultConfirmAfter)
	for range 3 {
		for _, m := range h.allSettleEvents() {
			for {
				err := settler.Handle(ctx, m)
				if err == nil || queue.IsPermanent(err) {
					break
				}
				if !errors.Is(err, errInjected) {
					require.NoError(t, err)
				}
			}
		}
	}
	t.Logf("injected transaction failures %d, client retries %d, replays %d", flaky.failed.Load(), retries.Load(), replays.Load())
	require.Positive(t, flaky.failed.Load(), "failures were injected")
	require.Positive(t, replays.Load(), "responses were replayed")

	// The reconciler agrees.
	report, err := payments.Verify(ctx, paymentssql.New(h.router, h.clock))
	require.NoError(t, err)
	require.True(t, report.Clean(), "violations: %+v", report.Violations)

	// Every invariant, and exactly once: each wallet equals its succeeded
	// top-ups minus its live purchases' prices.
	h.checkInvariants()
	db := h.router.Shard(0).Reader()
	var processing int
	require.NoError(t, db.QueryRow("SELECT COUNT(*) FROM payments_intents WHERE status = 'processing'").Scan(&processing))
	require.Zero(t, processing, "every intent settled")
	var mismatched int
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM payments_accounts a WHERE a.kind = 'wallet' AND a.balance <>
		COALESCE((SELECT SUM(i.amount) FROM payments_intents i WHERE i.user_id = a.owner_id AND i.status = 'succeeded'), 0)
		- COALESCE((SELECT SUM(p.price_amount) FROM payments_purchases p WHERE p.buyer_id = a.owner_id AND p.status = 'completed'), 0)`).Scan(&mismatched))
	require.Zero(t, mismatched, "wallets equal succeeded top-ups minus live purchases")
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM payments_intents i WHERE i.status = 'succeeded' AND 1 <>
		(SELECT COUNT(*) FROM payments_transfers t WHERE t.type = 'topup' AND t.intent_id = i.id)`).Scan(&mismatched))
	require.Zero(t, mismatched, "each succeeded intent credited exactly once")
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM payments_purchases p WHERE
		(p.status = 'completed') <> EXISTS (SELECT 1 FROM payments_entitlements e WHERE e.purchase_id = p.id)`).Scan(&mismatched))
	require.Zero(t, mismatched, "live purchases, and only they, hold entitlements")
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM payments_purchases p WHERE p.status = 'refunded' AND 2 <>
		(SELECT COUNT(*) FROM payments_transfers t WHERE t.purchase_id = p.id AND t.type = 'refund')`).Scan(&mismatched))
	require.Zero(t, mismatched, "each refund reversed the sale and the fee once")
}

// allSettleEvents returns every settle event in the outbox.
func (h *harness) allSettleEvents() []queue.Message {
	var out []queue.Message
	for _, db := range h.router.DBs() {
		rows, err := db.Reader().Query("SELECT id, payload FROM outbox_events WHERE subject = $1", payments.SubjectIntentSettle)
		require.NoError(h.t, err)
		for rows.Next() {
			var id, payload string
			require.NoError(h.t, rows.Scan(&id, &payload))
			out = append(out, queue.Message{Subject: payments.SubjectIntentSettle, ID: id, Data: []byte(payload), NumDelivered: 1})
		}
		rows.Close()
	}
	return out
}
