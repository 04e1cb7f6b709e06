package payments

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/queue"
)

// A purchase whose buyer and creator live in different databases cannot be
// one transaction. It runs as a saga of local transactions, each one
// balanced on its own database:
//
//  1. On the buyer's database (Buy): the price moves from the wallet to
//     the transit account of the buyer's shard; the purchase (settlement
//     "saga") and the entitlement are recorded, and the outbox carries
//     payments.saga.credit. The buyer owns the item from here on.
//  2. On the creator's database (the saga worker): the price moves from
//     the transit account of the creator's shard to the earnings and the
//     fee on to revenue, and a receipt records, once per purchase, that
//     the credit was applied. A redelivered event finds the receipt and
//     does nothing. payments.saga.credited then marks the purchase
//     credited on the buyer's database.
//
// If the credit fails for good (anything but the database being
// unavailable, or still failing at the last delivery), the saga
// compensates: a receipt "canceled" on the creator's database fences the
// credit off for good, then the buyer's database reverses step 1, revokes
// the entitlement and marks the purchase refunded with reason
// "credit_failed", which admins see on the purchase and in its
// payments.purchase.refunded event.
//
// A refund of such a purchase runs the other way: on the creator's
// database the credit and the fee are reversed (or, when the credit has
// not happened yet, fenced off by a canceled receipt), then the buyer's
// database reverses step 1. The second step is also carried by
// payments.saga.refund, so a crash between the two cannot lose it.
//
// Over all databases the transit accounts sum to the money in flight;
// each database's transit balance equals what its saga rows say it should
// (see InvariantTransitAccounted), and a credit still missing after
// SagaSettleBound is reported (InvariantCreditSettled).

// Subjects of the saga's internal events, consumed by SagaWorker.
const (
	SubjectSagaCredit = "payments.saga.credit" // SagaEvent: credit the creator of a cross-database purchase
	SubjectSagaRefund = "payments.saga.refund" // SagaEvent: finish refunding a cross-database purchase
	// SubjectSagaCredited tells the buyer's database that the credit was
	// applied, for the reconciler's InvariantCreditSettled.
	SubjectSagaCredited = "payments.saga.credited" // SagaEvent
)

// SagaSettleBound is how long a cross-database credit may stay pending
// before the reconciler reports it.
const SagaSettleBound = time.Hour

// RefundCreditFailed is the refund reason of a purchase compensated
// because its cross-database credit failed for good.
const RefundCreditFailed = "credit_failed"

// SagaEvent is the payload of the saga's events: the purchase, and for a
// refund the deficit a forced one left (its Reason, when nobody asked for
// it, is RefundCreditFailed).
type SagaEvent struct {
	PurchaseEvent
	// Deficit is what a forced refund overdrew the earnings by.
	Deficit int64 `json:"deficit,omitempty"`
}

func sagaEventOf(p *Purchase) SagaEvent {
	return SagaEvent{PurchaseEvent: purchaseEventOf(p)}
}

// ReceiptState is the outcome of a cross-database credit.
type ReceiptState string

// Receipt states.
const (
	ReceiptApplied  ReceiptState = "applied"
	ReceiptCanceled ReceiptState = "canceled"
)

// Receipt records on the creator's database what became of a
// cross-database purchase's credit: applied (with its transfers) or
// canceled (a refund or a compensation got there first).
type Receipt struct {
	PurchaseID       strata.ID
	State            ReceiptState
	CreditTransferID strata.ID // transit -> earnings
	FeeTransferID    strata.ID // earnings -> revenue; "" without a fee
	Cause            string    // why a credit was canceled
	CreatorID        strata.ID
	Currency         string
	// RefundedAt is when a refund took the credit back (zero if none did),
	// and Deficit what a forced one overdrew the earnings by — recorded
	// here, in the earnings' database, where the reconciler checks them.
	RefundedAt time.Time
	Deficit    int64
	CreatedAt  time.Time
}

// sendPrice is step 1 of a cross-database purchase, in the buyer's
// transaction: the price leaves the wallet for the transit account of the
// buyer's shard.
func sendPrice(ctx context.Context, tx Tx, pur *Purchase, shard int, now time.Time) error {
	cur := pur.Price.Currency
	wallet, err := tx.Account(ctx, AccountKey{Kind: KindWallet, Owner: pur.BuyerID, Currency: cur, Shard: shard}, now)
	if err != nil {
		return err
	}
	transit, err := tx.Account(ctx, AccountKey{Kind: KindTransit, Currency: cur, Shard: shard}, now)
	if err != nil {
		return err
	}
	if err := lockInOrder(ctx, tx, wallet.ID, transit.ID); err != nil {
		return err
	}
	send := &Transfer{Shard: shard, Type: TransferPurchase, Currency: cur, PurchaseID: pur.ID, ItemID: pur.ItemID,
		Entries: []Entry{{Account: wallet.ID, Amount: -pur.Price.Amount}, {Account: transit.ID, Amount: pur.Price.Amount}}}
	if err := post(ctx, tx, send, now); err != nil {
		return err
	}
	pur.TransferID = send.ID
	return outboxJSON(ctx, tx, SubjectSagaCredit, sagaEventOf(pur))
}

// errCreditApplied stops a compensation that found the credit applied.
var errCreditApplied = errors.New("the credit was applied")

// ApplyCredit is step 2 of a cross-database purchase, on the creator's
// database, exactly once: the price moves from the transit account of the
// creator's shard to the earnings, the fee on to revenue, and the receipt
// is written. A purchase with a receipt already is left alone.
func (s *Service) ApplyCredit(ctx context.Context, ev SagaEvent) error {
	shard, err := shardOf(ev.CreatorID)
	if err != nil {
		return fmt.Errorf("credit of %s: creator %q: %w", ev.PurchaseID, ev.CreatorID, err)
	}
	now := s.clock.Now().UTC()
	cur := ev.Price.Currency
	err = s.store.Tx(ctx, shard, func(tx Tx) error {
		if _, err := tx.Receipt(ctx, ev.PurchaseID); err == nil {
			return nil // applied or canceled already
		} else if strata.ErrorCode(err) != strata.CodeNotFound {
			return err
		}
		transit, err := tx.Account(ctx, AccountKey{Kind: KindTransit, Currency: cur, Shard: shard}, now)
		if err != nil {
			return err
		}
		earnings, err := tx.Account(ctx, AccountKey{Kind: KindEarnings, Owner: ev.CreatorID, Currency: cur, Shard: shard}, now)
		if err != nil {
			return err
		}
		revenue, err := tx.Account(ctx, AccountKey{Kind: KindRevenue, Currency: cur, Shard: shard}, now)
		if err != nil {
			return err
		}
		if err := lockInOrder(ctx, tx, transit.ID, earnings.ID, revenue.ID); err != nil {
			return err
		}
		credit := &Transfer{Shard: shard, Type: TransferPurchase, Currency: cur, PurchaseID: ev.PurchaseID, ItemID: ev.ItemID,
			Entries: []Entry{{Account: transit.ID, Amount: -ev.Price.Amount}, {Account: earnings.ID, Amount: ev.Price.Amount}}}
		if err := post(ctx, tx, credit, now); err != nil {
			return err
		}
		rec := &Receipt{PurchaseID: ev.PurchaseID, State: ReceiptApplied, CreditTransferID: credit.ID,
			CreatorID: ev.CreatorID, Currency: cur, CreatedAt: now}
		if ev.Fee > 0 {
			cut := &Transfer{Shard: shard, Type: TransferFee, Currency: cur, PurchaseID: ev.PurchaseID, ItemID: ev.ItemID,
				Entries: []Entry{{Account: earnings.ID, Amount: -ev.Fee}, {Account: revenue.ID, Amount: ev.Fee}}}
			// As in a local purchase: the credit just raised the earnings
			// by the price, so the fee never takes them below where they were.
			if err := post(ctx, tx, cut, now, earnings.ID); err != nil {
				return err
			}
			rec.FeeTransferID = cut.ID
		}
		if err := tx.InsertReceipt(ctx, rec); err != nil {
			return err
		}
		return outboxJSON(ctx, tx, SubjectSagaCredited, ev)
	})
	if strata.ErrorReason(err) == "duplicate_receipt" {
		// On PostgreSQL, FOR UPDATE locks no row that does not exist yet:
		// a concurrent delivery or refund wrote the receipt first.
		return nil
	}
	return err
}

// markCredited records on the buyer's database that the credit of a
// cross-database purchase was applied.
func (s *Service) markCredited(ctx context.Context, purchase strata.ID) error {
	shard, ok := purchase.Shard()
	if !ok {
		return queue.Permanent(fmt.Errorf("credited event: purchase id %q", purchase))
	}
	now := s.clock.Now().UTC()
	return s.store.Tx(ctx, shard, func(tx Tx) error { return tx.MarkCredited(ctx, purchase, now) })
}

// Compensate undoes a cross-database purchase whose credit failed for
// good: it fences the credit off with a canceled receipt on the creator's
// database, then refunds the buyer (reason "credit_failed"). A credit
// that was applied after all is left alone.
func (s *Service) Compensate(ctx context.Context, ev SagaEvent, cause string) error {
	shard, err := shardOf(ev.CreatorID)
	if err != nil {
		return fmt.Errorf("compensate %s: creator %q: %w", ev.PurchaseID, ev.CreatorID, err)
	}
	now := s.clock.Now().UTC()
	err = s.store.Tx(ctx, shard, func(tx Tx) error {
		r, err := tx.Receipt(ctx, ev.PurchaseID)
		switch {
		case err == nil && r.State == ReceiptApplied:
			return errCreditApplied
		case err == nil:
			return nil // canceled already
		case strata.ErrorCode(err) != strata.CodeNotFound:
			return err
		}
		if err := tx.InsertReceipt(ctx, &Receipt{PurchaseID: ev.PurchaseID, State: ReceiptCanceled, Cause: cause,
			CreatorID: ev.CreatorID, Currency: ev.Price.Currency, CreatedAt: now}); err != nil {
			return err
		}
		// The buyer's side follows below; the event finishes it if that fails.
		back := ev
		back.Reason = RefundCreditFailed
		return outboxJSON(ctx, tx, SubjectSagaRefund, back)
	})
	if errors.Is(err, errCreditApplied) {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = s.finishRefund(ctx, ev.PurchaseID, 0, RefundCreditFailed)
	if errors.Is(err, errAlreadyRefunded) {
		return nil
	}
	return err
}

// refundAcross refunds a cross-database purchase, read by Refund with the
// caller's right to refund it checked: first on the creator's database
// (the credit and the fee reversed, refused when the earnings do not cover
// them unless forced; or the credit fenced off if it has not happened),
// then on the buyer's.
func (s *Service) refundAcross(ctx context.Context, pur *Purchase, force bool) (*Purchase, error) {
	shard, err := shardOf(pur.CreatorID)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now().UTC()
	var deficit int64
	creatorSide := func(tx Tx) error {
		deficit = 0
		r, err := tx.Receipt(ctx, pur.ID)
		switch {
		case strata.ErrorCode(err) == strata.CodeNotFound:
			// Not credited yet: it never will be. The buyer's side follows
			// below; the event finishes it if that fails.
			if err := tx.InsertReceipt(ctx, &Receipt{PurchaseID: pur.ID, State: ReceiptCanceled, Cause: "refunded",
				CreatorID: pur.CreatorID, Currency: pur.Price.Currency, CreatedAt: now}); err != nil {
				return err
			}
			return outboxJSON(ctx, tx, SubjectSagaRefund, sagaEventOf(pur))
		case err != nil:
			return err
		case r.State == ReceiptCanceled:
			return nil // fenced off by a refund or a compensation, whose event finishes the buyer's side
		case !r.RefundedAt.IsZero():
			deficit = r.Deficit // taken back already (a retry after the buyer's side failed)
			return nil
		}
		earnings, err := tx.Account(ctx, AccountKey{Kind: KindEarnings, Owner: pur.CreatorID, Currency: pur.Price.Currency, Shard: shard}, now)
		if err != nil {
			return err
		}
		if deficit, err = s.takeBack(ctx, tx, pur, earnings, []strata.ID{r.FeeTransferID, r.CreditTransferID}, shard, now, force); err != nil {
			return err
		}
		if err := tx.MarkReceiptRefunded(ctx, pur.ID, now, deficit); err != nil {
			return err
		}
		ev := sagaEventOf(pur)
		ev.Deficit = deficit
		return outboxJSON(ctx, tx, SubjectSagaRefund, ev)
	}
	err = s.store.Tx(ctx, shard, creatorSide)
	if strata.ErrorReason(err) == "duplicate_receipt" {
		// A concurrent credit or refund wrote the receipt first (see
		// ApplyCredit): decide again on the receipt it wrote.
		err = s.store.Tx(ctx, shard, creatorSide)
	}
	if strata.ErrorCode(err) == strata.CodeConflict && strata.ErrorReason(err) == "duplicate_transfer" {
		return nil, errAlreadyRefunded
	}
	if err != nil {
		return nil, err
	}
	s.notify()
	return s.finishRefund(ctx, pur.ID, deficit, "")
}

// finishRefund is the buyer's side of refunding a cross-database
// purchase: the price goes back from the transit account to the wallet,
// the entitlement is revoked and payments.purchase.refunded written.
// conflict "already_refunded" when it was done before.
func (s *Service) finishRefund(ctx context.Context, id strata.ID, deficit int64, reason string) (*Purchase, error) {
	shard, ok := id.Shard()
	if !ok {
		return nil, errPurchaseNotFound
	}
	now := s.clock.Now().UTC()
	var pur *Purchase
	err := s.store.Tx(ctx, shard, func(tx Tx) error {
		var err error
		if pur, err = tx.PurchaseForUpdate(ctx, id); err != nil {
			return err
		}
		if pur.Status == PurchaseRefunded {
			return errAlreadyRefunded
		}
		entries, err := tx.Entries(ctx, pur.TransferID)
		if err != nil {
			return err
		}
		accts := make([]strata.ID, 0, len(entries))
		for _, e := range entries {
			accts = append(accts, e.Account)
		}
		if err := lockInOrder(ctx, tx, accts...); err != nil {
			return err
		}
		if err := s.reverse(ctx, tx, pur.TransferID, shard, pur, now, false, ""); err != nil {
			return err
		}
		return s.closeRefund(ctx, tx, pur, now, deficit, reason)
	})
	if err != nil {
		return nil, err
	}
	s.notify()
	return pur, nil
}

// SagaWorker is the worker's consumer of the saga's events: it applies
// credits (compensating when one fails for good) and finishes refunds on
// the buyer's database.
type SagaWorker struct {
	Service *Service
	Logger  *slog.Logger
}

// SagaMaxDeliver bounds the attempts at one event (with back-off up to a
// minute, about an hour in all); a credit still failing at the last one is
// compensated.
const SagaMaxDeliver = 64

// SagaConcurrency is how many saga steps one worker runs at once.
const SagaConcurrency = 16

// ConsumerConfig is the durable consumer the worker runs.
func (SagaWorker) ConsumerConfig() queue.ConsumerConfig {
	// Steps are independent transactions, idempotent and safe to run
	// concurrently (receipts and unique reversals decide races): one at a
	// time, credits fell seconds behind purchases under load.
	return queue.ConsumerConfig{Stream: Stream, Durable: "payments-saga", FilterSubjects: []string{SubjectSagaCredit, SubjectSagaRefund, SubjectSagaCredited},
		MaxDeliver: SagaMaxDeliver, BackoffBase: time.Second, BackoffMax: time.Minute, Concurrency: SagaConcurrency}
}

// Handle runs one step of a saga.
func (w SagaWorker) Handle(ctx context.Context, m queue.Message) error {
	var ev SagaEvent
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return queue.Permanent(fmt.Errorf("decode saga event %s: %w", m.ID, err))
	}
	switch m.Subject {
	case SubjectSagaCredited:
		return w.Service.markCredited(ctx, ev.PurchaseID)
	case SubjectSagaRefund:
		_, err := w.Service.finishRefund(ctx, ev.PurchaseID, ev.Deficit, ev.Reason)
		if errors.Is(err, errAlreadyRefunded) {
			return nil
		}
		return err
	case SubjectSagaCredit:
		err := w.Service.ApplyCredit(ctx, ev)
		if err == nil {
			return nil
		}
		last := m.NumDelivered >= SagaMaxDeliver
		if !last && retryable(err) {
			return err
		}
		w.logger().Error("cross-database credit failed for good: refunding the buyer",
			"purchase_id", ev.PurchaseID, "creator_id", ev.CreatorID, "error", err)
		if cerr := w.Service.Compensate(ctx, ev, err.Error()); cerr != nil {
			return fmt.Errorf("compensate %s after %w: %w", ev.PurchaseID, err, cerr)
		}
		return nil
	}
	return queue.Permanent(fmt.Errorf("saga event %s: unknown subject %q", m.ID, m.Subject))
}

func (w SagaWorker) logger() *slog.Logger {
	if w.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return w.Logger
}

// retryable reports whether err may pass by itself: the database was
// unavailable or the context ended. Anything else — an overflowing
// balance, a malformed event — fails the same way every time.
func retryable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	switch strata.ErrorCode(err) {
	case strata.CodeUnavailable, strata.CodeInternal:
		return true
	}
	return false
}
