package payments_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
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

// TestSagaProperty runs hundreds of concurrent purchases and refunds over
// three databases, most of them across databases (a saga), while the
// database fails transactions before they commit, clients retry and replay
// their requests, admins force refunds, and the saga's events are
// delivered late, out of order, more than once and sometimes twice at the
// same time — some as the queue's last try, when a failing credit is
// compensated. So refunds overtake credits, race them and race each
// other. Once every event is delivered, and delivered again to no effect,
// the reconciler finds nothing, every purchase took effect once, and every
// wallet, earnings, revenue and transit account holds what the purchases
// that stayed completed say.
func TestSagaProperty(t *testing.T) {
	t.Parallel()
	const (
		workers, opsPerWorker = 12, 60
		deliverers            = 4
		failRate              = 0.05 // of every transaction
		// shakyRate fails the transactions of credits on their last
		// delivery, so that some are compensated.
		shakyRate = 0.5
	)
	h := newHarness(t, 3) // shards 0-5, 6-10, 11-15
	require.NoError(t, idempotency.Migrate(context.Background(), h.router))
	w := newSagaWorld(t, h)

	outbox := newSignal()
	service := func(rate float64, seed uint64) (*payments.Service, *faultStore) {
		store := &faultStore{Store: paymentssql.New(h.router, h.clock), rate: rate, rnd: rand.New(rand.NewPCG(seed, 7))}
		return payments.NewService(payments.Deps{Store: store, Catalog: h.catalog, Clock: h.clock, NotifyOutbox: outbox.fire,
			Config: payments.Config{FeeBasisPoints: testFee, TopUpMax: 1_000_000}}), store
	}
	svc, flaky := service(failRate, 1)
	shakySvc, shaky := service(shakyRate, 2)
	mux := httpx.NewMux()
	payments.Routes(mux, svc, httpxtest.Verifier{}, idempotency.Middleware(idempotency.NewStore(h.router, h.clock), idempotency.Config{}))
	c := &retryingClient{t: t, handler: httpx.Chain(mux, httpx.RequestID, httpx.Recover)}
	compensated := &compensationLog{}
	d := newSagaDeliverer(h, payments.SagaWorker{Service: svc, Logger: slog.New(compensated)},
		payments.SagaWorker{Service: shakySvc, Logger: slog.New(compensated)})

	var clients, workersDone sync.WaitGroup
	stop := make(chan struct{})
	for i := range deliverers {
		workersDone.Go(func() { d.run(t, rand.New(rand.NewPCG(uint64(i), 17)), outbox, stop) })
	}
	for i := range workers {
		clients.Go(func() {
			rnd := rand.New(rand.NewPCG(uint64(i), 99))
			for range opsPerWorker {
				switch op := rnd.IntN(20); {
				case op < 11:
					w.buy(t, c, rnd)
				case op < 16:
					w.refund(t, c, rnd, false)
				default:
					w.refund(t, c, rnd, true)
				}
			}
		})
	}
	clients.Wait()
	close(stop)
	workersDone.Wait()
	t.Logf("purchases %d, refunds %d (%d given up after a 503); injected transaction failures %d (shaky %d), client retries %d, replays %d",
		len(w.purchases), w.refunds.Load(), w.gaveUp.Load(), flaky.failed.Load(), shaky.failed.Load(), c.retries.Load(), c.replays.Load())
	t.Logf("saga deliveries %d: %d again after a success, %d at the same time as another, %d as the last try",
		d.deliveries.Load(), d.duplicates.Load(), d.concurrent.Load(), d.lastTries.Load())
	require.Positive(t, flaky.failed.Load(), "failures were injected")
	require.Positive(t, c.replays.Load(), "responses were replayed")
	require.Positive(t, d.duplicates.Load(), "events were delivered again")
	require.Positive(t, d.concurrent.Load(), "events were delivered twice at once")

	// The queue delivers what is left, then everything once more: the
	// second time changes nothing and writes no event.
	d.drain(t)
	before, evs := h.ledgerDigest(), h.sagaEvents(nil)
	w.check(t, d)
	for _, id := range compensated.purchases() {
		require.True(t, d.lastTry(id), "purchase %s: its credit was compensated, though not on its last try: %s", id, h.describe(id))
	}
	d.deliverAll(t, evs)
	require.Equal(t, before, h.ledgerDigest(), "delivering every saga event again changed the ledger")
	require.Len(t, h.sagaEvents(nil), len(evs), "delivering every saga event again wrote new ones")

	h.clock.Advance(2 * payments.SagaSettleBound)
	rep := h.verify()
	require.True(t, rep.Clean(), "violations: %+v", rep.Violations)
	h.checkInvariants()
}

// sagaWorld is the test's model: who buys what from whom, and what
// happened to each purchase as the clients saw it.
type sagaWorld struct {
	h        *harness
	creators []user
	buyers   []user
	admin    user
	items    []sagaItem
	topUps   map[strata.ID]map[string]int64 // buyer, currency: what they paid in

	mu        sync.Mutex
	purchases []sagaPurchase     // every purchase answered 201, once
	seen      map[strata.ID]bool // their ids
	refunded  map[strata.ID]int  // refunds answered 200, per purchase
	asked     map[strata.ID]bool // purchases someone asked to refund

	refunds, gaveUp atomic.Int64
}

type sagaItem struct {
	id      strata.ID
	creator int // in creators
	price   strata.Money
}

type sagaPurchase struct {
	id          strata.ID
	buyer, item int // in buyers, items
}

// newSagaWorld makes six creators, two on each database, with four items
// each (one in four priced in EUR), and 32 buyers, two on every shard,
// who pay in through real top-ups: most purchases cross databases, about
// a third stay on one.
func newSagaWorld(t *testing.T, h *harness) *sagaWorld {
	t.Helper()
	w := &sagaWorld{h: h, admin: h.newUser(strata.RoleAdmin, 3), topUps: map[strata.ID]map[string]int64{},
		seen: map[strata.ID]bool{}, refunded: map[strata.ID]int{}, asked: map[strata.ID]bool{}}
	for _, shard := range []int{1, 4, 7, 10, 12, 15} {
		w.creators = append(w.creators, h.newUser(strata.RoleCreator, shard))
	}
	for i := range 24 {
		price := strata.Money{Amount: int64(40 + i*53%360), Currency: "USD"}
		if i%4 == 3 {
			price.Currency = "EUR"
		}
		cr := i % len(w.creators)
		w.items = append(w.items, sagaItem{id: h.item(w.creators[cr], price.Amount, price.Currency), creator: cr, price: price})
	}
	rnd := rand.New(rand.NewPCG(42, 42))
	for i := range 32 {
		b := h.newUser(strata.RoleBuyer, i%16)
		w.buyers = append(w.buyers, b)
		w.topUps[b.id] = map[string]int64{}
		for cur, amount := range map[string]int64{"USD": int64(500 + rnd.IntN(1500)), "EUR": int64(100 + rnd.IntN(500))} {
			r := h.do(b, "POST", "/v1/topups", topUpBody(amount, cur, provider.TestCardSucceeds))
			require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
			require.Equal(t, "succeeded", r.json(t)["status"])
			w.topUps[b.id][cur] = amount
		}
	}
	return w
}

// buy has a random buyer buy a random item.
func (w *sagaWorld) buy(t *testing.T, c *retryingClient, rnd *rand.Rand) {
	bi, ii := rnd.IntN(len(w.buyers)), rnd.IntN(len(w.items))
	it := w.items[ii]
	status, m := c.call(rnd, w.buyers[bi], "POST", "/v1/purchases", map[string]any{"item_id": it.id}, true)
	switch {
	case status == http.StatusCreated:
		id := strata.ID(m["id"].(string))
		assert.Equal(t, w.settlement(w.buyers[bi], it), m["settlement"], "%v", m)
		w.mu.Lock()
		defer w.mu.Unlock()
		assert.False(t, w.seen[id], "purchase %s answered twice", id)
		w.seen[id] = true
		w.purchases = append(w.purchases, sagaPurchase{id: id, buyer: bi, item: ii})
	case status == http.StatusPaymentRequired && m["code"] == "insufficient_funds":
	case status == http.StatusConflict && m["code"] == "already_purchased":
	default:
		t.Errorf("buy: %d %v", status, m)
	}
}

// settlement is how a purchase of it by b settles: "saga" when b and its
// creator live in different databases.
func (w *sagaWorld) settlement(b user, it sagaItem) string {
	bs, _ := b.id.Shard()
	cs, _ := w.creators[it.creator].id.Shard()
	if w.h.router.Shard(bs) == w.h.router.Shard(cs) {
		return string(payments.SettlementLocal)
	}
	return string(payments.SettlementSaga)
}

// refund refunds a purchase, most often a recent one (its credit may still
// be on its way), as its creator or as an admin (forcing it, mostly). Now
// and then another creator tries and must not find it.
func (w *sagaWorld) refund(t *testing.T, c *retryingClient, rnd *rand.Rand, admin bool) {
	w.mu.Lock()
	n := len(w.purchases)
	if n == 0 {
		w.mu.Unlock()
		return
	}
	i := rnd.IntN(n)
	if rnd.IntN(2) == 0 {
		i = n - 1 - rnd.IntN(min(n, 8))
	}
	p := w.purchases[i]
	w.asked[p.id] = true
	w.mu.Unlock()
	caller, body := w.creators[w.items[p.item].creator], map[string]any{}
	if admin {
		caller, body = w.admin, map[string]any{"force": rnd.IntN(4) != 0}
	}
	if !admin && rnd.IntN(20) == 0 {
		caller = w.creators[(w.items[p.item].creator+1)%len(w.creators)]
		status, m := c.call(rnd, caller, "POST", "/v1/purchases/"+string(p.id)+"/refund", body, true)
		assert.Equal(t, http.StatusNotFound, status, "another creator's refund: %v", m)
		return
	}
	w.refunds.Add(1)
	// One client in four gives up when the service is unavailable.
	status, m := c.call(rnd, caller, "POST", "/v1/purchases/"+string(p.id)+"/refund", body, rnd.IntN(4) != 0)
	switch {
	case status == http.StatusOK:
		assert.Equal(t, "refunded", m["status"], "%v", m)
		w.mu.Lock()
		w.refunded[p.id]++
		w.mu.Unlock()
	case status == http.StatusConflict && m["code"] == "already_refunded":
		// Said when it is true, not while the buyer's side is still to do.
		assert.Equal(t, payments.PurchaseRefunded, w.status(t, p.id), "refund %s answered already_refunded: %s", p.id, w.h.describe(p.id))
	case status == http.StatusServiceUnavailable:
		w.gaveUp.Add(1)
	default:
		// Earnings always cover a refund (nothing is paid out): neither
		// insufficient_earnings nor insufficient_funds is a right answer.
		t.Errorf("refund %s (admin %v, %v): %d %v; %s", p.id, admin, body, status, m, w.h.describe(p.id))
	}
}

// status reads the purchase's status on the buyer's database.
func (w *sagaWorld) status(t *testing.T, id strata.ID) payments.PurchaseStatus {
	db, err := w.h.router.ForID(id)
	if !assert.NoError(t, err) {
		return ""
	}
	var s string
	assert.NoError(t, db.Reader().QueryRow("SELECT status FROM payments_purchases WHERE id = $1", id).Scan(&s))
	return payments.PurchaseStatus(s)
}

// sagaAccount names an account of the model: wallets and earnings by
// owner, revenue and transit accounts by shard alone.
type sagaAccount struct {
	owner    strata.ID
	currency string
	shard    int
}

// sagaExpected is what the ledger must hold, given which purchases stayed
// completed.
type sagaExpected struct {
	wallets, earnings, revenue, transit map[sagaAccount]int64
	live                                map[[2]strata.ID]strata.ID // buyer, item: the completed purchase
}

// check compares the ledger with the model, purchase by purchase, then
// account by account.
func (w *sagaWorld) check(t *testing.T, d *sagaDeliverer) {
	want := w.checkPurchases(t, d)
	h := w.h
	for k, amount := range want.wallets {
		require.Equal(t, amount, h.balance(payments.KindWallet, k.owner, k.currency, k.shard), "wallet %+v", k)
	}
	for i, cr := range w.creators {
		shard, _ := cr.id.Shard()
		for _, cur := range []string{"USD", "EUR"} {
			k := sagaAccount{cr.id, cur, shard}
			require.Equal(t, want.earnings[k], h.balance(payments.KindEarnings, cr.id, cur, shard), "earnings of creator %d in %s", i, cur)
		}
	}
	totals := map[string]int64{}
	for shard := range 16 {
		for _, cur := range []string{"USD", "EUR"} {
			k := sagaAccount{"", cur, shard}
			require.Equal(t, want.revenue[k], h.balance(payments.KindRevenue, "", cur, shard), "revenue %+v", k)
			got := h.balance(payments.KindTransit, "", cur, shard)
			require.Equal(t, want.transit[k], got, "transit %+v", k)
			totals[cur] += got
		}
	}
	require.Equal(t, map[string]int64{"USD": 0, "EUR": 0}, totals, "the transit accounts sum to zero: nothing is in flight")
	require.Equal(t, want.live, h.entitlementRows(), "the completed purchases, and only they, entitle their buyers")
	for k, pur := range want.live {
		ok, err := h.svc.Has(context.Background(), k[0], k[1])
		require.NoError(t, err)
		require.True(t, ok, "purchase %s", pur)
	}
}

// checkPurchases checks that the ledger holds the purchases answered 201
// and no other, each with its receipt and transfers as its final status
// says, and returns what the accounts must hold.
func (w *sagaWorld) checkPurchases(t *testing.T, d *sagaDeliverer) sagaExpected {
	h := w.h
	rows, receipts, transfers := h.purchaseRows(), h.receiptRows(), h.transferCounts()
	require.Len(t, rows, len(w.purchases), "every purchase in the ledger was answered 201, and only those are")
	want := sagaExpected{wallets: map[sagaAccount]int64{}, earnings: map[sagaAccount]int64{}, revenue: map[sagaAccount]int64{},
		transit: map[sagaAccount]int64{}, live: map[[2]strata.ID]strata.ID{}}
	for id, byCur := range w.topUps {
		shard, _ := id.Shard()
		for cur, amount := range byCur {
			want.wallets[sagaAccount{id, cur, shard}] += amount
		}
	}
	compensated, overtaken := 0, 0
	for _, p := range w.purchases {
		r, ok := rows[p.id]
		require.True(t, ok, "purchase %s answered 201 is not in the ledger", p.id)
		it, b := w.items[p.item], w.buyers[p.buyer]
		creator := w.creators[it.creator]
		fee := payments.Fee(it.price.Amount, testFee)
		require.Equal(t, sagaPurchaseRow{buyer: b.id, item: it.id, creator: creator.id, price: it.price, fee: fee,
			status: r.status, settlement: payments.Settlement(w.settlement(b, it)), reason: r.reason, credited: r.credited}, r,
			"purchase %s: nothing is paid out, so earnings cover every refund and none leaves a deficit", p.id)
		require.LessOrEqual(t, w.refunded[p.id], 1, "purchase %s refunded twice", p.id)
		saga := r.settlement == payments.SettlementSaga
		rec, hasReceipt := receipts[p.id]
		require.Equal(t, saga, hasReceipt, "purchase %s (%s): a receipt exactly when it crossed databases", p.id, r.settlement)
		bs, _ := b.id.Shard()
		cs, _ := creator.id.Shard()
		cur := it.price.Currency
		var moved map[payments.TransferType]int
		switch {
		case r.status == payments.PurchaseCompleted:
			require.Zero(t, w.refunded[p.id], "purchase %s answered refunded is completed", p.id)
			require.Empty(t, r.reason)
			require.NotContains(t, want.live, [2]strata.ID{b.id, it.id}, "two completed purchases of one item by one buyer")
			want.live[[2]strata.ID{b.id, it.id}] = p.id
			want.wallets[sagaAccount{b.id, cur, bs}] -= it.price.Amount
			want.earnings[sagaAccount{creator.id, cur, cs}] += it.price.Amount - fee
			moved = map[payments.TransferType]int{payments.TransferPurchase: 1, payments.TransferFee: 1}
			if !saga {
				want.revenue[sagaAccount{"", cur, bs}] += fee
				break
			}
			want.revenue[sagaAccount{"", cur, cs}] += fee
			want.transit[sagaAccount{"", cur, bs}] += it.price.Amount
			want.transit[sagaAccount{"", cur, cs}] -= it.price.Amount
			if rec.state != payments.ReceiptApplied {
				require.Failf(t, "completed purchase's credit not applied", "%s (refund asked: %v, last try: %v): %s",
					p.id, w.asked[p.id], d.lastTry(p.id), h.describe(p.id))
			}
			require.True(t, r.credited, "completed purchase %s: its credit is confirmed", p.id)
			moved[payments.TransferPurchase] = 2 // the price into transit, out of it
		case r.reason == payments.RefundCreditFailed:
			require.True(t, saga && d.lastTry(p.id), "purchase %s compensated, yet its credit was never on its last try", p.id)
			require.Equal(t, payments.ReceiptCanceled, rec.state)
			compensated++
			moved = map[payments.TransferType]int{payments.TransferPurchase: 1, payments.TransferRefund: 1}
		default:
			require.Empty(t, r.reason)
			require.True(t, w.asked[p.id], "purchase %s refunded without anyone asking", p.id)
			moved = map[payments.TransferType]int{payments.TransferPurchase: 1, payments.TransferFee: 1, payments.TransferRefund: 2}
			switch {
			case saga && rec.state == payments.ReceiptApplied: // everything reversed on both sides
				moved = map[payments.TransferType]int{payments.TransferPurchase: 2, payments.TransferFee: 1, payments.TransferRefund: 3}
			case saga: // refunded before the credit (or after a compensation fenced it off), which never happened
				require.True(t, rec.cause == "refunded" || d.lastTry(p.id), "receipt %+v", rec)
				if rec.cause == "refunded" {
					overtaken++
				}
				moved = map[payments.TransferType]int{payments.TransferPurchase: 1, payments.TransferRefund: 1}
			}
		}
		require.Equal(t, moved, transfers[p.id], "purchase %s (%s, %s, receipt %+v): its transfers", p.id, r.settlement, r.status, rec)
	}
	t.Logf("completed %d of %d purchases, %d across databases; compensated %d; refunded before the credit %d",
		len(want.live), len(w.purchases), len(receipts), compensated, overtaken)
	require.Positive(t, overtaken, "refunds overtook credits")
	require.Less(t, len(receipts), len(w.purchases), "some purchases stayed on one database")
	return want
}

// compensationLog is the saga worker's log handler: it keeps the
// purchases whose credit the worker gave up on and compensated.
type compensationLog struct {
	mu  sync.Mutex
	ids []strata.ID
}

func (l *compensationLog) Enabled(_ context.Context, lv slog.Level) bool {
	return lv >= slog.LevelError
}
func (l *compensationLog) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *compensationLog) WithGroup(string) slog.Handler      { return l }

func (l *compensationLog) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "purchase_id" {
			l.mu.Lock()
			l.ids = append(l.ids, strata.ID(a.Value.String()))
			l.mu.Unlock()
		}
		return true
	})
	return nil
}

func (l *compensationLog) purchases() []strata.ID {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.ids)
}

// retryingClient sends requests as a careful client does: under an
// Idempotency-Key, sent again after a 503 or while the key is in use, and
// at random once more after a success (a response lost on the way), which
// must replay the first answer.
type retryingClient struct {
	t                testing.TB
	handler          http.Handler
	retries, replays atomic.Int64
}

func (c *retryingClient) send(u user, method, path, key string, body any) (int, map[string]any) {
	req := httpxtest.NewRequest(c.t, method, path, body)
	req.Header.Set("Authorization", "Bearer "+u.token)
	req.Header.Set(idempotency.HeaderKey, key)
	rec := httptest.NewRecorder()
	c.handler.ServeHTTP(rec, req)
	var m map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &m)
	return rec.Code, m
}

// call returns the final answer; a client not patient gives up after a
// first 503.
func (c *retryingClient) call(rnd *rand.Rand, u user, method, path string, body any, patient bool) (status int, m map[string]any) {
	key := fmt.Sprintf("k-%x-%x", rnd.Uint64(), rnd.Uint64())
	for {
		status, m = c.send(u, method, path, key, body)
		if status == http.StatusServiceUnavailable && !patient {
			return status, m
		}
		if status != http.StatusServiceUnavailable && (status != http.StatusConflict || m["code"] != idempotency.ReasonKeyInUse) {
			break
		}
		c.retries.Add(1)
	}
	if status < 300 && rnd.IntN(4) == 0 {
		again, m2 := c.send(u, method, path, key, body)
		assert.Equal(c.t, status, again)
		assert.Equal(c.t, m["id"], m2["id"], "a retried key replays the first answer")
		c.replays.Add(1)
	}
	return status, m
}

// signal wakes everyone waiting when it fires: here, when a transaction
// wrote to the outbox.
type signal struct {
	mu sync.Mutex
	ch chan struct{}
}

func newSignal() *signal { return &signal{ch: make(chan struct{})} }

// wait returns a channel closed at the next fire.
func (s *signal) wait() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ch
}

func (s *signal) fire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.ch)
	s.ch = make(chan struct{})
}

// sagaDeliverer plays the queue of the saga's events, reading them from
// the outbox of every database. Each event gets a fate when first seen:
// held back until the end (so refunds overtake its credit), delivered as
// the queue's last try (a credit that fails then is compensated: these go
// to a worker whose database fails half its transactions), or delivered
// as it comes. Any event may be delivered again after it succeeded, and
// some are delivered twice at the same time.
type sagaDeliverer struct {
	h           *harness
	worker      payments.SagaWorker
	shakyWorker payments.SagaWorker

	mu       sync.Mutex
	fates    map[string]sagaFate
	attempts map[string]uint64  // deliveries per event
	done     map[string]bool    // delivered with success at least once
	last     map[strata.ID]bool // purchases whose credit had a last try

	deliveries, duplicates, concurrent, lastTries atomic.Int64
}

type sagaFate int

const (
	fateNormal sagaFate = iota
	fateHeld
	fateLastTry
)

func newSagaDeliverer(h *harness, worker, shaky payments.SagaWorker) *sagaDeliverer {
	return &sagaDeliverer{h: h, worker: worker, shakyWorker: shaky, fates: map[string]sagaFate{},
		attempts: map[string]uint64{}, done: map[string]bool{}, last: map[strata.ID]bool{}}
}

// run delivers events until stop is closed, waiting for new ones when
// none it may deliver is pending.
func (d *sagaDeliverer) run(t *testing.T, rnd *rand.Rand, outbox *signal, stop <-chan struct{}) {
	for {
		next := outbox.wait()
		select {
		case <-stop:
			return
		default:
		}
		if d.pass(t, rnd) {
			continue
		}
		select {
		case <-stop:
			return
		case <-next:
		}
	}
}

// pass goes once over the outbox in random order: it delivers most pending
// events (a few twice at once), now and then one done already again, and
// reports whether any it may deliver is still pending.
func (d *sagaDeliverer) pass(t *testing.T, rnd *rand.Rand) (pending bool) {
	evs := d.h.sagaEvents(nil)
	rnd.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	again := rnd.IntN(2) == 0
	for _, m := range evs {
		fate, done := d.fate(rnd, m)
		switch {
		case done && again:
			again = false
			d.duplicates.Add(1)
		case done || fate == fateHeld:
			continue
		case rnd.IntN(4) == 0:
			pending = true // later
			continue
		}
		var err error
		if rnd.IntN(10) == 0 {
			d.concurrent.Add(1)
			var wg sync.WaitGroup
			var err2 error
			wg.Go(func() { err2 = d.deliver(m) })
			err = d.deliver(m)
			wg.Wait()
			err = errors.Join(err, err2)
		} else {
			err = d.deliver(m)
		}
		if err != nil && !errors.Is(err, errInjected) {
			t.Errorf("%s %s: %v", m.Subject, m.Data, err)
		}
		pending = pending || !d.isDone(m.ID)
	}
	return pending
}

// fate returns m's fate, drawing it on first sight, and whether m was
// delivered already.
func (d *sagaDeliverer) fate(rnd *rand.Rand, m queue.Message) (sagaFate, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	f, ok := d.fates[m.ID]
	if !ok {
		f = fateNormal
		switch n := rnd.IntN(10); {
		case n < 2:
			f = fateHeld
		case n < 4 && m.Subject == payments.SubjectSagaCredit:
			f = fateLastTry
		}
		d.fates[m.ID] = f
	}
	return f, d.done[m.ID]
}

func (d *sagaDeliverer) isDone(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.done[id]
}

// lastTry reports whether the purchase's credit was delivered as a last try.
func (d *sagaDeliverer) lastTry(purchase strata.ID) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.last[purchase]
}

// deliver hands m to the saga worker once, as the queue would.
func (d *sagaDeliverer) deliver(m queue.Message) error {
	d.mu.Lock()
	d.attempts[m.ID]++
	m.NumDelivered = d.attempts[m.ID]
	w := d.worker
	if d.fates[m.ID] == fateLastTry {
		var ev payments.SagaEvent
		if err := json.Unmarshal(m.Data, &ev); err != nil {
			d.mu.Unlock()
			return err
		}
		d.last[ev.PurchaseID] = true
		m.NumDelivered, w = max(m.NumDelivered, payments.SagaMaxDeliver), d.shakyWorker
		d.lastTries.Add(1)
	}
	d.mu.Unlock()
	d.deliveries.Add(1)
	if err := w.Handle(context.Background(), m); err != nil {
		return err
	}
	d.mu.Lock()
	d.done[m.ID] = true
	d.mu.Unlock()
	return nil
}

// deliverAll delivers each of evs, one at a time, until it succeeds; the
// only failures expected are injected.
func (d *sagaDeliverer) deliverAll(t *testing.T, evs []queue.Message) {
	t.Helper()
	for _, m := range evs {
		for {
			err := d.deliver(m)
			if err == nil {
				break
			}
			require.ErrorIs(t, err, errInjected, "%s %s", m.Subject, m.Data)
		}
	}
}

// drain delivers the events not delivered yet until none is left.
func (d *sagaDeliverer) drain(t *testing.T) {
	t.Helper()
	for {
		d.mu.Lock()
		skip := maps.Clone(d.done)
		d.mu.Unlock()
		evs := d.h.sagaEvents(skip)
		if len(evs) == 0 {
			return
		}
		d.deliverAll(t, evs)
	}
}

// The ledger as read back from every database.

type sagaPurchaseRow struct {
	buyer, item, creator strata.ID
	price                strata.Money
	fee, deficit         int64
	status               payments.PurchaseStatus
	settlement           payments.Settlement
	reason               string
	credited             bool
}

type sagaReceipt struct {
	state payments.ReceiptState
	cause string
}

// eachRow runs query on every database and calls scan for each row.
func (h *harness) eachRow(query string, scan func(*sql.Rows) error) {
	h.t.Helper()
	for _, db := range h.router.DBs() {
		rows, err := db.Reader().Query(query)
		require.NoError(h.t, err)
		for rows.Next() {
			require.NoError(h.t, scan(rows))
		}
		require.NoError(h.t, rows.Err())
		rows.Close()
	}
}

func (h *harness) purchaseRows() map[strata.ID]sagaPurchaseRow {
	out := map[strata.ID]sagaPurchaseRow{}
	h.eachRow(`SELECT id, buyer_id, item_id, creator_id, price_amount, currency, fee_amount, refund_deficit, status,
		settlement, refund_reason, CASE WHEN credited_at IS NULL THEN 0 ELSE 1 END FROM payments_purchases`, func(rows *sql.Rows) error {
		var id strata.ID
		var p sagaPurchaseRow
		var credited int
		err := rows.Scan(&id, &p.buyer, &p.item, &p.creator, &p.price.Amount, &p.price.Currency, &p.fee, &p.deficit,
			&p.status, &p.settlement, &p.reason, &credited)
		p.credited = credited == 1
		out[id] = p
		return err
	})
	return out
}

func (h *harness) receiptRows() map[strata.ID]sagaReceipt {
	out := map[strata.ID]sagaReceipt{}
	h.eachRow("SELECT purchase_id, state, cause FROM payments_saga_receipts", func(rows *sql.Rows) error {
		var id strata.ID
		var r sagaReceipt
		err := rows.Scan(&id, &r.state, &r.cause)
		out[id] = r
		return err
	})
	return out
}

// transferCounts counts each purchase's transfers by type over every
// database.
func (h *harness) transferCounts() map[strata.ID]map[payments.TransferType]int {
	out := map[strata.ID]map[payments.TransferType]int{}
	h.eachRow("SELECT purchase_id, type, COUNT(*) FROM payments_transfers WHERE purchase_id <> '' GROUP BY purchase_id, type", func(rows *sql.Rows) error {
		var id strata.ID
		var typ payments.TransferType
		var n int
		err := rows.Scan(&id, &typ, &n)
		if out[id] == nil {
			out[id] = map[payments.TransferType]int{}
		}
		out[id][typ] += n
		return err
	})
	return out
}

// entitlementRows maps buyer and item to the purchase entitling them.
func (h *harness) entitlementRows() map[[2]strata.ID]strata.ID {
	out := map[[2]strata.ID]strata.ID{}
	h.eachRow("SELECT user_id, item_id, purchase_id FROM payments_entitlements", func(rows *sql.Rows) error {
		var user, item, pur strata.ID
		err := rows.Scan(&user, &item, &pur)
		out[[2]strata.ID{user, item}] = pur
		return err
	})
	return out
}

// describe tells what the ledger holds about a purchase, for failures.
func (h *harness) describe(id strata.ID) string {
	return fmt.Sprintf("purchase %+v, receipt %+v, transfers %v", h.purchaseRows()[id], h.receiptRows()[id], h.transferCounts()[id])
}

// ledgerDigest describes every account, purchase, receipt and the counts
// of transfers and outbox events, to compare the ledger before and after.
func (h *harness) ledgerDigest() string {
	var b strings.Builder
	for _, q := range []string{
		"SELECT id || ' ' || CAST(balance AS TEXT) || ' ' || CAST(version AS TEXT) FROM payments_accounts ORDER BY id",
		"SELECT id || ' ' || status || ' ' || CAST(COALESCE(credited_at, 0) AS TEXT) FROM payments_purchases ORDER BY id",
		"SELECT purchase_id || ' ' || state FROM payments_saga_receipts ORDER BY purchase_id",
		"SELECT CAST(COUNT(*) AS TEXT) FROM payments_transfers",
		"SELECT CAST(COUNT(*) AS TEXT) FROM outbox_events",
	} {
		h.eachRow(q, func(rows *sql.Rows) error {
			var s string
			err := rows.Scan(&s)
			b.WriteString(s + "\n")
			return err
		})
	}
	return b.String()
}
