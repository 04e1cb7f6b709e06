package payments

import (
	"context"
	"errors"
	"time"

	"github.com/stratadev/strata"
)

// DefaultRefundWindow is how long after a purchase its creator may refund
// it.
const DefaultRefundWindow = 14 * 24 * time.Hour

// Errors of Refund.
var (
	errPurchaseNotFound = &strata.Error{Code: strata.CodeNotFound, Reason: "purchase_not_found", Message: "no such purchase"}
	errAlreadyRefunded  = &strata.Error{Code: strata.CodeConflict, Reason: "already_refunded", Message: "the purchase was already refunded"}
	errRefundWindow     = &strata.Error{Code: strata.CodeConflict, Reason: "refund_window_closed",
		Message: "the refund window of this purchase has closed; an admin may still refund it"}
	errEarningsShort = &strata.Error{Code: strata.CodeConflict, Reason: "insufficient_earnings",
		Message: "the creator's earnings do not cover the refund; an admin may force it, recording the deficit"}
	errForceAdminOnly = &strata.Error{Code: strata.CodePermissionDenied, Reason: "admin_required",
		Message: "only an admin may force a refund"}
)

// Refund reverses a purchase, once: in one transaction on the buyer's
// database the fee goes back from platform revenue to the creator's
// earnings and the price from the earnings to the buyer's wallet (each a
// refund transfer reversing the original, entry by entry), the
// entitlement is revoked and payments.purchase.refunded is written. The
// item's creator may refund within the refund window, an admin at any
// time. When the earnings do not cover the refund it is refused
// (conflict "insufficient_earnings") unless an admin forces it: the
// earnings then go negative and the deficit is recorded on the purchase.
// Errors: unauthenticated, not_found "purchase_not_found" (also for
// callers who may not refund it), conflict "already_refunded" and
// "refund_window_closed", permission_denied "admin_required".
func (s *Service) Refund(ctx context.Context, id strata.ID, force bool) (*Purchase, error) {
	p := strata.PrincipalFrom(ctx)
	if p == nil {
		return nil, errNoPrincipal
	}
	admin := p.HasRole(strata.RoleAdmin)
	if force && !admin {
		return nil, errForceAdminOnly
	}
	shard, ok := id.Shard()
	if !ok {
		return nil, errPurchaseNotFound
	}
	var pur *Purchase
	err := s.store.Tx(ctx, shard, func(tx Tx) error {
		var err error
		pur, err = tx.PurchaseForUpdate(ctx, id)
		if strata.ErrorCode(err) == strata.CodeNotFound || (err == nil && pur.CreatorID != p.UserID && !admin) {
			return errPurchaseNotFound
		}
		if err != nil {
			return err
		}
		now := s.clock.Now().UTC()
		switch {
		case pur.Status == PurchaseRefunded:
			return errAlreadyRefunded
		case !admin && now.Sub(pur.CreatedAt) > s.refundWindow():
			return errRefundWindow
		case pur.Settlement == SettlementSaga:
			return errAcrossDatabases // the creator's side first: see refundAcross
		}
		creatorShard, err := shardOf(pur.CreatorID)
		if err != nil {
			return err
		}
		earnings, err := tx.Account(ctx, AccountKey{Kind: KindEarnings, Owner: pur.CreatorID, Currency: pur.Price.Currency, Shard: creatorShard}, now)
		if err != nil {
			return err
		}
		deficit, err := s.takeBack(ctx, tx, pur, earnings, []strata.ID{pur.FeeTransferID, pur.TransferID}, shard, now, force)
		if err != nil {
			return err
		}
		return s.closeRefund(ctx, tx, pur, now, deficit, "")
	})
	if errors.Is(err, errAcrossDatabases) {
		return s.refundAcross(ctx, pur, force)
	}
	if err != nil {
		return nil, err
	}
	s.notify()
	return pur, nil
}

// errAcrossDatabases sends Refund to refundAcross.
var errAcrossDatabases = errors.New("the purchase spans databases")

// takeBack reverses the creator's side of a purchase in tx — the fee
// transfer, then the sale (the transfers origs, fee first, "" skipped) —
// after checking that the earnings cover what the creator kept: refused
// with conflict "insufficient_earnings" unless forced, in which case the
// earnings go negative and the deficit is returned.
func (s *Service) takeBack(ctx context.Context, tx Tx, pur *Purchase, earnings *Account, origs []strata.ID, shard int, now time.Time, force bool) (int64, error) {
	// Lock every account the reversals touch, in id order, then read
	// the earnings again: the check below is on the locked balance.
	touched := []strata.ID{earnings.ID}
	for _, orig := range origs {
		if orig == "" {
			continue
		}
		entries, err := tx.Entries(ctx, orig)
		if err != nil {
			return 0, err
		}
		for _, e := range entries {
			touched = append(touched, e.Account)
		}
	}
	if err := lockInOrder(ctx, tx, touched...); err != nil {
		return 0, err
	}
	earnings, err := tx.Account(ctx, earnings.Key, now)
	if err != nil {
		return 0, err
	}
	owed := pur.Price.Amount - pur.Fee // what the creator kept
	var deficit int64
	if earnings.Balance < owed {
		if !force {
			return 0, errEarningsShort
		}
		deficit = owed - max(earnings.Balance, 0)
	}
	// The fee first, so the earnings hold it before the price leaves.
	for _, orig := range origs {
		if orig == "" {
			continue
		}
		if err := s.reverse(ctx, tx, orig, shard, pur, now, force, earnings.ID); err != nil {
			return 0, err
		}
	}
	return deficit, nil
}

// closeRefund marks pur refunded in tx, revokes its entitlement and writes
// payments.purchase.refunded.
func (s *Service) closeRefund(ctx context.Context, tx Tx, pur *Purchase, now time.Time, deficit int64, reason string) error {
	if err := tx.MarkRefunded(ctx, pur.ID, now, deficit, reason); err != nil {
		return err
	}
	if err := tx.RevokeEntitlement(ctx, pur.BuyerID, pur.ItemID, pur.ID); err != nil {
		return err
	}
	pur.Status, pur.RefundedAt, pur.RefundReason = PurchaseRefunded, now, reason
	ev := purchaseEventOf(pur)
	ev.Reason = reason
	return outboxJSON(ctx, tx, SubjectPurchaseRefunded, ev)
}

// reverse posts a refund transfer undoing transfer orig entry by entry.
// The database refuses a second reversal of one transfer.
func (s *Service) reverse(ctx context.Context, tx Tx, orig strata.ID, shard int, pur *Purchase, now time.Time, force bool, earnings strata.ID) error {
	entries, err := tx.Entries(ctx, orig)
	if err != nil {
		return err
	}
	back := make([]Entry, len(entries))
	for i, e := range entries {
		back[i] = Entry{Account: e.Account, Amount: -e.Amount}
	}
	t := &Transfer{Shard: shard, Type: TransferRefund, Currency: pur.Price.Currency, PurchaseID: pur.ID, ItemID: pur.ItemID,
		ReversesID: orig, Entries: back}
	var negativeOK []strata.ID
	if force && earnings != "" {
		negativeOK = append(negativeOK, earnings)
	}
	return post(ctx, tx, t, now, negativeOK...)
}

func (s *Service) refundWindow() time.Duration {
	if s.cfg.RefundWindow > 0 {
		return s.cfg.RefundWindow
	}
	return DefaultRefundWindow
}
