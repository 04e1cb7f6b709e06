package payments

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/stratadev/strata"
)

// PurchaseStatus is where a purchase stands.
type PurchaseStatus string

// Purchase statuses.
const (
	PurchaseCompleted PurchaseStatus = "completed"
	PurchaseRefunded  PurchaseStatus = "refunded"
)

// Purchase records that a buyer bought an item: the price left the
// buyer's wallet (transfer TransferID) and the fee went from the
// creator's earnings to platform revenue (FeeTransferID).
type Purchase struct {
	ID            strata.ID
	BuyerID       strata.ID
	ItemID        strata.ID
	CreatorID     strata.ID
	Price         strata.Money
	Fee           int64 // minor units of Price.Currency
	Status        PurchaseStatus
	TransferID    strata.ID
	FeeTransferID strata.ID
	CreatedAt     time.Time
	RefundedAt    time.Time // zero unless refunded
	// Settlement says how the creator is paid: SettlementLocal in the
	// purchase's own transaction, or SettlementSaga when the creator lives
	// in another database (FeeTransferID is then on that database's
	// receipt, not here).
	Settlement Settlement
	// RefundReason is why a purchase was refunded without being asked:
	// "credit_failed" when its cross-database credit failed for good.
	RefundReason string
}

// Settlement says how a purchase reaches the creator's earnings.
type Settlement string

// Settlements.
const (
	SettlementLocal Settlement = "local"
	SettlementSaga  Settlement = "saga"
)

// OrLocal returns s, or SettlementLocal when s is empty.
func (s Settlement) OrLocal() Settlement {
	if s == "" {
		return SettlementLocal
	}
	return s
}

// Errors of Purchase.
var (
	errItemNotFound = &strata.Error{Code: strata.CodeNotFound, Reason: "item_not_found", Message: "no such item"}
	errOwnItem      = &strata.Error{Code: strata.CodeConflict, Reason: "own_item", Message: "creators cannot buy their own items"}
	errFreeItem     = &strata.Error{Code: strata.CodeConflict, Reason: "item_free", Message: "the item is free: download it without buying"}
	errAlready      = &strata.Error{Code: strata.CodeConflict, Reason: "already_purchased", Message: "you already bought this item"}
)

// PurchaseEvent is the payload of payments.purchase.completed.
type PurchaseEvent struct {
	PurchaseID strata.ID    `json:"purchase_id"`
	BuyerID    strata.ID    `json:"buyer_id"`
	ItemID     strata.ID    `json:"item_id"`
	CreatorID  strata.ID    `json:"creator_id"`
	Price      strata.Money `json:"price"`
	Fee        int64        `json:"fee"`
	// Reason is set on payments.purchase.refunded when nobody asked for
	// the refund: "credit_failed" (see SagaWorker).
	Reason string `json:"reason,omitempty"`
}

// Buy purchases an item for the caller: in one transaction on the buyer's
// database the price moves from the buyer's wallet to the creator's
// earnings and the fee from the earnings to platform revenue (two
// transfers), the purchase is recorded, the entitlement granted and
// payments.purchase.completed written to the outbox. When the creator lives
// in another database, the transaction moves the price to the transit
// account instead and the saga worker credits the creator (see saga.go);
// the buyer holds the item at once either way. Errors: unauthenticated;
// not_found "item_not_found" (also unpublished or deleted items); conflict
// "own_item", "item_free", "already_purchased"; payment_required
// "insufficient_funds" with nothing changed; unavailable.
func (s *Service) Buy(ctx context.Context, itemID strata.ID) (*Purchase, error) {
	p := strata.PrincipalFrom(ctx)
	if p == nil {
		return nil, errNoPrincipal
	}
	if _, ok := itemID.Shard(); !ok {
		return nil, errItemNotFound
	}
	item, err := s.catalog.Item(ctx, itemID)
	if strata.ErrorCode(err) == strata.CodeNotFound {
		return nil, errItemNotFound
	}
	if err != nil {
		return nil, err
	}
	switch {
	case !item.Buyable:
		return nil, errItemNotFound
	case item.CreatorID == p.UserID:
		return nil, errOwnItem
	case item.Price.Amount == 0:
		return nil, errFreeItem
	case item.Price.Amount < 0 || !strata.ValidCurrency(item.Price.Currency):
		// Content validates prices; a bad one here would reverse the
		// entries, so it is refused whatever the catalog says.
		return nil, strata.Internal(fmt.Errorf("item %s has an invalid price %s", item.ID, item.Price))
	}
	buyerShard, err := shardOf(p.UserID)
	if err != nil {
		return nil, errNoPrincipal
	}
	creatorShard, err := shardOf(item.CreatorID)
	if err != nil {
		return nil, errItemNotFound
	}
	local := s.store.SameDatabase(buyerShard, creatorShard)
	now := s.clock.Now().UTC()
	price := item.Price
	pur := &Purchase{
		ID: strata.NewID("pur", buyerShard, now), BuyerID: p.UserID, ItemID: item.ID, CreatorID: item.CreatorID,
		Price: price, Fee: fee(price.Amount, s.cfg.FeeBasisPoints), Status: PurchaseCompleted, CreatedAt: now,
		Settlement: SettlementLocal,
	}
	if !local {
		pur.Settlement = SettlementSaga
	}
	err = s.store.Tx(ctx, buyerShard, func(tx Tx) error {
		if _, err := tx.LivePurchase(ctx, p.UserID, item.ID); err == nil {
			return errAlready
		} else if strata.ErrorCode(err) != strata.CodeNotFound {
			return err
		}
		if !local {
			// The creator is paid by the saga worker (see saga.go).
			if err := sendPrice(ctx, tx, pur, buyerShard, now); err != nil {
				return err
			}
			return recordPurchase(ctx, tx, pur, now)
		}
		wallet, err := tx.Account(ctx, AccountKey{Kind: KindWallet, Owner: p.UserID, Currency: price.Currency, Shard: buyerShard}, now)
		if err != nil {
			return err
		}
		earnings, err := tx.Account(ctx, AccountKey{Kind: KindEarnings, Owner: item.CreatorID, Currency: price.Currency, Shard: creatorShard}, now)
		if err != nil {
			return err
		}
		revenue, err := tx.Account(ctx, AccountKey{Kind: KindRevenue, Currency: price.Currency, Shard: buyerShard}, now)
		if err != nil {
			return err
		}
		if err := lockInOrder(ctx, tx, wallet.ID, earnings.ID, revenue.ID); err != nil {
			return err
		}
		sale := &Transfer{Shard: buyerShard, Type: TransferPurchase, Currency: price.Currency, PurchaseID: pur.ID, ItemID: item.ID,
			Entries: []Entry{{Account: wallet.ID, Amount: -price.Amount}, {Account: earnings.ID, Amount: price.Amount}}}
		if err := post(ctx, tx, sale, now); err != nil {
			return err
		}
		pur.TransferID = sale.ID
		if pur.Fee > 0 {
			cut := &Transfer{Shard: buyerShard, Type: TransferFee, Currency: price.Currency, PurchaseID: pur.ID, ItemID: item.ID,
				Entries: []Entry{{Account: earnings.ID, Amount: -pur.Fee}, {Account: revenue.ID, Amount: pur.Fee}}}
			// The sale credited the earnings with the price just before, so
			// the fee never takes them below where they were: allowed even
			// when a forced refund left them negative.
			if err := post(ctx, tx, cut, now, earnings.ID); err != nil {
				return err
			}
			pur.FeeTransferID = cut.ID
		}
		return recordPurchase(ctx, tx, pur, now)
	})
	if err != nil {
		return nil, err
	}
	s.notify()
	return pur, nil
}

// recordPurchase records pur, grants its entitlement and writes
// payments.purchase.completed, in the purchase's transaction.
func recordPurchase(ctx context.Context, tx Tx, pur *Purchase, now time.Time) error {
	if err := tx.InsertPurchase(ctx, pur); err != nil {
		return err
	}
	if err := tx.GrantEntitlement(ctx, pur.BuyerID, pur.ItemID, pur.ID, now); err != nil {
		return err
	}
	return outboxJSON(ctx, tx, SubjectPurchaseCompleted, purchaseEventOf(pur))
}

// purchaseEventOf is the event payload describing p.
func purchaseEventOf(p *Purchase) PurchaseEvent {
	return PurchaseEvent{PurchaseID: p.ID, BuyerID: p.BuyerID, ItemID: p.ItemID, CreatorID: p.CreatorID, Price: p.Price, Fee: p.Fee}
}

// Wallet is what a user holds: spendable balances and, for creators,
// earnings, per currency.
type Wallet struct {
	Balances []strata.Money
	Earnings []strata.Money
}

// WalletOf returns user's wallet (the caller's, or anyone's for an admin).
func (s *Service) WalletOf(ctx context.Context, user strata.ID) (*Wallet, error) {
	if err := mayRead(ctx, user); err != nil {
		return nil, err
	}
	accts, err := s.store.AccountsOf(ctx, user)
	if err != nil {
		return nil, err
	}
	w := &Wallet{Balances: []strata.Money{}, Earnings: []strata.Money{}}
	for _, a := range accts {
		m := strata.Money{Amount: a.Balance, Currency: a.Key.Currency}
		switch a.Key.Kind {
		case KindWallet:
			w.Balances = append(w.Balances, m)
		case KindEarnings:
			w.Earnings = append(w.Earnings, m)
		}
	}
	return w, nil
}

// PurchasesOf returns user's purchases, newest first, after the cursor.
func (s *Service) PurchasesOf(ctx context.Context, user, before strata.ID, limit int) ([]Purchase, error) {
	if err := mayRead(ctx, user); err != nil {
		return nil, err
	}
	return s.store.Purchases(ctx, user, before, limit)
}

// TransfersOf returns the transfers touching user's accounts, newest
// first; an admin may name any user, or one account.
func (s *Service) TransfersOf(ctx context.Context, user, account, before strata.ID, limit int) ([]Transfer, error) {
	if account != "" {
		p := strata.PrincipalFrom(ctx)
		if p == nil {
			return nil, errNoPrincipal
		}
		if !p.HasRole(strata.RoleAdmin) {
			return nil, errNotYours
		}
		return s.store.Transfers(ctx, "", account, before, limit)
	}
	if err := mayRead(ctx, user); err != nil {
		return nil, err
	}
	return s.store.Transfers(ctx, user, "", before, limit)
}

var errNotYours = &strata.Error{Code: strata.CodePermissionDenied, Reason: "not_owner", Message: "only the owner or an admin may read this"}

// mayRead allows the user themself and admins.
func mayRead(ctx context.Context, user strata.ID) error {
	p := strata.PrincipalFrom(ctx)
	switch {
	case p == nil:
		return errNoPrincipal
	case p.UserID != user && !p.HasRole(strata.RoleAdmin):
		return errNotYours
	}
	return nil
}

// lockInOrder locks accounts sorted by id, so every transaction takes its
// row locks in one global order and none can deadlock another.
func lockInOrder(ctx context.Context, tx Tx, ids ...strata.ID) error {
	ids = slices.Clone(ids)
	slices.Sort(ids)
	return tx.LockAccounts(ctx, slices.Compact(ids))
}

// creditTopUp posts a top-up: money enters the user's wallet from the
// external world on the user's shard, exactly once per intent (the
// database refuses a second top-up transfer of the same intent with
// conflict "duplicate_transfer").
func creditTopUp(ctx context.Context, tx Tx, user, intent strata.ID, m strata.Money, now time.Time) (*Transfer, error) {
	shard, err := shardOf(user)
	if err != nil {
		return nil, err
	}
	wallet, err := tx.Account(ctx, AccountKey{Kind: KindWallet, Owner: user, Currency: m.Currency, Shard: shard}, now)
	if err != nil {
		return nil, err
	}
	external, err := tx.Account(ctx, AccountKey{Kind: KindExternal, Currency: m.Currency, Shard: shard}, now)
	if err != nil {
		return nil, err
	}
	t := &Transfer{Shard: shard, Type: TransferTopUp, Currency: m.Currency, IntentID: intent,
		Entries: []Entry{{Account: external.ID, Amount: -m.Amount}, {Account: wallet.ID, Amount: m.Amount}}}
	if err := post(ctx, tx, t, now); err != nil {
		return nil, err
	}
	return t, nil
}
