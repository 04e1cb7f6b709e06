package provider

import (
	"context"
	"time"

	"github.com/stratadev/strata"
)

// Provider is a card network: it charges cards and reports what became of
// a charge. Implementations are safe for concurrent use.
type Provider interface {
	// Charge charges req.Amount to req.Card, at most once per
	// req.IdempotencyKey: a second call with the same key returns the same
	// charge in its current state. A declined card is not an error but a
	// Charge with Status ChargeFailed and a FailureCode; ChargePending
	// means the network answers later (Retrieve until it is final).
	//
	// Errors: invalid (the request or card is malformed; nothing was
	// charged, do not retry as is), conflict with reason
	// "idempotency_key_reused" (the key was used with other parameters),
	// unavailable (the network could not be reached or its reply was
	// lost), or the context's error. After unavailable or a context error
	// the card may or may not have been charged: retry with the same key.
	Charge(ctx context.Context, req ChargeRequest) (Charge, error)

	// Retrieve returns the current state of the charge with the given id.
	//
	// Errors: not_found (no such charge, including malformed ids),
	// unavailable (retry), or the context's error.
	Retrieve(ctx context.Context, chargeID string) (Charge, error)
	// Lookup returns the charge made under an idempotency key, in its
	// current state: how a caller that lost a Charge's reply (a timeout, a
	// crash) learns whether the card was charged. Errors: not_found
	// "no_such_charge" when no charge was made under the key (so none
	// will be: the caller must not retry the key without the card),
	// unavailable.
	Lookup(ctx context.Context, idempotencyKey string) (Charge, error)
}

// ChargeRequest asks for one charge.
type ChargeRequest struct {
	// IdempotencyKey names the charge attempt; retries of the attempt
	// reuse it. At most MaxIdempotencyKeyLen bytes.
	IdempotencyKey string
	// Amount must be positive, in a currency written as three capital
	// letters. Which currencies Strata sells in is the caller's rule.
	Amount strata.Money
	Card   Card
}

// MaxIdempotencyKeyLen is the longest idempotency key accepted (Stripe's
// limit).
const MaxIdempotencyKeyLen = 255

// Validate checks r at time now, reporting every invalid field (the card's
// among them) in one strata.Invalid error.
func (r ChargeRequest) Validate(now time.Time) error {
	var p []string
	switch {
	case r.IdempotencyKey == "":
		p = append(p, "idempotency_key", "is required")
	case len(r.IdempotencyKey) > MaxIdempotencyKeyLen:
		p = append(p, "idempotency_key", "must be at most 255 bytes")
	}
	if r.Amount.Amount <= 0 {
		p = append(p, "amount", "must be positive")
	}
	if !currencyShape(r.Amount.Currency) {
		p = append(p, "currency", "must be three capital letters")
	}
	p = append(p, r.Card.problems(now)...)
	if p != nil {
		return strata.Invalid(p...)
	}
	return nil
}

func currencyShape(c string) bool {
	return len(c) == 3 && isUpper(c[0]) && isUpper(c[1]) && isUpper(c[2])
}

func isUpper(b byte) bool { return b >= 'A' && b <= 'Z' }

// ChargeStatus is the state of a charge.
type ChargeStatus string

// The charge statuses. Succeeded and failed are final; pending becomes one
// of them later.
const (
	ChargeSucceeded ChargeStatus = "succeeded"
	ChargePending   ChargeStatus = "pending"
	ChargeFailed    ChargeStatus = "failed"
)

// The failure codes of a failed charge (Stripe's names). Each is the
// network's answer about the card; the buyer may try another card.
const (
	FailureCardDeclined      = "card_declined"
	FailureInsufficientFunds = "insufficient_funds"
	FailureProcessingError   = "processing_error" // a fault at the network; the same card may work later
	FailureExpiredCard       = "expired_card"
	FailureIncorrectCVC      = "incorrect_cvc"
)

// Charge is the network's record of one charge. It carries no more of the
// card than its brand and last 4.
type Charge struct {
	ID     string
	Status ChargeStatus
	// FailureCode says why a failed charge failed; empty otherwise.
	FailureCode string
	Brand       string
	Last4       string
	// Created is when the network made the charge, to the millisecond.
	Created time.Time
}
