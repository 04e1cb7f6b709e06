// Package paymentssql stores the payments module's ledger in SQL databases
// through the shard router: portable SQL that runs on SQLite and
// PostgreSQL.
package paymentssql

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"strings"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/payments"
	"github.com/stratadev/strata/internal/queue"
	"github.com/stratadev/strata/internal/storage/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the module's goose migrations.
func Migrations() fs.FS { return sqldb.MigrationsDir(migrations) }

// Migrate applies payments' migrations to every database of r.
func Migrate(ctx context.Context, r *sqldb.Router) error {
	return sqldb.MigrateAll(ctx, r, "payments", Migrations())
}

// Store implements payments.Store on a shard router.
type Store struct {
	router *sqldb.Router
	clock  strata.Clock
}

var _ payments.Store = (*Store)(nil)

// New returns a Store over r.
func New(r *sqldb.Router, clock strata.Clock) *Store { return &Store{router: r, clock: clock} }

var errNotFound = &strata.Error{Code: strata.CodeNotFound, Reason: "not_found", Message: "not found"}

// Tx runs fn in a transaction on the database of shard.
func (s *Store) Tx(ctx context.Context, shard int, fn func(payments.Tx) error) error {
	if shard < 0 || shard >= s.router.NumShards() {
		return errNotFound
	}
	db := s.router.Shard(shard)
	return db.Tx(ctx, func(tx *sql.Tx) error {
		return fn(&txStore{tx: tx, db: db, shard: shard, clock: s.clock, forUpdate: db.ForUpdate()})
	})
}

// SameDatabase reports whether shards a and b share a database.
func (s *Store) SameDatabase(a, b int) bool {
	n := s.router.NumShards()
	return a >= 0 && b >= 0 && a < n && b < n && s.router.Shard(a) == s.router.Shard(b)
}

// Ping checks every database.
func (s *Store) Ping(ctx context.Context) error { return s.router.Ping(ctx) }

// Entitled reads from the writer (the primary), so a purchase is seen by
// the very next request.
func (s *Store) Entitled(ctx context.Context, user, item strata.ID) (bool, error) {
	db, err := s.router.ForID(user)
	if err != nil {
		return false, nil
	}
	var one int
	err = db.Primary().QueryRowContext(ctx,
		"SELECT 1 FROM payments_entitlements WHERE user_id = $1 AND item_id = $2", user, item).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("read entitlement: %w", sqldb.Translate(err))
	}
	return true, nil
}

// AccountsOf reads a user's wallet and earnings accounts from the
// primary of the user's database.
func (s *Store) AccountsOf(ctx context.Context, user strata.ID) ([]payments.Account, error) {
	db, err := s.router.ForID(user)
	if err != nil {
		return nil, errNotFound
	}
	rows, err := db.Primary().QueryContext(ctx,
		"SELECT "+accountColumns+" FROM payments_accounts WHERE owner_id = $1 AND kind IN ('wallet', 'earnings') ORDER BY kind, currency", user)
	if err != nil {
		return nil, fmt.Errorf("read accounts: %w", sqldb.Translate(err))
	}
	defer rows.Close()
	var out []payments.Account
	for rows.Next() {
		a, err := scanAccount(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *a)
	}
	return out, sqldb.Translate(rows.Err())
}

const accountColumns = "id, shard, kind, owner_id, currency, balance, version"

func scanAccount(row interface{ Scan(...any) error }) (*payments.Account, error) {
	var a payments.Account
	var kind, owner string
	if err := row.Scan(&a.ID, &a.Key.Shard, &kind, &owner, &a.Key.Currency, &a.Balance, &a.Version); err != nil {
		return nil, fmt.Errorf("read account: %w", sqldb.Translate(err))
	}
	a.Key.Kind, a.Key.Owner = payments.AccountKind(kind), strata.ID(owner)
	return &a, nil
}

const purchaseColumns = `id, buyer_id, item_id, creator_id, price_amount, currency, fee_amount, status,
	transfer_id, fee_transfer_id, created_at, refunded_at, settlement, refund_reason`

func scanPurchase(row interface{ Scan(...any) error }) (*payments.Purchase, error) {
	var p payments.Purchase
	var status, settlement string
	var created int64
	var refunded sql.NullInt64
	if err := row.Scan(&p.ID, &p.BuyerID, &p.ItemID, &p.CreatorID, &p.Price.Amount, &p.Price.Currency, &p.Fee, &status,
		&p.TransferID, &p.FeeTransferID, &created, &refunded, &settlement, &p.RefundReason); err != nil {
		return nil, sqldb.Translate(err)
	}
	p.Status = payments.PurchaseStatus(status)
	p.Settlement = payments.Settlement(settlement)
	p.CreatedAt = sqldb.FromMillis(created)
	p.RefundedAt = sqldb.FromNullMillis(refunded)
	return &p, nil
}

// Purchases reads a buyer's purchases, newest first.
func (s *Store) Purchases(ctx context.Context, buyer, before strata.ID, limit int) ([]payments.Purchase, error) {
	db, err := s.router.ForID(buyer)
	if err != nil {
		return nil, errNotFound
	}
	q := "SELECT " + purchaseColumns + " FROM payments_purchases WHERE buyer_id = $1"
	args := []any{buyer}
	if before != "" {
		q += " AND id < $2"
		args = append(args, before)
	}
	q += fmt.Sprintf(" ORDER BY id DESC LIMIT %d", limit)
	rows, err := db.Primary().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read purchases: %w", sqldb.Translate(err))
	}
	defer rows.Close()
	out := []payments.Purchase{}
	for rows.Next() {
		p, err := scanPurchase(rows)
		if err != nil {
			return nil, fmt.Errorf("read purchases: %w", err)
		}
		out = append(out, *p)
	}
	return out, sqldb.Translate(rows.Err())
}

// txStore implements payments.Tx on one transaction.
type txStore struct {
	tx        *sql.Tx
	shard     int
	clock     strata.Clock
	forUpdate string
	db        *sqldb.DB // runs the statements, prepared once seen
}

// queryRow runs q.
func (t *txStore) queryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return t.db.QueryRow(ctx, t.tx, q, args...)
}

var _ payments.Tx = (*txStore)(nil)

func (t *txStore) exec(ctx context.Context, action, q string, args ...any) (int64, error) {
	return t.db.Exec(ctx, t.tx, action, q, args...)
}

// Account gets or creates the account of key: a read, and only for an
// account not seen before an insert (which does nothing when a concurrent
// transaction created it first) and a second read.
func (t *txStore) Account(ctx context.Context, key payments.AccountKey, now time.Time) (*payments.Account, error) {
	read := func() (*payments.Account, error) {
		return scanAccount(t.queryRow(ctx,
			"SELECT "+accountColumns+" FROM payments_accounts WHERE kind = $1 AND owner_id = $2 AND currency = $3 AND shard = $4",
			string(key.Kind), key.Owner, key.Currency, key.Shard))
	}
	a, err := read()
	if strata.ErrorCode(err) != strata.CodeNotFound {
		return a, err
	}
	id := strata.NewID("acc", key.Shard, now)
	if _, err := t.exec(ctx, "create account",
		`INSERT INTO payments_accounts (id, shard, kind, owner_id, currency, balance, version, created_at, updated_at)
		 VALUES ($1, $2, $3, $4, $5, 0, 0, $6, $6) ON CONFLICT (kind, owner_id, currency, shard) DO NOTHING`,
		id, key.Shard, string(key.Kind), key.Owner, key.Currency, sqldb.Millis(now)); err != nil {
		return nil, err
	}
	return read()
}

// Apply is one conditional update: the guard and the bounds are checked
// by the statement that writes, so concurrent spends cannot overdraw.
func (t *txStore) Apply(ctx context.Context, id strata.ID, delta int64, allowNegative bool, now time.Time) error {
	lo, hi := payments.BalanceBounds(delta)
	// A debit needs balance >= -delta; a credit never makes a balance
	// negative (it may shrink a recorded deficit). No expression here can
	// overflow: the bounds are computed in Go.
	need := int64(math.MinInt64)
	if delta < 0 {
		need = -delta
	}
	n, err := t.exec(ctx, "apply entry",
		`UPDATE payments_accounts SET balance = balance + $1, version = version + 1, updated_at = $2
		 WHERE id = $3 AND balance >= $4 AND balance <= $5
		   AND (kind IN ('external', 'transit') OR $6 OR balance >= $7)`,
		delta, sqldb.Millis(now), id, lo, hi, allowNegative, need)
	if err != nil {
		return err
	}
	if n == 1 {
		return nil
	}
	var balance int64
	if err := t.queryRow(ctx, "SELECT balance FROM payments_accounts WHERE id = $1", id).Scan(&balance); err != nil {
		return fmt.Errorf("apply entry to %s: %w", id, sqldb.Translate(err))
	}
	if balance < lo || balance > hi {
		return &strata.Error{Code: strata.CodeUnprocessable, Reason: "amount_overflow", Message: "the amount would overflow a balance"}
	}
	return &strata.Error{Code: strata.CodePaymentRequired, Reason: "insufficient_funds", Message: "the wallet does not hold enough money"}
}

// InsertTransfer writes the transfer row and its entries.
func (t *txStore) InsertTransfer(ctx context.Context, tr *payments.Transfer) error {
	_, err := t.exec(ctx, "insert transfer",
		`INSERT INTO payments_transfers (id, shard, type, currency, amount, intent_id, purchase_id, item_id, reverses_id, created_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
		tr.ID, tr.Shard, string(tr.Type), tr.Currency, tr.Amount, tr.IntentID, tr.PurchaseID, tr.ItemID, tr.ReversesID,
		sqldb.Millis(tr.CreatedAt))
	if sqldb.IsUniqueViolation(err) {
		return &strata.Error{Code: strata.CodeConflict, Reason: "duplicate_transfer", Message: "this transfer was already made"}
	}
	if err != nil {
		return err
	}
	for _, e := range tr.Entries {
		if _, err := t.exec(ctx, "insert entry",
			"INSERT INTO payments_entries (transfer_id, account_id, amount) VALUES ($1, $2, $3)",
			tr.ID, e.Account, e.Amount); err != nil {
			return err
		}
	}
	return nil
}

func (t *txStore) LivePurchase(ctx context.Context, buyer, item strata.ID) (*payments.Purchase, error) {
	p, err := scanPurchase(t.queryRow(ctx, "SELECT "+purchaseColumns+
		" FROM payments_purchases WHERE buyer_id = $1 AND item_id = $2 AND status = 'completed'"+t.forUpdate, buyer, item))
	if err != nil {
		return nil, fmt.Errorf("read purchase: %w", err)
	}
	return p, nil
}

func (t *txStore) InsertPurchase(ctx context.Context, p *payments.Purchase) error {
	shard, _ := p.ID.Shard()
	_, err := t.exec(ctx, "insert purchase",
		`INSERT INTO payments_purchases (id, shard, buyer_id, item_id, creator_id, price_amount, currency, fee_amount, status,
		   transfer_id, fee_transfer_id, created_at, settlement)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		p.ID, shard, p.BuyerID, p.ItemID, p.CreatorID, p.Price.Amount, p.Price.Currency, p.Fee, string(p.Status),
		p.TransferID, p.FeeTransferID, sqldb.Millis(p.CreatedAt), string(p.Settlement.OrLocal()))
	if sqldb.IsUniqueViolation(err) {
		return &strata.Error{Code: strata.CodeConflict, Reason: "already_purchased", Message: "you already bought this item"}
	}
	if err != nil {
		return err
	}
	return nil
}

func (t *txStore) GrantEntitlement(ctx context.Context, user, item, purchase strata.ID, now time.Time) error {
	_, err := t.exec(ctx, "grant entitlement",
		`INSERT INTO payments_entitlements (user_id, item_id, purchase_id, created_at) VALUES ($1, $2, $3, $4)
		 ON CONFLICT (user_id, item_id) DO UPDATE SET purchase_id = $3, created_at = $4`,
		user, item, purchase, sqldb.Millis(now))
	return err
}

func (t *txStore) Outbox(ctx context.Context, ev queue.Event) error {
	_, err := queue.WriteOutbox(ctx, t.tx, t.shard, ev, t.clock.Now())
	return err
}

const intentColumns = `id, user_id, amount, currency, status, failure_code, attempt, charge_id, card_brand, card_last4,
	transfer_id, idempotency_key, created_at, updated_at`

func scanIntent(row interface{ Scan(...any) error }) (*payments.Intent, error) {
	var in payments.Intent
	var status string
	var created, updated int64
	if err := row.Scan(&in.ID, &in.UserID, &in.Amount.Amount, &in.Amount.Currency, &status, &in.FailureCode, &in.Attempt,
		&in.ChargeID, &in.CardBrand, &in.CardLast4, &in.TransferID, &in.IdempotencyKey, &created, &updated); err != nil {
		return nil, fmt.Errorf("read intent: %w", sqldb.Translate(err))
	}
	in.Status = payments.IntentStatus(status)
	in.CreatedAt, in.UpdatedAt = sqldb.FromMillis(created), sqldb.FromMillis(updated)
	return &in, nil
}

// Intent reads an intent from the primary of its database.
func (s *Store) Intent(ctx context.Context, id strata.ID) (*payments.Intent, error) {
	db, err := s.router.ForID(id)
	if err != nil {
		return nil, errNotFound
	}
	return scanIntent(db.Primary().QueryRowContext(ctx, "SELECT "+intentColumns+" FROM payments_intents WHERE id = $1", id))
}

func (t *txStore) InsertIntent(ctx context.Context, in *payments.Intent) error {
	shard, _ := in.ID.Shard()
	_, err := t.exec(ctx, "insert intent",
		`INSERT INTO payments_intents (id, shard, user_id, amount, currency, status, failure_code, attempt, charge_id,
		   card_brand, card_last4, transfer_id, idempotency_key, created_at, updated_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		in.ID, shard, in.UserID, in.Amount.Amount, in.Amount.Currency, string(in.Status), in.FailureCode, in.Attempt,
		in.ChargeID, in.CardBrand, in.CardLast4, in.TransferID, in.IdempotencyKey, sqldb.Millis(in.CreatedAt), sqldb.Millis(in.UpdatedAt))
	if sqldb.IsUniqueViolation(err) {
		return &strata.Error{Code: strata.CodeConflict, Reason: "duplicate_intent", Message: "a top-up was already made with this key"}
	}
	if err != nil {
		return err
	}
	return nil
}

func (t *txStore) IntentByKey(ctx context.Context, user strata.ID, key string) (*payments.Intent, error) {
	return scanIntent(t.queryRow(ctx, "SELECT "+intentColumns+
		" FROM payments_intents WHERE user_id = $1 AND idempotency_key = $2 AND idempotency_key <> ''", user, key))
}

func (t *txStore) LockAccounts(ctx context.Context, ids []strata.ID) error {
	if t.forUpdate == "" || len(ids) == 0 {
		return nil // SQLite: the transaction holds the only write lock already
	}
	for _, id := range ids {
		var got string
		if err := t.queryRow(ctx, "SELECT id FROM payments_accounts WHERE id = $1"+t.forUpdate, id).Scan(&got); err != nil {
			return fmt.Errorf("lock account %s: %w", id, sqldb.Translate(err))
		}
	}
	return nil
}

func (t *txStore) IntentForUpdate(ctx context.Context, id strata.ID) (*payments.Intent, error) {
	return scanIntent(t.queryRow(ctx, "SELECT "+intentColumns+" FROM payments_intents WHERE id = $1"+t.forUpdate, id))
}

func (t *txStore) UpdateIntent(ctx context.Context, in *payments.Intent) error {
	n, err := t.exec(ctx, "update intent",
		`UPDATE payments_intents SET status = $2, failure_code = $3, attempt = $4, charge_id = $5, card_brand = $6,
		   card_last4 = $7, transfer_id = $8, updated_at = $9 WHERE id = $1`,
		in.ID, string(in.Status), in.FailureCode, in.Attempt, in.ChargeID, in.CardBrand, in.CardLast4, in.TransferID,
		sqldb.Millis(in.UpdatedAt))
	if err == nil && n == 0 {
		return errNotFound
	}
	return err
}

func (t *txStore) PurchaseForUpdate(ctx context.Context, id strata.ID) (*payments.Purchase, error) {
	p, err := scanPurchase(t.queryRow(ctx, "SELECT "+purchaseColumns+" FROM payments_purchases WHERE id = $1"+t.forUpdate, id))
	if err != nil {
		return nil, fmt.Errorf("read purchase %s: %w", id, err)
	}
	return p, nil
}

func (t *txStore) MarkRefunded(ctx context.Context, id strata.ID, at time.Time, deficit int64, reason string) error {
	n, err := t.exec(ctx, "mark refunded",
		`UPDATE payments_purchases SET status = 'refunded', refunded_at = $2, refund_deficit = $3, refund_reason = $4
		 WHERE id = $1 AND status = 'completed'`,
		id, sqldb.Millis(at), deficit, reason)
	if err == nil && n == 0 {
		return &strata.Error{Code: strata.CodeConflict, Reason: "already_refunded", Message: "the purchase was already refunded"}
	}
	return err
}

func (t *txStore) Receipt(ctx context.Context, purchase strata.ID) (*payments.Receipt, error) {
	var r payments.Receipt
	var state string
	var created int64
	var refunded sql.NullInt64
	err := t.queryRow(ctx, `SELECT purchase_id, state, credit_transfer_id, fee_transfer_id, cause, creator_id, currency,
		refunded_at, refund_deficit, created_at
		FROM payments_saga_receipts WHERE purchase_id = $1`+t.forUpdate, purchase).Scan(
		&r.PurchaseID, &state, &r.CreditTransferID, &r.FeeTransferID, &r.Cause, &r.CreatorID, &r.Currency,
		&refunded, &r.Deficit, &created)
	if err != nil {
		return nil, fmt.Errorf("read receipt of %s: %w", purchase, sqldb.Translate(err))
	}
	r.State, r.CreatedAt, r.RefundedAt = payments.ReceiptState(state), sqldb.FromMillis(created), sqldb.FromNullMillis(refunded)
	return &r, nil
}

func (t *txStore) MarkReceiptRefunded(ctx context.Context, purchase strata.ID, at time.Time, deficit int64) error {
	n, err := t.exec(ctx, "mark receipt refunded",
		"UPDATE payments_saga_receipts SET refunded_at = $2, refund_deficit = $3 WHERE purchase_id = $1 AND refunded_at IS NULL",
		purchase, sqldb.Millis(at), deficit)
	if err == nil && n == 0 {
		return &strata.Error{Code: strata.CodeConflict, Reason: "already_refunded", Message: "the purchase was already refunded"}
	}
	return err
}

func (t *txStore) MarkCredited(ctx context.Context, purchase strata.ID, at time.Time) error {
	_, err := t.exec(ctx, "mark credited",
		"UPDATE payments_purchases SET credited_at = $2 WHERE id = $1 AND credited_at IS NULL", purchase, sqldb.Millis(at))
	return err
}

func (t *txStore) InsertReceipt(ctx context.Context, r *payments.Receipt) error {
	n, err := t.exec(ctx, "insert receipt",
		`INSERT INTO payments_saga_receipts (purchase_id, state, credit_transfer_id, fee_transfer_id, cause, creator_id, currency, created_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (purchase_id) DO NOTHING`,
		r.PurchaseID, string(r.State), r.CreditTransferID, r.FeeTransferID, r.Cause, r.CreatorID, r.Currency, sqldb.Millis(r.CreatedAt))
	if err == nil && n == 0 {
		return &strata.Error{Code: strata.CodeConflict, Reason: "duplicate_receipt", Message: "the purchase's credit was already settled"}
	}
	return err
}

func (t *txStore) Entries(ctx context.Context, transfer strata.ID) ([]payments.Entry, error) {
	rows, err := t.tx.QueryContext(ctx, "SELECT account_id, amount FROM payments_entries WHERE transfer_id = $1 ORDER BY account_id", transfer)
	if err != nil {
		return nil, fmt.Errorf("read entries: %w", sqldb.Translate(err))
	}
	defer rows.Close()
	var out []payments.Entry
	for rows.Next() {
		var e payments.Entry
		if err := rows.Scan(&e.Account, &e.Amount); err != nil {
			return nil, fmt.Errorf("read entries: %w", sqldb.Translate(err))
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read entries: %w", sqldb.Translate(err))
	}
	if len(out) == 0 {
		return nil, errNotFound
	}
	return out, nil
}

func (t *txStore) RevokeEntitlement(ctx context.Context, user, item, purchase strata.ID) error {
	_, err := t.exec(ctx, "revoke entitlement",
		"DELETE FROM payments_entitlements WHERE user_id = $1 AND item_id = $2 AND purchase_id = $3", user, item, purchase)
	return err
}

const transferColumns = "t.id, t.shard, t.type, t.currency, t.amount, t.intent_id, t.purchase_id, t.item_id, t.reverses_id, t.created_at"

// Transfers reads the transfers touching an owner's accounts (or one
// account) from the primary of the owner's (the account's) database,
// newest first, with their entries.
func (s *Store) Transfers(ctx context.Context, owner, account, before strata.ID, limit int) ([]payments.Transfer, error) {
	key := owner
	if account != "" {
		key = account
	}
	db, err := s.router.ForID(key)
	if err != nil {
		return []payments.Transfer{}, nil
	}
	q := "SELECT " + transferColumns + " FROM payments_transfers t WHERE t.id IN (SELECT e.transfer_id FROM payments_entries e"
	args := []any{}
	if account != "" {
		args = append(args, account)
		q += " WHERE e.account_id = $1)"
	} else {
		args = append(args, owner)
		q += " JOIN payments_accounts a ON a.id = e.account_id WHERE a.owner_id = $1)"
	}
	if before != "" {
		args = append(args, before)
		q += fmt.Sprintf(" AND t.id < $%d", len(args))
	}
	q += fmt.Sprintf(" ORDER BY t.id DESC LIMIT %d", limit)
	rows, err := db.Primary().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read transfers: %w", sqldb.Translate(err))
	}
	out := []payments.Transfer{}
	index := map[strata.ID]int{}
	for rows.Next() {
		var t payments.Transfer
		var typ string
		var created int64
		if err := rows.Scan(&t.ID, &t.Shard, &typ, &t.Currency, &t.Amount, &t.IntentID, &t.PurchaseID, &t.ItemID, &t.ReversesID, &created); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read transfers: %w", sqldb.Translate(err))
		}
		t.Type, t.CreatedAt = payments.TransferType(typ), sqldb.FromMillis(created)
		index[t.ID] = len(out)
		out = append(out, t)
	}
	err = rows.Err()
	rows.Close()
	if err != nil || len(out) == 0 {
		return out, sqldb.Translate(err)
	}
	marks := make([]string, len(out))
	ids := make([]any, len(out))
	for i, t := range out {
		marks[i], ids[i] = fmt.Sprintf("$%d", i+1), t.ID
	}
	erows, err := db.Primary().QueryContext(ctx, "SELECT e.transfer_id, e.account_id, e.amount, a.kind, a.owner_id FROM payments_entries e"+
		" JOIN payments_accounts a ON a.id = e.account_id WHERE e.transfer_id IN ("+
		strings.Join(marks, ", ")+") ORDER BY e.transfer_id, e.amount", ids...)
	if err != nil {
		return nil, fmt.Errorf("read entries: %w", sqldb.Translate(err))
	}
	defer erows.Close()
	for erows.Next() {
		var tid strata.ID
		var e payments.Entry
		var kind string
		if err := erows.Scan(&tid, &e.Account, &e.Amount, &kind, &e.Owner); err != nil {
			return nil, fmt.Errorf("read entries: %w", sqldb.Translate(err))
		}
		e.Kind = payments.AccountKind(kind)
		i := index[tid]
		out[i].Entries = append(out[i].Entries, e)
	}
	return out, sqldb.Translate(erows.Err())
}
