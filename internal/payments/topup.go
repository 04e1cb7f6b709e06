package payments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/idempotency"
	"github.com/stratadev/strata/internal/payments/provider"
	"github.com/stratadev/strata/internal/queue"
)

// IntentStatus is where a payment intent stands; the states follow
// Stripe's PaymentIntent.
type IntentStatus string

// Intent statuses.
const (
	IntentProcessing            IntentStatus = "processing"
	IntentSucceeded             IntentStatus = "succeeded"
	IntentRequiresPaymentMethod IntentStatus = "requires_payment_method"
	IntentCanceled              IntentStatus = "canceled"
)

// Intent is a top-up: money a user pays in by card, credited to their
// wallet exactly once when the charge succeeds.
type Intent struct {
	ID          strata.ID
	UserID      strata.ID
	Amount      strata.Money
	Status      IntentStatus
	FailureCode string // of the last attempt, when it failed
	// Attempt numbers the charges tried; the provider's idempotency key
	// is "<id>/<attempt>", so retrying a lost reply never charges twice.
	Attempt    int
	ChargeID   string
	CardBrand  string
	CardLast4  string
	TransferID strata.ID // the top-up transfer, once succeeded
	// IdempotencyKey is the key the intent was created under ("" for
	// none): one intent per user and key.
	IdempotencyKey string
	CreatedAt      time.Time
	UpdatedAt      time.Time
}

// chargeKey is the provider idempotency key of the intent's attempt.
func (in *Intent) chargeKey() string { return string(in.ID) + "/" + strconv.Itoa(in.Attempt) }

// DefaultTopUpMax is the largest top-up by default, in minor units.
const DefaultTopUpMax = 100_000_000

// Subjects of top-up events.
const (
	// SubjectIntentSettle asks the worker to settle an intent whose charge
	// is pending or whose outcome the request did not learn (IntentRef).
	SubjectIntentSettle = "payments.payment_intent.settle"
	// SubjectIntentSucceeded and SubjectIntentFailed report outcomes
	// (IntentEvent).
	SubjectIntentSucceeded = "payments.payment_intent.succeeded"
	SubjectIntentFailed    = "payments.payment_intent.payment_failed"
	SubjectIntentCanceled  = "payments.payment_intent.canceled"
)

// IntentRef is the payload of payments.payment_intent.settle.
type IntentRef struct {
	IntentID strata.ID `json:"intent_id"`
	Attempt  int       `json:"attempt"`
}

// IntentEvent is the payload of the payment_intent outcome events.
type IntentEvent struct {
	IntentID    strata.ID    `json:"intent_id"`
	UserID      strata.ID    `json:"user_id"`
	Amount      strata.Money `json:"amount"`
	Status      IntentStatus `json:"status"`
	FailureCode string       `json:"failure_code,omitempty"`
}

var errIntentNotFound = &strata.Error{Code: strata.CodeNotFound, Reason: "intent_not_found", Message: "no such top-up"}

// TopUp starts a top-up of the caller's wallet: it records a processing
// intent together with a settle event (so the worker follows up whatever
// happens to this request), charges the card, and settles the intent with
// the outcome: succeeded (the wallet is credited in the same transaction),
// requires_payment_method with the failure code, or still processing for
// a charge confirmed later. A provider that does not answer leaves the
// intent processing; the worker learns the outcome by the charge's
// idempotency key. Errors: unauthenticated; invalid naming amount.amount,
// amount.currency or card.*; unavailable.
func (s *Service) TopUp(ctx context.Context, amount strata.Money, card provider.Card) (*Intent, error) {
	p := strata.PrincipalFrom(ctx)
	if p == nil {
		return nil, errNoPrincipal
	}
	if err := s.checkTopUp(amount, card); err != nil {
		return nil, err
	}
	shard, err := shardOf(p.UserID)
	if err != nil {
		return nil, errNoPrincipal
	}
	now := s.clock.Now().UTC()
	card = card.Normalize()
	key := idempotency.KeyFrom(ctx)
	in := &Intent{ID: strata.NewID("pi", shard, now), UserID: p.UserID, Amount: amount, Status: IntentProcessing,
		Attempt: 1, CardBrand: card.Brand(), CardLast4: card.Last4(), IdempotencyKey: key, CreatedAt: now, UpdatedAt: now}
	var existing *Intent
	err = s.store.Tx(ctx, shard, func(tx Tx) error {
		if key != "" {
			// The key's lock was taken over (a slow or crashed first
			// request): the intent it made is the answer, not a new charge.
			prior, err := tx.IntentByKey(ctx, p.UserID, key)
			if err == nil {
				if prior.Amount != amount {
					return &strata.Error{Code: strata.CodeUnprocessable, Reason: "idempotency_key_reused",
						Message: "this Idempotency-Key was used for another top-up"}
				}
				existing = prior
				return nil
			}
			if strata.ErrorCode(err) != strata.CodeNotFound {
				return err
			}
		}
		if err := tx.InsertIntent(ctx, in); err != nil {
			return err
		}
		return settleLater(ctx, tx, in)
	})
	if err != nil {
		return nil, err
	}
	if existing != nil {
		return existing, nil
	}
	s.notify()
	return s.charge(ctx, in, card)
}

// ChargeTimeout bounds the request's wait for the card network; past it
// the intent stays processing and the settler finds out. SettleGrace
// exceeds it, so the settler never gives up on a charge still in flight.
const ChargeTimeout = 10 * time.Second

// Retry tries another card on an intent that requires a payment method (a
// new attempt, with its own idempotency key). Errors: those of TopUp,
// not_found "intent_not_found", conflict "intent_not_retryable".
func (s *Service) Retry(ctx context.Context, id strata.ID, card provider.Card) (*Intent, error) {
	p := strata.PrincipalFrom(ctx)
	if p == nil {
		return nil, errNoPrincipal
	}
	shard, ok := id.Shard()
	if !ok {
		return nil, errIntentNotFound
	}
	now := s.clock.Now().UTC()
	card = card.Normalize()
	var in *Intent
	err := s.store.Tx(ctx, shard, func(tx Tx) error {
		var err error
		if in, err = s.ownIntent(ctx, tx, id); err != nil {
			return err
		}
		if in.Status != IntentRequiresPaymentMethod {
			return &strata.Error{Code: strata.CodeConflict, Reason: "intent_not_retryable",
				Message: fmt.Sprintf("a %s top-up cannot be paid again", in.Status)}
		}
		if err := s.checkTopUp(in.Amount, card); err != nil {
			return err
		}
		in.Status, in.FailureCode, in.ChargeID, in.UpdatedAt = IntentProcessing, "", "", now
		in.Attempt++
		in.CardBrand, in.CardLast4 = card.Brand(), card.Last4()
		if err := tx.UpdateIntent(ctx, in); err != nil {
			return err
		}
		return settleLater(ctx, tx, in)
	})
	if err != nil {
		return nil, err
	}
	s.notify()
	return s.charge(ctx, in, card)
}

// Cancel cancels an intent that requires a payment method. Errors:
// not_found, conflict "intent_not_cancelable".
func (s *Service) Cancel(ctx context.Context, id strata.ID) (*Intent, error) {
	shard, ok := id.Shard()
	if !ok {
		return nil, errIntentNotFound
	}
	var in *Intent
	err := s.store.Tx(ctx, shard, func(tx Tx) error {
		var err error
		if in, err = s.ownIntent(ctx, tx, id); err != nil {
			return err
		}
		if in.Status != IntentRequiresPaymentMethod {
			return &strata.Error{Code: strata.CodeConflict, Reason: "intent_not_cancelable",
				Message: fmt.Sprintf("a %s top-up cannot be canceled", in.Status)}
		}
		in.Status, in.UpdatedAt = IntentCanceled, s.clock.Now().UTC()
		if err := tx.UpdateIntent(ctx, in); err != nil {
			return err
		}
		return outboxJSON(ctx, tx, SubjectIntentCanceled, IntentEvent{IntentID: in.ID, UserID: in.UserID, Amount: in.Amount,
			Status: in.Status, FailureCode: in.FailureCode})
	})
	if err != nil {
		return nil, err
	}
	s.notify()
	return in, nil
}

// IntentOf returns a top-up to its owner or an admin (not_found to anyone
// else, so ids cannot be probed).
func (s *Service) IntentOf(ctx context.Context, id strata.ID) (*Intent, error) {
	return ownedIntent(ctx, id, s.store.Intent) // an id of no shard reads as not_found
}

// ownIntent reads an intent, locked, for its owner or an admin.
func (s *Service) ownIntent(ctx context.Context, tx Tx, id strata.ID) (*Intent, error) {
	return ownedIntent(ctx, id, tx.IntentForUpdate)
}

// ownedIntent reads an intent with read and returns it to its owner or an
// admin; to anyone else it does not exist.
func ownedIntent(ctx context.Context, id strata.ID, read func(context.Context, strata.ID) (*Intent, error)) (*Intent, error) {
	p := strata.PrincipalFrom(ctx)
	if p == nil {
		return nil, errNoPrincipal
	}
	in, err := read(ctx, id)
	if strata.ErrorCode(err) == strata.CodeNotFound || (err == nil && in.UserID != p.UserID && !p.HasRole(strata.RoleAdmin)) {
		return nil, errIntentNotFound
	}
	return in, err
}

func (s *Service) checkTopUp(amount strata.Money, card provider.Card) error {
	var bad []string
	if !strata.ValidCurrency(amount.Currency) {
		bad = append(bad, "amount.currency", "must be a supported ISO 4217 currency code")
	}
	max := s.cfg.TopUpMax
	if max <= 0 {
		max = DefaultTopUpMax
	}
	if amount.Amount <= 0 || amount.Amount > max {
		bad = append(bad, "amount.amount", fmt.Sprintf("must be between 1 and %d minor units", max))
	}
	var fields []string
	if err := card.Validate(s.clock.Now()); err != nil {
		var se *strata.Error
		if !errors.As(err, &se) {
			return err
		}
		for _, f := range se.Fields {
			fields = append(fields, f.Field, f.Message)
		}
	}
	if bad = append(bad, fields...); len(bad) > 0 {
		return strata.Invalid(bad...)
	}
	return nil
}

// charge asks the provider to charge the card for the intent's attempt
// and settles the outcome. Without an answer the intent stays processing:
// the settle event written with it makes the worker find out.
func (s *Service) charge(ctx context.Context, in *Intent, card provider.Card) (*Intent, error) {
	cctx, cancel := context.WithTimeout(ctx, ChargeTimeout)
	defer cancel()
	c, err := s.provider.Charge(cctx, provider.ChargeRequest{IdempotencyKey: in.chargeKey(), Amount: in.Amount, Card: card})
	if err != nil {
		s.log.WarnContext(ctx, "charge unanswered; the worker will settle the intent", "intent_id", in.ID, "error", err)
		return s.current(ctx, in), nil
	}
	settled, err := s.settle(context.WithoutCancel(ctx), in.ID, in.Attempt, c)
	if err != nil {
		// The intent and its settle event are committed and the card may
		// be charged: the answer is "processing", never an error a client
		// would retry into a second charge. The worker settles it.
		s.log.WarnContext(ctx, "settling failed; the worker will settle the intent", "intent_id", in.ID, "error", err)
		return s.current(ctx, in), nil
	}
	return settled, nil
}

// current rereads an intent the request could not settle (the settler
// may have meanwhile), falling back to what the request knows.
func (s *Service) current(ctx context.Context, in *Intent) *Intent {
	if now, err := s.store.Intent(context.WithoutCancel(ctx), in.ID); err == nil {
		return now
	}
	return in
}

// settle applies a charge's outcome to the intent's attempt, once: an
// intent no longer processing that attempt is returned as it is. Success
// credits the wallet in the same transaction; the database refuses a
// second credit of the intent whatever happens.
func (s *Service) settle(ctx context.Context, id strata.ID, attempt int, c provider.Charge) (*Intent, error) {
	shard, ok := id.Shard()
	if !ok {
		return nil, errIntentNotFound
	}
	var in *Intent
	wrote := false
	err := s.store.Tx(ctx, shard, func(tx Tx) error {
		var err error
		if in, err = tx.IntentForUpdate(ctx, id); err != nil {
			return err
		}
		if in.Status != IntentProcessing || in.Attempt != attempt {
			if c.Status == provider.ChargeSucceeded && c.ID != in.ChargeID {
				// Money was taken that this intent will not credit: an
				// operator must refund it at the provider.
				s.log.ErrorContext(ctx, "charge succeeded for a settled attempt: refund it at the provider",
					"intent_id", in.ID, "attempt", attempt, "charge_id", c.ID, "intent_status", in.Status)
			}
			return nil
		}
		now := s.clock.Now().UTC()
		in.ChargeID, in.UpdatedAt = c.ID, now
		subject := ""
		switch c.Status {
		case provider.ChargeSucceeded:
			t, err := creditTopUp(ctx, tx, in.UserID, in.ID, in.Amount, now)
			if err != nil {
				return err
			}
			in.Status, in.TransferID, subject = IntentSucceeded, t.ID, SubjectIntentSucceeded
		case provider.ChargeFailed:
			in.Status, in.FailureCode, subject = IntentRequiresPaymentMethod, c.FailureCode, SubjectIntentFailed
		}
		if err := tx.UpdateIntent(ctx, in); err != nil {
			return err
		}
		if subject == "" {
			return nil
		}
		wrote = true
		return outboxJSON(ctx, tx, subject, IntentEvent{IntentID: in.ID, UserID: in.UserID, Amount: in.Amount,
			Status: in.Status, FailureCode: in.FailureCode})
	})
	if err != nil {
		return nil, err
	}
	if wrote {
		s.notify()
	}
	return in, nil
}

// settleLater writes the settle event of the intent's attempt.
func settleLater(ctx context.Context, tx Tx, in *Intent) error {
	return outboxJSON(ctx, tx, SubjectIntentSettle, IntentRef{IntentID: in.ID, Attempt: in.Attempt})
}

func outboxJSON(ctx context.Context, tx Tx, subject string, v any) error {
	payload, err := json.Marshal(v)
	if err != nil {
		return strata.Internal(err)
	}
	return tx.Outbox(ctx, queue.Event{Subject: subject, Payload: payload})
}

// SettleGrace is how long the settler leaves an intent whose charge it
// cannot find to the request that is making it: well past ChargeTimeout.
// When it concludes that nothing was charged, provider.Lookup has closed
// the key, so no late charge under it can succeed afterwards.
const SettleGrace = 3 * ChargeTimeout

// errStillPending makes the queue redeliver a settle event later.
var errStillPending = errors.New("charge still pending")

// IntentSettler is the worker's consumer of payments.payment_intent.settle:
// it settles intents whose outcome the request did not learn — a pending
// charge (by the charge id, until the network confirms it), or an attempt
// whose reply was lost or whose instance died (by the idempotency key). A
// charge that was never made, once SettleGrace has passed, fails the
// attempt with processing_error. Settling is idempotent: an intent already
// settled is left alone.
type IntentSettler struct {
	Service *Service
	Logger  *slog.Logger
}

// SettleMaxDeliver bounds how long the settler keeps trying (with back-off
// up to a minute, about an hour in all), before the event is dead-lettered
// and the intent left for an operator.
const SettleMaxDeliver = 64

// ConsumerConfig is the durable consumer the worker runs.
func (IntentSettler) ConsumerConfig() queue.ConsumerConfig {
	return queue.ConsumerConfig{Stream: Stream, Durable: "payments-settler", FilterSubjects: []string{SubjectIntentSettle},
		MaxDeliver: SettleMaxDeliver, BackoffBase: time.Second, BackoffMax: time.Minute}
}

// Handle settles one intent.
func (st IntentSettler) Handle(ctx context.Context, m queue.Message) error {
	var ref IntentRef
	if err := json.Unmarshal(m.Data, &ref); err != nil {
		return queue.Permanent(fmt.Errorf("decode settle event %s: %w", m.ID, err))
	}
	s := st.Service
	in, err := s.store.Intent(ctx, ref.IntentID)
	if strata.ErrorCode(err) == strata.CodeNotFound {
		return queue.Permanent(fmt.Errorf("settle event %s: intent %s does not exist", m.ID, ref.IntentID))
	}
	if err != nil {
		return err
	}
	if in.Status != IntentProcessing || in.Attempt != ref.Attempt {
		return nil // settled already
	}
	var c provider.Charge
	if in.ChargeID != "" {
		c, err = s.provider.Retrieve(ctx, in.ChargeID)
	} else {
		// The request may still be charging: a lookup now would close the
		// key under it and fail a good card. Only once SettleGrace has
		// passed is the attempt presumed lost (a crash, a lost reply).
		if s.clock.Now().Sub(in.UpdatedAt) < SettleGrace {
			return errStillPending
		}
		c, err = s.provider.Lookup(ctx, in.chargeKey())
		if strata.ErrorReason(err) == "no_such_charge" {
			// Never charged: the attempt failed before reaching the network.
			c, err = provider.Charge{Status: provider.ChargeFailed, FailureCode: provider.FailureProcessingError}, nil
		}
	}
	if err != nil {
		return err
	}
	if c.Status == provider.ChargePending {
		if _, err := s.settle(ctx, in.ID, in.Attempt, c); err != nil { // record the charge id
			return err
		}
		return errStillPending
	}
	_, err = s.settle(ctx, in.ID, in.Attempt, c)
	return err
}
