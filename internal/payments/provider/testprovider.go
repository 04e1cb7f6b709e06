package provider

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"sync"
	"time"

	"github.com/stratadev/strata"
)

// The test cards (Stripe's numbers). Any expiry date in the future and any
// CVC work with them; any other valid number succeeds.
const (
	TestCardSucceeds          = "4242424242424242" // succeeded
	TestCardDeclined          = "4000000000000002" // failed, card_declined
	TestCardInsufficientFunds = "4000000000009995" // failed, insufficient_funds
	TestCardProcessingError   = "4000000000000119" // failed, processing_error
	TestCardAsync             = "4000000000000259" // pending, succeeded ConfirmAfter later
	TestCardExpired           = "4000000000000069" // failed, expired_card
	TestCardIncorrectCVC      = "4000000000000127" // failed, incorrect_cvc
)

var testCardOutcomes = map[string]outcome{
	TestCardSucceeds:          outcomeSucceeded,
	TestCardDeclined:          outcomeDeclined,
	TestCardInsufficientFunds: outcomeInsufficientFunds,
	TestCardProcessingError:   outcomeProcessingError,
	TestCardAsync:             outcomeAsync,
	TestCardExpired:           outcomeExpiredCard,
	TestCardIncorrectCVC:      outcomeIncorrectCVC,
}

// The operations passed to TestConfig.FailFunc.
const (
	// OpCharge is a charge request on its way to the network: failing it
	// charges nothing.
	OpCharge = "charge"
	// OpChargeReply is the reply to a charge the network has made:
	// failing it loses the reply, as a timeout would, and the caller must
	// retry with the same idempotency key to learn the outcome.
	OpChargeReply = "charge_reply"
	// OpRetrieve is a retrieve request.
	OpRetrieve = "retrieve"
)

// TestProvider is a card network for development and tests, with the
// test cards TestCard*. It keeps charges nowhere: a charge id carries what
// Retrieve needs, so any TestProvider answers for a charge any other made.
// It remembers idempotency keys in memory, per process, for
// TestConfig.KeyTTL and at most TestConfig.MaxKeys of them.
//
// Every call waits Latency plus up to Jitter (real time, honouring the
// context); a charge is made halfway through, so a caller whose context
// ends in the second half has charged the card without learning it, as
// with a real network.
type TestProvider struct {
	cfg   TestConfig
	clock strata.Clock
	// fpKey keys the fingerprints of remembered requests: random per
	// process, so that a fingerprint cannot be matched against guesses of
	// a card number.
	fpKey [32]byte

	mu    sync.Mutex
	keys  map[string]*keyEntry
	order []*keyEntry // by insertion, so by expiry: the eviction queue
	// closed holds the keys a Lookup found unused, until when; a Charge
	// under one is refused.
	closed map[string]time.Time
}

type keyEntry struct {
	key         string
	fingerprint [32]byte
	record      chargeRecord
	id          string
	expires     time.Time
}

var _ Provider = (*TestProvider)(nil)

// NewTestProvider returns a TestProvider configured by cfg (zero settings
// take their defaults) that tells the time by clock (strata.SystemClock
// when nil).
func NewTestProvider(cfg TestConfig, clock strata.Clock) (*TestProvider, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if clock == nil {
		clock = strata.SystemClock{}
	}
	p := &TestProvider{cfg: cfg, clock: clock, keys: map[string]*keyEntry{}}
	if _, err := rand.Read(p.fpKey[:]); err != nil {
		return nil, fmt.Errorf("test provider: %w", err)
	}
	return p, nil
}

// Charge implements Provider.
func (p *TestProvider) Charge(ctx context.Context, req ChargeRequest) (Charge, error) {
	d := p.latency()
	if err := sleep(ctx, d/2); err != nil {
		return Charge{}, err
	}
	if err := p.fail(OpCharge); err != nil {
		return Charge{}, err
	}
	now := p.clock.Now()
	if err := req.Validate(now); err != nil {
		return Charge{}, err
	}
	e, err := p.record(req, now)
	if err != nil {
		return Charge{}, err
	}
	// The card is charged; what follows can only lose the reply.
	if err := sleep(ctx, d-d/2); err != nil {
		return Charge{}, err
	}
	if err := p.fail(OpChargeReply); err != nil {
		return Charge{}, err
	}
	return p.charge(e.id, e.record), nil
}

// record returns the entry of req's idempotency key, making the charge if
// the key is new.
func (p *TestProvider) record(req ChargeRequest, now time.Time) (*keyEntry, error) {
	fp := p.fingerprint(req)
	p.mu.Lock()
	defer p.mu.Unlock()
	if until, ok := p.closed[req.IdempotencyKey]; ok {
		if now.Before(until) {
			return nil, &strata.Error{Code: strata.CodeConflict, Reason: "idempotency_key_closed",
				Message: "a lookup found nothing under this key, which is now closed"}
		}
		delete(p.closed, req.IdempotencyKey)
	}
	p.evict(now)
	if e, ok := p.keys[req.IdempotencyKey]; ok && now.Before(e.expires) {
		if !hmac.Equal(e.fingerprint[:], fp[:]) {
			return nil, &strata.Error{
				Code:    strata.CodeConflict,
				Reason:  "idempotency_key_reused",
				Message: "the idempotency key was used for a charge with other parameters",
			}
		}
		return e, nil
	}
	card := req.Card.Normalize()
	out, ok := testCardOutcomes[card.Number]
	if !ok {
		out = outcomeSucceeded
	}
	rec := chargeRecord{
		created: time.UnixMilli(now.UnixMilli()).UTC(),
		outcome: out,
		brand:   card.Brand(),
		last4:   card.Last4(),
	}
	e := &keyEntry{
		key:         req.IdempotencyKey,
		fingerprint: fp,
		record:      rec,
		id:          rec.encode(req.IdempotencyKey),
		expires:     now.Add(p.cfg.KeyTTL),
	}
	p.keys[e.key] = e
	p.order = append(p.order, e)
	p.evict(now)
	return e, nil
}

// evict forgets expired keys and the oldest keys beyond MaxKeys. p.mu is
// held.
func (p *TestProvider) evict(now time.Time) {
	for len(p.order) > 0 {
		e := p.order[0]
		if len(p.keys) <= p.cfg.MaxKeys && now.Before(e.expires) {
			return
		}
		p.order[0] = nil
		p.order = p.order[1:]
		if p.keys[e.key] == e {
			delete(p.keys, e.key)
		}
	}
}

// fingerprint identifies the parameters of req other than its key and
// CVC, so that a key reused for another charge is caught.
func (p *TestProvider) fingerprint(req ChargeRequest) [32]byte {
	h := hmac.New(sha256.New, p.fpKey[:])
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(req.Amount.Amount))
	h.Write(b[:])
	fmt.Fprintf(h, "\x00%s\x00%s\x00%d\x00%d", req.Amount.Currency, normalizeNumber(req.Card.Number), req.Card.ExpMonth, req.Card.ExpYear)
	var fp [32]byte
	h.Sum(fp[:0])
	return fp
}

// Retrieve implements Provider.
func (p *TestProvider) Retrieve(ctx context.Context, chargeID string) (Charge, error) {
	if err := sleep(ctx, p.latency()); err != nil {
		return Charge{}, err
	}
	if err := p.fail(OpRetrieve); err != nil {
		return Charge{}, err
	}
	rec, ok := parseChargeID(chargeID)
	if !ok {
		return Charge{}, &strata.Error{Code: strata.CodeNotFound, Reason: "no_such_charge", Message: "no such charge"}
	}
	return p.charge(chargeID, rec), nil
}

// Lookup finds the charge of an idempotency key among the keys this
// process remembers (the test network's memory is per process: in a split
// deployment a key charged by another process is not found).
func (p *TestProvider) Lookup(ctx context.Context, key string) (Charge, error) {
	if err := sleep(ctx, p.latency()); err != nil {
		return Charge{}, err
	}
	if err := p.fail(OpRetrieve); err != nil {
		return Charge{}, err
	}
	p.mu.Lock()
	e, ok := p.keys[key]
	now := p.clock.Now()
	if ok && !now.Before(e.expires) {
		ok = false
	}
	if !ok {
		// Nothing was charged under the key: close it, so that a charge
		// still on its way cannot succeed after the caller concluded it
		// failed.
		if p.closed == nil {
			p.closed = map[string]time.Time{}
		}
		p.closed[key] = now.Add(p.cfg.KeyTTL)
	}
	p.mu.Unlock()
	if !ok {
		return Charge{}, &strata.Error{Code: strata.CodeNotFound, Reason: "no_such_charge", Message: "no such charge"}
	}
	return p.charge(e.id, e.record), nil
}

// charge returns the charge recorded as rec in its current state.
func (p *TestProvider) charge(id string, rec chargeRecord) Charge {
	c := Charge{ID: id, Status: ChargeSucceeded, Brand: rec.brand, Last4: rec.last4, Created: rec.created}
	switch {
	case rec.outcome == outcomeAsync:
		if p.clock.Now().Before(rec.created.Add(p.cfg.ConfirmAfter)) {
			c.Status = ChargePending
		}
	case failureCodes[rec.outcome] != "":
		c.Status = ChargeFailed
		c.FailureCode = failureCodes[rec.outcome]
	}
	return c
}

// latency returns how long the next call takes.
func (p *TestProvider) latency() time.Duration {
	d := p.cfg.Latency
	if p.cfg.Jitter > 0 {
		d += mathrand.N(p.cfg.Jitter + 1)
	}
	return d
}

// errNetwork is the cause of the failures FailRate makes.
var errNetwork = errors.New("simulated network failure")

// fail returns the network failure op meets, if any.
func (p *TestProvider) fail(op string) error {
	var err error
	if p.cfg.FailFunc != nil {
		err = p.cfg.FailFunc(op)
	}
	if err == nil && p.cfg.FailRate > 0 && p.failNow(op) {
		err = errNetwork
	}
	if err == nil {
		return nil
	}
	return &strata.Error{
		Code:    strata.CodeUnavailable,
		Reason:  "provider_unavailable",
		Message: "the payment network could not be reached",
		Err:     fmt.Errorf("test provider %s: %w", op, err),
	}
}

// failNow draws whether op fails. A charge fails with probability
// FailRate, split evenly between losing the request and losing the reply.
func (p *TestProvider) failNow(op string) bool {
	rate := p.cfg.FailRate
	switch op {
	case OpCharge:
		rate /= 2
	case OpChargeReply:
		// Drawn only when the request got through: P(reply lost | request
		// made it) so that the two together fail FailRate of the charges.
		rate = rate / 2 / (1 - rate/2)
	}
	return mathrand.Float64() < rate
}

// sleep waits d unless ctx ends first.
func sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
