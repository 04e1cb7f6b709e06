package payments

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/stratadev/strata"
)

// AccountKind says what an account holds.
type AccountKind string

// Account kinds.
const (
	// KindWallet is a user's spendable money in one currency; it never
	// goes negative.
	KindWallet AccountKind = "wallet"
	// KindEarnings is what a creator earned in one currency; it goes
	// negative only through a refund an admin forces (a recorded deficit).
	KindEarnings AccountKind = "earnings"
	// KindRevenue is the platform's fees, one account per logical shard
	// and currency, so that no single row is every purchase's hot spot.
	KindRevenue AccountKind = "revenue"
	// KindExternal is the world outside the ledger, one per shard and
	// currency: money entering through top-ups makes it negative, payouts
	// bring it back. Its balance is the mirror of what the platform holds.
	KindExternal AccountKind = "external"
	// KindTransit holds money between databases, one per logical shard
	// and currency: a cross-database purchase moves the price from the
	// buyer's wallet into the transit account of the buyer's shard, and
	// its credit takes it out of the transit account of the creator's
	// shard into the earnings. Each database stays balanced on its own;
	// over all databases the transit accounts sum to the credits still in
	// flight. Unguarded, like external.
	KindTransit AccountKind = "transit"
)

// AccountKey names an account: its kind, owner (for wallets and
// earnings), currency and logical shard.
type AccountKey struct {
	Kind     AccountKind
	Owner    strata.ID // "" for revenue and external accounts
	Currency string
	Shard    int
}

// Account is one account of the ledger.
type Account struct {
	ID      strata.ID
	Key     AccountKey
	Balance int64 // minor units
	Version int64 // bumped by every entry
}

// TransferType says why money moved.
type TransferType string

// Transfer types.
const (
	TransferTopUp      TransferType = "topup"
	TransferPurchase   TransferType = "purchase"
	TransferFee        TransferType = "fee"
	TransferRefund     TransferType = "refund"
	TransferPayout     TransferType = "payout"
	TransferCorrection TransferType = "correction"
)

// Entry is one leg of a transfer: a signed amount on an account (positive
// raises its balance).
type Entry struct {
	Account strata.ID
	Amount  int64
	// Kind and Owner describe the account, when read back for display.
	Kind  AccountKind
	Owner strata.ID
}

// Transfer is an immutable, balanced movement of money in one currency:
// its entries sum to zero.
type Transfer struct {
	ID         strata.ID
	Shard      int
	Type       TransferType
	Currency   string
	Amount     int64 // the sum of the positive entries
	IntentID   strata.ID
	PurchaseID strata.ID
	ItemID     strata.ID
	ReversesID strata.ID // for a refund: the transfer it reverses
	Entries    []Entry
	CreatedAt  time.Time
}

var (
	errInsufficientFunds = &strata.Error{Code: strata.CodePaymentRequired, Reason: "insufficient_funds",
		Message: "the wallet does not hold enough money"}
	errOverflow = &strata.Error{Code: strata.CodeUnprocessable, Reason: "amount_overflow",
		Message: "the amount would overflow a balance"}
)

// post validates t and writes it in tx: every entry is applied to its
// account's balance (refused when a guarded account would go negative,
// or a balance would overflow) and the transfer with its entries is
// recorded. negativeOK lists accounts allowed to go below zero beyond the
// external ones (a forced refund's earnings). The caller fills every field
// but ID, Amount and CreatedAt.
func post(ctx context.Context, tx Tx, t *Transfer, now time.Time, negativeOK ...strata.ID) error {
	if len(t.Entries) < 2 {
		return fmt.Errorf("post %s transfer: %d entries, need at least two", t.Type, len(t.Entries))
	}
	var sum, positive int64
	seen := map[strata.ID]bool{}
	for _, e := range t.Entries {
		if e.Amount == 0 || seen[e.Account] {
			return fmt.Errorf("post %s transfer: a zero or repeated entry on %s", t.Type, e.Account)
		}
		seen[e.Account] = true
		var ok bool
		if sum, ok = add(sum, e.Amount); !ok {
			return errOverflow
		}
		if e.Amount > 0 {
			if positive, ok = add(positive, e.Amount); !ok {
				return errOverflow
			}
		}
	}
	if sum != 0 {
		return fmt.Errorf("post %s transfer: entries sum to %d, not zero", t.Type, sum)
	}
	t.ID = strata.NewID("trf", t.Shard, now)
	t.Amount = positive
	t.CreatedAt = now
	for _, e := range t.Entries {
		allow := false
		for _, id := range negativeOK {
			allow = allow || id == e.Account
		}
		if err := tx.Apply(ctx, e.Account, e.Amount, allow, now); err != nil {
			return err
		}
	}
	return tx.InsertTransfer(ctx, t)
}

// add returns a+b and whether it did not overflow.
func add(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}

// fee returns the platform's part of amount at basis points bps (1/100 of
// a percent), rounded down; it never overflows for any int64 amount.
func fee(amount int64, bps int) int64 {
	if amount <= 0 || bps <= 0 {
		return 0
	}
	// amount × bps / 10000 without overflowing: split amount.
	q, r := amount/10000, amount%10000
	f := q*int64(bps) + r*int64(bps)/10000
	if f > amount || f < 0 {
		return amount
	}
	return f
}

// guardedKind reports whether accounts of kind k may not go negative.
func guardedKind(k AccountKind) bool { return k != KindExternal && k != KindTransit }

// BalanceBounds returns the range a balance may hold after adding delta
// without overflowing: the conditional update checks balance is within it.
func BalanceBounds(delta int64) (lo, hi int64) {
	lo, hi = math.MinInt64, math.MaxInt64
	if delta > 0 {
		hi = math.MaxInt64 - delta
	} else {
		lo = math.MinInt64 - delta
	}
	return lo, hi
}
