package payments_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/idempotency"
	"github.com/stratadev/strata/internal/payments"
	"github.com/stratadev/strata/internal/payments/paymentssql"
	"github.com/stratadev/strata/internal/payments/provider"
	"github.com/stratadev/strata/internal/queue"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func card(number string) map[string]any {
	return map[string]any{"number": number, "exp_month": 12, "exp_year": 2099, "cvc": "123"}
}

func topUpBody(amount int64, currency, number string) map[string]any {
	return map[string]any{"amount": map[string]any{"amount": amount, "currency": currency}, "card": card(number)}
}

// settleEvents returns the settle events of intent in the outbox, as the
// queue would deliver them.
func (h *harness) settleEvents(intent string) []queue.Message {
	h.t.Helper()
	var out []queue.Message
	for _, db := range h.router.DBs() {
		rows, err := db.Reader().Query("SELECT id, payload FROM outbox_events WHERE subject = $1 ORDER BY id", payments.SubjectIntentSettle)
		require.NoError(h.t, err)
		for rows.Next() {
			var id, payload string
			require.NoError(h.t, rows.Scan(&id, &payload))
			if strings.Contains(payload, intent) {
				out = append(out, queue.Message{Subject: payments.SubjectIntentSettle, ID: id, Data: []byte(payload), NumDelivered: 1})
			}
		}
		require.NoError(h.t, rows.Err())
		rows.Close()
	}
	return out
}

func (h *harness) intent(u user, id string) map[string]any {
	h.t.Helper()
	r := h.do(u, "GET", "/v1/topups/"+id, nil)
	require.Equal(h.t, http.StatusOK, r.status, "body: %s", r.body)
	return r.json(h.t)
}

func TestTopUpOutcomes(t *testing.T) {
	h := newHarness(t, 1)
	tests := []struct {
		card    string
		status  string
		failure string
		credit  int64
	}{
		{provider.TestCardSucceeds, "succeeded", "", 5000},
		{"4000 0566 5566 5556", "succeeded", "", 5000}, // any other valid card, spaced
		{provider.TestCardDeclined, "requires_payment_method", "card_declined", 0},
		{provider.TestCardInsufficientFunds, "requires_payment_method", "insufficient_funds", 0},
		{provider.TestCardProcessingError, "requires_payment_method", "processing_error", 0},
		{provider.TestCardAsync, "processing", "", 0},
	}
	for i, tc := range tests {
		t.Run(tc.card, func(t *testing.T) {
			u := h.newUser(strata.RoleBuyer, i)
			r := h.do(u, "POST", "/v1/topups", topUpBody(5000, "USD", tc.card))
			require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
			in := r.json(t)
			require.Equal(t, tc.status, in["status"])
			failure, _ := in["failure_code"].(string)
			require.Equal(t, tc.failure, failure)
			digits := strings.ReplaceAll(tc.card, " ", "")
			require.Equal(t, map[string]any{"brand": "visa", "last4": digits[len(digits)-4:]}, in["card"])
			require.NotContains(t, string(r.body), digits, "the card number never comes back")
			require.Equal(t, tc.credit, h.wallet(u, "USD"))
			require.Equal(t, in, h.intent(u, in["id"].(string)))
		})
	}
	h.checkInvariants()
}

func TestTopUpAsyncConfirmationThroughTheQueue(t *testing.T) {
	h := newHarness(t, 1)
	ctx := context.Background()
	u := h.newUser(strata.RoleBuyer, 4)
	r := h.do(u, "POST", "/v1/topups", topUpBody(700, "EUR", provider.TestCardAsync))
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	id := r.json(t)["id"].(string)
	events := h.settleEvents(id)
	require.Len(t, events, 1, "the settle event was written with the intent")

	// Before the network confirms, the settler tries again later.
	err := h.settler.Handle(ctx, events[0])
	require.Error(t, err)
	require.False(t, queue.IsPermanent(err))
	require.Equal(t, "processing", h.intent(u, id)["status"])
	require.Zero(t, h.wallet(u, "EUR"))

	h.clock.Advance(provider.DefaultConfirmAfter)
	require.NoError(t, h.settler.Handle(ctx, events[0]))
	in := h.intent(u, id)
	require.Equal(t, "succeeded", in["status"])
	require.NotEmpty(t, in["transfer_id"])
	require.Equal(t, int64(700), h.wallet(u, "EUR"))

	// The confirmation delivered again (a duplicate, or a worker that died
	// after crediting and before acking): credited once.
	require.NoError(t, h.settler.Handle(ctx, events[0]))
	require.NoError(t, h.settler.Handle(ctx, events[0]))
	require.Equal(t, int64(700), h.wallet(u, "EUR"))
	h.checkInvariants()
}

func TestTopUpSurvivesALostReply(t *testing.T) {
	h := newHarness(t, 1)
	ctx := context.Background()
	u := h.newUser(strata.RoleBuyer, 6)
	lost := func(op string) error {
		if op == provider.OpChargeReply {
			return errors.New("connection reset")
		}
		return nil
	}
	h.fail.Store(&lost)
	r := h.do(u, "POST", "/v1/topups", topUpBody(900, "USD", provider.TestCardSucceeds))
	h.fail.Store(nil)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	id := r.json(t)["id"].(string)
	require.Equal(t, "processing", r.json(t)["status"], "the request did not learn the outcome")
	require.Zero(t, h.wallet(u, "USD"))

	// The card was charged; the settler finds the charge by its key — once
	// SettleGrace has passed, not to race a request still charging.
	events := h.settleEvents(id)
	require.ErrorContains(t, h.settler.Handle(ctx, events[0]), "charge still pending")
	h.clock.Advance(payments.SettleGrace)
	require.NoError(t, h.settler.Handle(ctx, events[0]))
	require.Equal(t, "succeeded", h.intent(u, id)["status"])
	require.Equal(t, int64(900), h.wallet(u, "USD"))
	require.NoError(t, h.settler.Handle(ctx, events[0]))
	require.Equal(t, int64(900), h.wallet(u, "USD"))
	h.checkInvariants()
}

func TestTopUpNeverCharged(t *testing.T) {
	h := newHarness(t, 1)
	ctx := context.Background()
	u := h.newUser(strata.RoleBuyer, 7)
	down := func(op string) error {
		if op == provider.OpCharge {
			return errors.New("network unreachable")
		}
		return nil
	}
	h.fail.Store(&down)
	r := h.do(u, "POST", "/v1/topups", topUpBody(900, "USD", provider.TestCardSucceeds))
	h.fail.Store(nil)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	id := r.json(t)["id"].(string)
	events := h.settleEvents(id)
	// Within the grace period the request may still be charging.
	require.Error(t, h.settler.Handle(ctx, events[0]))
	require.Equal(t, "processing", h.intent(u, id)["status"])
	h.clock.Advance(payments.SettleGrace)
	require.NoError(t, h.settler.Handle(ctx, events[0]))
	in := h.intent(u, id)
	require.Equal(t, "requires_payment_method", in["status"])
	require.Equal(t, "processing_error", in["failure_code"])
	require.Zero(t, h.wallet(u, "USD"))

	// Another card, a new attempt.
	r = h.do(u, "POST", "/v1/topups/"+id+"/confirm", map[string]any{"card": card(provider.TestCardSucceeds)})
	require.Equal(t, http.StatusOK, r.status, "body: %s", r.body)
	require.Equal(t, "succeeded", r.json(t)["status"])
	require.Equal(t, float64(2), r.json(t)["attempt"])
	require.Equal(t, int64(900), h.wallet(u, "USD"))
	// The first attempt's settle event arriving late changes nothing.
	require.NoError(t, h.settler.Handle(ctx, events[0]))
	require.Equal(t, int64(900), h.wallet(u, "USD"))
	h.checkInvariants()
}

func TestTopUpRetryAndCancel(t *testing.T) {
	h := newHarness(t, 1)
	u := h.newUser(strata.RoleBuyer, 8)
	other := h.newUser(strata.RoleBuyer, 9)
	admin := h.newUser(strata.RoleAdmin, 10)
	r := h.do(u, "POST", "/v1/topups", topUpBody(300, "GBP", provider.TestCardDeclined))
	declined := r.json(t)["id"].(string)
	r = h.do(u, "POST", "/v1/topups", topUpBody(300, "GBP", provider.TestCardSucceeds))
	succeeded := r.json(t)["id"].(string)

	tests := []struct {
		name   string
		caller user
		method string
		path   string
		body   any
		status int
		code   string
	}{
		{"someone else's intent", other, "GET", "/v1/topups/" + declined, nil, http.StatusNotFound, "intent_not_found"},
		{"an admin reads it", admin, "GET", "/v1/topups/" + declined, nil, http.StatusOK, ""},
		{"unknown intent", u, "GET", "/v1/topups/pi_0000000000000000000000000X", nil, http.StatusNotFound, "intent_not_found"},
		{"retry a succeeded intent", u, "POST", "/v1/topups/" + succeeded + "/confirm", map[string]any{"card": card(provider.TestCardSucceeds)}, http.StatusConflict, "intent_not_retryable"},
		{"retry without a card", u, "POST", "/v1/topups/" + declined + "/confirm", map[string]any{}, http.StatusBadRequest, "validation_failed"},
		{"retry someone else's", other, "POST", "/v1/topups/" + declined + "/confirm", map[string]any{"card": card(provider.TestCardSucceeds)}, http.StatusNotFound, "intent_not_found"},
		{"cancel a succeeded intent", u, "POST", "/v1/topups/" + succeeded + "/cancel", nil, http.StatusConflict, "intent_not_cancelable"},
		{"cancel someone else's", other, "POST", "/v1/topups/" + declined + "/cancel", nil, http.StatusNotFound, "intent_not_found"},
		{"cancel", u, "POST", "/v1/topups/" + declined + "/cancel", nil, http.StatusOK, ""},
		{"retry a canceled intent", u, "POST", "/v1/topups/" + declined + "/confirm", map[string]any{"card": card(provider.TestCardSucceeds)}, http.StatusConflict, "intent_not_retryable"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(tc.caller, tc.method, tc.path, tc.body)
			require.Equal(t, tc.status, r.status, "body: %s", r.body)
			if tc.code != "" {
				require.Equal(t, tc.code, r.code(t))
			}
		})
	}
	require.Equal(t, "canceled", h.intent(u, declined)["status"])
	require.Equal(t, int64(300), h.wallet(u, "GBP"))
	h.checkInvariants()
}

func TestTopUpBadInput(t *testing.T) {
	h := newHarness(t, 1)
	u := h.newUser(strata.RoleBuyer, 2)
	raw := func(s string) json.RawMessage { return json.RawMessage(s) }
	tests := []struct {
		name   string
		body   any
		code   string
		fields []string
	}{
		{"negative amount", topUpBody(-5, "USD", provider.TestCardSucceeds), "validation_failed", []string{"amount.amount"}},
		{"zero amount", topUpBody(0, "USD", provider.TestCardSucceeds), "validation_failed", []string{"amount.amount"}},
		{"over the maximum", topUpBody(1_000_001, "USD", provider.TestCardSucceeds), "validation_failed", []string{"amount.amount"}},
		{"beyond int64", raw(`{"amount":{"amount":99999999999999999999,"currency":"USD"},"card":{"number":"4242424242424242","exp_month":12,"exp_year":2099,"cvc":"123"}}`), "invalid_type", nil},
		{"not an integer", raw(`{"amount":{"amount":10.5,"currency":"USD"},"card":{"number":"4242424242424242","exp_month":12,"exp_year":2099,"cvc":"123"}}`), "invalid_type", nil},
		{"unknown currency", topUpBody(100, "XXX", provider.TestCardSucceeds), "validation_failed", []string{"amount.currency"}},
		{"lowercase currency", topUpBody(100, "usd", provider.TestCardSucceeds), "validation_failed", []string{"amount.currency"}},
		{"no card", map[string]any{"amount": map[string]any{"amount": 100, "currency": "USD"}}, "validation_failed", []string{"card"}},
		{"no amount", map[string]any{"card": card(provider.TestCardSucceeds)}, "validation_failed", []string{"amount"}},
		{"Luhn fails", topUpBody(100, "USD", "4242424242424241"), "validation_failed", []string{"card.number"}},
		{"letters in the number", topUpBody(100, "USD", "4242abcd42424242"), "validation_failed", []string{"card.number"}},
		{"expired", map[string]any{"amount": map[string]any{"amount": 100, "currency": "USD"}, "card": map[string]any{"number": provider.TestCardSucceeds, "exp_month": 1, "exp_year": 2020, "cvc": "123"}}, "validation_failed", []string{"card.exp_year"}},
		{"bad month and cvc", map[string]any{"amount": map[string]any{"amount": 100, "currency": "USD"}, "card": map[string]any{"number": provider.TestCardSucceeds, "exp_month": 13, "exp_year": 2099, "cvc": "12"}}, "validation_failed", []string{"card.exp_month", "card.cvc"}},
		{"unknown field", map[string]any{"amount": map[string]any{"amount": 100, "currency": "USD"}, "card": card(provider.TestCardSucceeds), "wallet": "x"}, "unknown_field", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := h.do(u, "POST", "/v1/topups", tc.body)
			require.Equal(t, http.StatusBadRequest, r.status, "body: %s", r.body)
			require.Equal(t, tc.code, r.code(t))
			require.NotContains(t, string(r.body), "4242424242424241")
			for _, f := range tc.fields {
				require.Contains(t, string(r.body), `"`+f+`"`)
			}
		})
	}
	require.Zero(t, h.wallet(u, "USD"))
	var n int
	require.NoError(t, h.router.Shard(2).Reader().QueryRow("SELECT COUNT(*) FROM payments_intents").Scan(&n))
	require.Zero(t, n, "refused requests record nothing")
}

// A charge still on its way when the settler gives up on it is refused by
// the network (the settler's lookup closed its key): the card is never
// charged for an intent the ledger failed.
func TestSettlerGivingUpClosesTheCharge(t *testing.T) {
	h := newHarness(t, 1)
	ctx := context.Background()
	u := h.newUser(strata.RoleBuyer, 3)
	arrived, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	slow := func(op string) error {
		if op == provider.OpCharge {
			once.Do(func() { close(arrived) })
			<-release
		}
		return nil
	}
	h.fail.Store(&slow)
	done := make(chan response)
	go func() { done <- h.do(u, "POST", "/v1/topups", topUpBody(900, "USD", provider.TestCardSucceeds)) }()
	<-arrived
	// The settler, past its grace, finds no charge and fails the attempt.
	var id string
	require.Eventually(t, func() bool {
		var n int
		_ = h.router.Shard(3).Reader().QueryRow("SELECT COUNT(*) FROM payments_intents").Scan(&n)
		if n == 1 {
			_ = h.router.Shard(3).Reader().QueryRow("SELECT id FROM payments_intents").Scan(&id)
		}
		return n == 1
	}, 5*time.Second, 5*time.Millisecond)
	h.clock.Advance(payments.SettleGrace)
	events := h.settleEvents(id)
	require.NoError(t, h.settler.Handle(ctx, events[0]))
	require.Equal(t, "requires_payment_method", h.intent(u, id)["status"])
	// Now the charge arrives at the network: refused.
	close(release)
	r := <-done
	h.fail.Store(nil)
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	require.Equal(t, "requires_payment_method", r.json(t)["status"], "the answer is what the ledger holds")
	require.Zero(t, h.wallet(u, "USD"))
	require.NoError(t, h.settler.Handle(ctx, events[0]))
	require.Zero(t, h.wallet(u, "USD"))
	h.checkInvariants()
}

// One Idempotency-Key makes one intent and one charge, even when the
// key's lock was taken over and the request runs a second time.
func TestTopUpOncePerKey(t *testing.T) {
	h := newHarness(t, 1)
	u := h.newUser(strata.RoleBuyer, 4)
	ctx := idempotency.WithKey(u.ctx(), "key-1")
	c := provider.Card{Number: provider.TestCardSucceeds, ExpMonth: 12, ExpYear: 2099, CVC: "123"}
	first, err := h.svc.TopUp(ctx, strata.Money{Amount: 900, Currency: "USD"}, c)
	require.NoError(t, err)
	again, err := h.svc.TopUp(ctx, strata.Money{Amount: 900, Currency: "USD"}, c)
	require.NoError(t, err)
	require.Equal(t, first.ID, again.ID)
	require.Equal(t, int64(900), h.wallet(u, "USD"))
	_, err = h.svc.TopUp(ctx, strata.Money{Amount: 901, Currency: "USD"}, c)
	require.Equal(t, "idempotency_key_reused", strata.ErrorReason(err))
	other := h.newUser(strata.RoleBuyer, 5)
	_, err = h.svc.TopUp(idempotency.WithKey(other.ctx(), "key-1"), strata.Money{Amount: 900, Currency: "USD"}, c)
	require.NoError(t, err, "keys are per user")
	h.checkInvariants()
}

// An intent still processing long after the settler gave up is reported
// by the reconciler, for an operator.
func TestReconcilerReportsStuckIntents(t *testing.T) {
	h := newHarness(t, 1)
	ctx := context.Background()
	u := h.newUser(strata.RoleBuyer, 2)
	r := h.do(u, "POST", "/v1/topups", topUpBody(700, "USD", provider.TestCardAsync))
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	id := r.json(t)["id"].(string)
	report, err := payments.Verify(ctx, paymentssql.New(h.router, h.clock))
	require.NoError(t, err)
	require.True(t, report.Clean(), "a young processing intent is fine: %+v", report.Violations)

	h.clock.Advance(payments.IntentSettleBound + time.Minute)
	report, err = payments.Verify(ctx, paymentssql.New(h.router, h.clock))
	require.NoError(t, err)
	require.Len(t, report.Violations, 1)
	v := report.Violations[0]
	require.Equal(t, payments.InvariantIntentSettled, v.Invariant)
	require.Contains(t, v.IDs, strata.ID(id))
}

// The settle event reaches the worker at once, often before the request
// has charged the card. The settler must leave the charge to the request
// until SettleGrace has passed: looking the key up would close it and fail
// a good card. (bench/payments.sh found this under load.)
func TestSettlerLeavesAFreshAttemptToItsRequest(t *testing.T) {
	h := newHarness(t, 1)
	u := h.newUser(strata.RoleBuyer, 2)
	ran := false
	early := func(op string) error {
		if op != provider.OpCharge || ran {
			return nil
		}
		ran = true
		for _, m := range h.settleEvents("pi_") {
			assert.ErrorContains(t, h.settler.Handle(context.Background(), m), "charge still pending")
		}
		return nil
	}
	h.fail.Store(&early)
	defer h.fail.Store(nil)
	r := h.do(u, "POST", "/v1/topups", topUpBody(500, "USD", provider.TestCardSucceeds))
	require.Equal(t, http.StatusCreated, r.status, "body: %s", r.body)
	require.True(t, ran, "the settler ran while the charge was on its way")
	require.Equal(t, "succeeded", r.json(t)["status"], "body: %s", r.body)
	require.Equal(t, int64(500), h.wallet(u, "USD"))
}
