package payments

import (
	"context"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/queue"
)

// Store is the persistence payments needs. Methods return *strata.Error
// code not_found as stated; anything else is internal or unavailable.
type Store interface {
	// Tx runs fn in one transaction on the database of logical shard.
	Tx(ctx context.Context, shard int, fn func(Tx) error) error
	// SameDatabase reports whether logical shards a and b live in one
	// database, so that one transaction can span them.
	SameDatabase(a, b int) bool
	// Entitled reports whether user holds item, from the primary of the
	// user's database (read-your-writes right after a purchase).
	Entitled(ctx context.Context, user, item strata.ID) (bool, error)
	// AccountsOf returns the wallet and earnings accounts of user.
	AccountsOf(ctx context.Context, user strata.ID) ([]Account, error)
	// Purchases returns buyer's purchases older than before ("" for the
	// newest), newest first, at most limit.
	Purchases(ctx context.Context, buyer, before strata.ID, limit int) ([]Purchase, error)
	// Transfers returns the transfers touching the accounts of owner (or,
	// when account is set, that one account), newest first, older than
	// before ("" for the newest), at most limit, each with its entries.
	Transfers(ctx context.Context, owner, account, before strata.ID, limit int) ([]Transfer, error)
	// Intent reads a payment intent from the primary; not_found when absent.
	Intent(ctx context.Context, id strata.ID) (*Intent, error)
	// Ping checks every database.
	Ping(ctx context.Context) error
}

// Tx is the write side of Store, bound to one transaction on one database.
type Tx interface {
	// Account returns the account named by key, creating it (balance 0)
	// on first use.
	Account(ctx context.Context, key AccountKey, now time.Time) (*Account, error)
	// Apply adds delta to the balance of account id and bumps its version,
	// refusing with payment_required "insufficient_funds" when a guarded
	// account (any but external, unless allowNegative) would go below
	// zero, and unprocessable "amount_overflow" when the balance would
	// overflow. The check and the write are one statement, so concurrent
	// spends cannot overdraw.
	Apply(ctx context.Context, id strata.ID, delta int64, allowNegative bool, now time.Time) error
	// InsertTransfer records a transfer and its entries; conflict
	// "duplicate_transfer" when a unique reference repeats (an intent
	// credited twice, a transfer reversed twice).
	InsertTransfer(ctx context.Context, t *Transfer) error
	// LivePurchase returns buyer's completed purchase of item, locked;
	// not_found when there is none.
	LivePurchase(ctx context.Context, buyer, item strata.ID) (*Purchase, error)
	// InsertPurchase records a purchase; conflict "already_purchased" when
	// the buyer holds a completed purchase of the item.
	InsertPurchase(ctx context.Context, p *Purchase) error
	// PurchaseForUpdate reads a purchase, locked; not_found when absent.
	PurchaseForUpdate(ctx context.Context, id strata.ID) (*Purchase, error)
	// MarkRefunded records a purchase's refund, the earnings deficit it
	// left (0 unless an admin forced it) and why, when the buyer did not
	// ask ("" or "credit_failed"); conflict "already_refunded" when it was.
	MarkRefunded(ctx context.Context, id strata.ID, at time.Time, deficit int64, reason string) error
	// Receipt reads, locked, the receipt of a cross-database purchase's
	// credit on the creator's database; not_found when it has none yet.
	Receipt(ctx context.Context, purchase strata.ID) (*Receipt, error)
	// MarkCredited records on the buyer's database that a cross-database
	// purchase's credit was applied (nothing when it was recorded before).
	MarkCredited(ctx context.Context, purchase strata.ID, at time.Time) error
	// MarkReceiptRefunded records on the creator's database that a refund
	// took back a cross-database credit, with the deficit a forced refund
	// left; conflict "already_refunded" when one did.
	MarkReceiptRefunded(ctx context.Context, purchase strata.ID, at time.Time, deficit int64) error
	// InsertReceipt records the outcome of a cross-database purchase's
	// credit, once: conflict "duplicate_receipt" when it has one.
	InsertReceipt(ctx context.Context, r *Receipt) error
	// Entries returns a transfer's entries; not_found when it does not
	// exist.
	Entries(ctx context.Context, transfer strata.ID) ([]Entry, error)
	// RevokeEntitlement removes user's entitlement to item granted by
	// purchase (nothing when another purchase granted it).
	RevokeEntitlement(ctx context.Context, user, item, purchase strata.ID) error
	// GrantEntitlement records that user holds item through purchase.
	GrantEntitlement(ctx context.Context, user, item, purchase strata.ID, now time.Time) error
	// InsertIntent records a new payment intent; conflict
	// "duplicate_intent" when the user already has one under its
	// idempotency key.
	InsertIntent(ctx context.Context, in *Intent) error
	// IntentByKey reads the user's intent created under an idempotency
	// key; not_found when there is none.
	IntentByKey(ctx context.Context, user strata.ID, key string) (*Intent, error)
	// LockAccounts locks the accounts' rows in the order given (callers
	// sort by id, so concurrent transactions lock in one order and cannot
	// deadlock on PostgreSQL).
	LockAccounts(ctx context.Context, ids []strata.ID) error
	// IntentForUpdate reads an intent, locked; not_found when absent.
	IntentForUpdate(ctx context.Context, id strata.ID) (*Intent, error)
	// UpdateIntent writes every mutable field of an intent.
	UpdateIntent(ctx context.Context, in *Intent) error
	// Outbox writes an event that the relay publishes after commit.
	Outbox(ctx context.Context, ev queue.Event) error
}
