package paymentssql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/payments"
	"github.com/stratadev/strata/internal/storage/sqldb"
)

var _ payments.Auditor = (*Store)(nil)

// Audit checks every database at once, each in one read transaction; see
// payments.Auditor.
func (s *Store) Audit(ctx context.Context, limit int) ([]payments.DatabaseReport, []payments.Violation, error) {
	type result struct {
		report     payments.DatabaseReport
		violations []payments.Violation
	}
	now := s.clock.Now()
	results, err := sqldb.Gather(ctx, s.router.DBs(), func(ctx context.Context, db *sqldb.DB) ([]result, error) {
		r, vs, err := auditDB(ctx, db, limit, now)
		if err != nil {
			return nil, fmt.Errorf("audit %s: %w", db.Name(), err)
		}
		return []result{{r, vs}}, nil
	})
	if err != nil {
		return nil, nil, err
	}
	reports := make([]payments.DatabaseReport, 0, len(results))
	var violations []payments.Violation
	for _, r := range results {
		reports = append(reports, r.report)
		violations = append(violations, r.violations...)
	}
	return reports, violations, nil
}

// snapshot begins the read transaction that every query of one audit runs
// in, so that the whole report describes the database at one instant:
// counts, sums and every check agree with each other, and a purchase that
// commits while the audit runs is seen by all of its queries or by none.
// (Each check is also a single statement, which keeps, say, a balance and
// the sum of its entries from being read at different instants even
// within one check.)
//
// On SQLite in WAL mode a read transaction (a deferred BEGIN, which the
// driver issues for a read-only transaction) takes its snapshot at its
// first read: it keeps reading the WAL only up to the last commit made
// before then, whatever the writer appends afterwards, until COMMIT.
// Every write of Strata commits all the rows of a transfer (entries,
// balances, purchase, entitlement, intent) at once, so a snapshot holds
// all of them or none. The audit reads through the reader pool: on SQLite
// it is the same file as the primary and sees every commit, while holding
// the single writer connection for the whole audit would stall every
// write of the process. (SQLite transactions are serializable; the driver
// takes no isolation level.)
//
// On PostgreSQL the audit runs on the primary (a replica may lag) in a
// REPEATABLE READ transaction, whose one snapshot, taken at its first
// statement, every later statement sees; READ COMMITTED would take a new
// snapshot per statement.
//
// The price: a long audit holds back SQLite's WAL checkpoint (the WAL
// grows until it ends) and PostgreSQL's vacuum horizon.
func snapshot(ctx context.Context, db *sqldb.DB) (*sql.Tx, error) {
	if db.Dialect() == sqldb.SQLite {
		return db.Reader().BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	}
	return db.Writer().BeginTx(ctx, &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead})
}

// auditDB runs every check on one database in one snapshot.
func auditDB(ctx context.Context, db *sqldb.DB, limit int, now time.Time) (payments.DatabaseReport, []payments.Violation, error) {
	rep := payments.DatabaseReport{Database: db.Name(), Sums: []strata.Money{}, Found: map[string]int64{}}
	tx, err := snapshot(ctx, db)
	if err != nil {
		return rep, nil, fmt.Errorf("begin: %w", sqldb.Translate(err))
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	err = tx.QueryRowContext(ctx, `SELECT
		(SELECT COUNT(*) FROM payments_accounts), (SELECT COUNT(*) FROM payments_transfers),
		(SELECT COUNT(*) FROM payments_entries), (SELECT COUNT(*) FROM payments_purchases),
		(SELECT COUNT(*) FROM payments_intents)`).Scan(&rep.Accounts, &rep.Transfers, &rep.Entries, &rep.Purchases, &rep.Intents)
	if err != nil {
		return rep, nil, fmt.Errorf("count rows: %w", sqldb.Translate(err))
	}
	rows, err := tx.QueryContext(ctx, "SELECT currency, CAST(SUM(balance) AS BIGINT) FROM payments_accounts GROUP BY currency ORDER BY currency")
	if err != nil {
		return rep, nil, fmt.Errorf("sum balances: %w", sqldb.Translate(err))
	}
	for rows.Next() {
		var m strata.Money
		if err := rows.Scan(&m.Currency, &m.Amount); err != nil {
			rows.Close()
			return rep, nil, fmt.Errorf("sum balances: %w", sqldb.Translate(err))
		}
		rep.Sums = append(rep.Sums, m)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return rep, nil, fmt.Errorf("sum balances: %w", sqldb.Translate(err))
	}
	var out []payments.Violation
	for _, c := range checks {
		vs, n, err := c.run(ctx, tx, limit, now)
		if err != nil {
			return rep, nil, fmt.Errorf("check %s: %w", c.invariant, err)
		}
		for i := range vs {
			vs[i].Invariant, vs[i].Database = c.invariant, db.Name()
		}
		out = append(out, vs...)
		if n > 0 {
			rep.Found[c.invariant] += n
		}
	}
	if err := tx.Commit(); err != nil {
		return rep, nil, fmt.Errorf("commit: %w", sqldb.Translate(err))
	}
	return rep, out, nil
}

// check is one set-based query that returns the rows breaking an
// invariant, ordered; row turns one into a violation. A check with
// a bound set takes, as $1, the time (unix ms) before which an unsettled
// row (an intent, a cross-database credit) is stuck: now minus the bound.
type check struct {
	invariant string
	query     string
	row       func(scan func(...any) error) (payments.Violation, error)
	bound     time.Duration
}

// run lists at most limit violations and counts them all: the count is a
// second query, run only when the list was cut.
func (c check) run(ctx context.Context, tx *sql.Tx, limit int, now time.Time) ([]payments.Violation, int64, error) {
	var args []any
	if c.bound > 0 {
		args = append(args, sqldb.Millis(now.Add(-c.bound)))
	}
	rows, err := tx.QueryContext(ctx, fmt.Sprintf("%s LIMIT %d", c.query, limit+1), args...)
	if err != nil {
		return nil, 0, sqldb.Translate(err)
	}
	defer rows.Close()
	var out []payments.Violation
	more := false
	for rows.Next() {
		if len(out) == limit {
			more = true
			break
		}
		v, err := c.row(rows.Scan)
		if err != nil {
			return nil, 0, sqldb.Translate(err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, sqldb.Translate(err)
	}
	rows.Close()
	if !more {
		return out, int64(len(out)), nil
	}
	var n int64
	if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM ("+c.query+") AS x", args...).Scan(&n); err != nil {
		return nil, 0, sqldb.Translate(err)
	}
	return out, n, nil
}

// ids drops the empty ones.
func ids(in ...strata.ID) []strata.ID {
	out := make([]strata.ID, 0, len(in))
	for _, id := range in {
		if id != "" {
			out = append(out, id)
		}
	}
	return out
}

// The checks, in the order of payments.Invariants. Each scans one table
// in primary-key order once, probing an index per row: the cost grows
// with the ledger, the memory does not. GROUP BY t.id, a primary key,
// lets PostgreSQL select the transfer's other columns and SQLite group
// without a temporary table; a value computed in the select list (say,
// the sum of an account's entries) is computed again only for the rows
// that break the invariant. The partial index of reversals is usable
// because the queries repeat its condition (a non-empty reverses_id).
// Sums are cast to BIGINT, which PostgreSQL's SUM of a BIGINT is not (it
// is NUMERIC).
var checks = []check{
	{
		invariant: payments.InvariantTransferBalanced,
		query: `SELECT t.id, t.currency, t.amount, COUNT(e.account_id),
			CAST(COALESCE(SUM(e.amount), 0) AS BIGINT),
			CAST(COALESCE(SUM(CASE WHEN e.amount > 0 THEN e.amount ELSE 0 END), 0) AS BIGINT),
			COALESCE(SUM(CASE WHEN a.currency <> t.currency THEN 1 ELSE 0 END), 0)
		FROM payments_transfers t
		LEFT JOIN payments_entries e ON e.transfer_id = t.id
		LEFT JOIN payments_accounts a ON a.id = e.account_id
		GROUP BY t.id
		HAVING COUNT(e.account_id) < 2 OR COALESCE(SUM(e.amount), 0) <> 0
			OR COALESCE(SUM(CASE WHEN e.amount > 0 THEN e.amount ELSE 0 END), 0) <> t.amount
			OR COALESCE(SUM(CASE WHEN a.currency <> t.currency THEN 1 ELSE 0 END), 0) > 0
		ORDER BY t.id`,
		row: func(scan func(...any) error) (payments.Violation, error) {
			var id strata.ID
			var currency string
			var amount, n, sum, positive, foreign int64
			if err := scan(&id, &currency, &amount, &n, &sum, &positive, &foreign); err != nil {
				return payments.Violation{}, err
			}
			var what []string
			if n < 2 {
				what = append(what, fmt.Sprintf("%d entries, fewer than two", n))
			}
			if sum != 0 {
				what = append(what, fmt.Sprintf("entries sum to %d", sum))
			}
			if positive != amount {
				what = append(what, fmt.Sprintf("positive entries total %d, the transfer says %d", positive, amount))
			}
			if foreign > 0 {
				what = append(what, fmt.Sprintf("%d entries on accounts of another currency", foreign))
			}
			return payments.Violation{Currency: currency, IDs: ids(id), Detail: strings.Join(what, "; ")}, nil
		},
	},
	{
		invariant: payments.InvariantNonNegative,
		query: `SELECT a.id, a.kind, a.owner_id, a.currency, a.balance, CAST(COALESCE(d.deficit, 0) AS BIGINT)
		FROM payments_accounts a
		LEFT JOIN (SELECT creator_id, currency, SUM(deficit) AS deficit FROM (
				SELECT creator_id, currency, refund_deficit AS deficit FROM payments_purchases
				WHERE status = 'refunded' AND refund_deficit > 0 AND settlement = 'local'
				UNION ALL
				-- A cross-database refund records its deficit beside the earnings.
				SELECT creator_id, currency, refund_deficit FROM payments_saga_receipts WHERE refund_deficit > 0) u
			GROUP BY creator_id, currency) d
			ON a.kind = 'earnings' AND d.creator_id = a.owner_id AND d.currency = a.currency
		WHERE a.kind NOT IN ('external', 'transit') AND a.balance < 0 AND a.balance + COALESCE(d.deficit, 0) < 0
		ORDER BY a.id`,
		row: func(scan func(...any) error) (payments.Violation, error) {
			var id, owner strata.ID
			var kind, currency string
			var balance, deficit int64
			if err := scan(&id, &kind, &owner, &currency, &balance, &deficit); err != nil {
				return payments.Violation{}, err
			}
			detail := fmt.Sprintf("%s balance is %d", kind, balance)
			if kind == string(payments.KindEarnings) {
				detail += fmt.Sprintf("; forced refunds recorded a deficit of %d", deficit)
			}
			return payments.Violation{Currency: currency, IDs: ids(id, owner), Detail: detail}, nil
		},
	},
	{
		invariant: payments.InvariantBalanceEntries,
		query: `SELECT id, owner_id, currency, balance, total FROM (
			SELECT a.id, a.owner_id, a.currency, a.balance,
				(SELECT CAST(COALESCE(SUM(e.amount), 0) AS BIGINT) FROM payments_entries e WHERE e.account_id = a.id) AS total
			FROM payments_accounts a) x
		WHERE balance <> total
		ORDER BY id`,
		row: func(scan func(...any) error) (payments.Violation, error) {
			var id, owner strata.ID
			var currency string
			var balance, total int64
			if err := scan(&id, &owner, &currency, &balance, &total); err != nil {
				return payments.Violation{}, err
			}
			return payments.Violation{Currency: currency, IDs: ids(id, owner),
				Detail: fmt.Sprintf("balance is %d, its entries sum to %d", balance, total)}, nil
		},
	},
	{
		invariant: payments.InvariantPurchaseTransfers,
		query: `SELECT id, buyer_id, item_id, currency, transfer_id, fee_transfer_id, sale_ok, fee_ok FROM (
			SELECT p.id, p.buyer_id, p.item_id, p.currency, p.transfer_id, p.fee_transfer_id,
				CASE WHEN EXISTS (SELECT 1 FROM payments_transfers t WHERE t.id = p.transfer_id AND t.type = 'purchase'
					AND t.purchase_id = p.id AND t.currency = p.currency AND t.amount = p.price_amount) THEN 1 ELSE 0 END AS sale_ok,
				CASE WHEN p.fee_amount <= 0 OR p.settlement = 'saga' OR EXISTS (SELECT 1 FROM payments_transfers t WHERE t.id = p.fee_transfer_id
					AND t.type = 'fee' AND t.purchase_id = p.id AND t.currency = p.currency AND t.amount = p.fee_amount)
					THEN 1 ELSE 0 END AS fee_ok
			FROM payments_purchases p) x
		WHERE sale_ok = 0 OR fee_ok = 0
		ORDER BY id`,
		row: func(scan func(...any) error) (payments.Violation, error) {
			var id, buyer, item, sale, cut strata.ID
			var currency string
			var saleOK, feeOK int
			if err := scan(&id, &buyer, &item, &currency, &sale, &cut, &saleOK, &feeOK); err != nil {
				return payments.Violation{}, err
			}
			var what []string
			if saleOK == 0 {
				what = append(what, fmt.Sprintf("no purchase transfer %q of the price naming the purchase", sale))
			}
			if feeOK == 0 {
				what = append(what, fmt.Sprintf("no fee transfer %q of the fee naming the purchase", cut))
			}
			return payments.Violation{Currency: currency, IDs: ids(id, buyer, item, sale, cut), Detail: strings.Join(what, "; ")}, nil
		},
	},
	{
		invariant: payments.InvariantPurchaseTransfers,
		query: `SELECT t.id, t.type, t.currency, t.purchase_id FROM payments_transfers t
		WHERE t.type IN ('purchase', 'fee') AND NOT EXISTS (SELECT 1 FROM payments_purchases p
			WHERE p.id = t.purchase_id AND (p.transfer_id = t.id OR p.fee_transfer_id = t.id))
		AND NOT EXISTS (SELECT 1 FROM payments_saga_receipts r
			WHERE r.purchase_id = t.purchase_id AND (r.credit_transfer_id = t.id OR r.fee_transfer_id = t.id))
		ORDER BY t.id`,
		row: func(scan func(...any) error) (payments.Violation, error) {
			var id, purchase strata.ID
			var typ, currency string
			if err := scan(&id, &typ, &currency, &purchase); err != nil {
				return payments.Violation{}, err
			}
			return payments.Violation{Currency: currency, IDs: ids(id, purchase),
				Detail: fmt.Sprintf("%s transfer of no purchase naming it", typ)}, nil
		},
	},
	{
		invariant: payments.InvariantPurchaseTransfers,
		query: `SELECT r.purchase_id, r.credit_transfer_id, r.fee_transfer_id FROM payments_saga_receipts r
		WHERE r.state = 'applied' AND (NOT EXISTS (SELECT 1 FROM payments_transfers t
				WHERE t.id = r.credit_transfer_id AND t.type = 'purchase' AND t.purchase_id = r.purchase_id)
			OR (r.fee_transfer_id <> '' AND NOT EXISTS (SELECT 1 FROM payments_transfers t
				WHERE t.id = r.fee_transfer_id AND t.type = 'fee' AND t.purchase_id = r.purchase_id)))
		ORDER BY r.purchase_id`,
		row: func(scan func(...any) error) (payments.Violation, error) {
			var purchase, credit, cut strata.ID
			if err := scan(&purchase, &credit, &cut); err != nil {
				return payments.Violation{}, err
			}
			return payments.Violation{IDs: ids(purchase, credit, cut),
				Detail: "applied cross-database credit without its credit or fee transfer naming the purchase"}, nil
		},
	},
	{
		invariant: payments.InvariantTransitAccounted,
		query: `SELECT currency, transit, sent, credited FROM (
			SELECT c.currency,
				(SELECT CAST(COALESCE(SUM(a.balance), 0) AS BIGINT) FROM payments_accounts a
					WHERE a.kind = 'transit' AND a.currency = c.currency) AS transit,
				(SELECT CAST(COALESCE(SUM(p.price_amount), 0) AS BIGINT) FROM payments_purchases p
					WHERE p.settlement = 'saga' AND p.status = 'completed' AND p.currency = c.currency) AS sent,
				(SELECT CAST(COALESCE(SUM(t.amount), 0) AS BIGINT) FROM payments_saga_receipts r
					JOIN payments_transfers t ON t.id = r.credit_transfer_id
					WHERE r.state = 'applied' AND t.currency = c.currency
						AND NOT EXISTS (SELECT 1 FROM payments_transfers v WHERE v.reverses_id = t.id)) AS credited
			FROM (SELECT DISTINCT currency FROM payments_accounts WHERE kind = 'transit') c) x
		WHERE transit <> sent - credited
		ORDER BY currency`,
		row: func(scan func(...any) error) (payments.Violation, error) {
			var currency string
			var transit, sent, credited int64
			if err := scan(&currency, &transit, &sent, &credited); err != nil {
				return payments.Violation{}, err
			}
			return payments.Violation{Currency: currency, IDs: []strata.ID{},
				Detail: fmt.Sprintf("the transit accounts hold %d; cross-database purchases sent %d and credits received %d say %d",
					transit, sent, credited, sent-credited)}, nil
		},
	},
	{
		invariant: payments.InvariantCreditSettled,
		bound:     payments.SagaSettleBound,
		query: `SELECT p.id, p.buyer_id, p.creator_id, p.currency, p.price_amount FROM payments_purchases p
		WHERE p.settlement = 'saga' AND p.status = 'completed' AND p.credited_at IS NULL AND p.created_at < $1
		ORDER BY p.id`,
		row: func(scan func(...any) error) (payments.Violation, error) {
			var id, buyer, creator strata.ID
			var currency string
			var amount int64
			if err := scan(&id, &buyer, &creator, &currency, &amount); err != nil {
				return payments.Violation{}, err
			}
			return payments.Violation{Currency: currency, IDs: ids(id, buyer, creator),
				Detail: fmt.Sprintf("the creator's credit of %d is not confirmed after %s: see the saga worker's dead letters", amount, payments.SagaSettleBound)}, nil
		},
	},
	{
		invariant: payments.InvariantPurchaseEntitlement,
		query: `SELECT p.id, p.buyer_id, p.item_id, p.currency, p.status FROM payments_purchases p
		WHERE (p.status = 'completed') <> EXISTS (SELECT 1 FROM payments_entitlements e
			WHERE e.user_id = p.buyer_id AND e.item_id = p.item_id AND e.purchase_id = p.id)
		ORDER BY p.id`,
		row: func(scan func(...any) error) (payments.Violation, error) {
			var id, buyer, item strata.ID
			var currency, status string
			if err := scan(&id, &buyer, &item, &currency, &status); err != nil {
				return payments.Violation{}, err
			}
			detail := "completed purchase without its entitlement"
			if status != string(payments.PurchaseCompleted) {
				detail = status + " purchase still entitles its buyer"
			}
			return payments.Violation{Currency: currency, IDs: ids(id, buyer, item), Detail: detail}, nil
		},
	},
	{
		invariant: payments.InvariantPurchaseEntitlement,
		query: `SELECT e.purchase_id, e.user_id, e.item_id FROM payments_entitlements e
		WHERE NOT EXISTS (SELECT 1 FROM payments_purchases p
			WHERE p.id = e.purchase_id AND p.buyer_id = e.user_id AND p.item_id = e.item_id)
		ORDER BY e.user_id, e.item_id`,
		row: func(scan func(...any) error) (payments.Violation, error) {
			var purchase, user, item strata.ID
			if err := scan(&purchase, &user, &item); err != nil {
				return payments.Violation{}, err
			}
			return payments.Violation{IDs: ids(purchase, user, item), Detail: "entitlement of no purchase of this buyer and item"}, nil
		},
	},
	{
		invariant: payments.InvariantRefundReversals,
		query: `SELECT id, buyer_id, item_id, currency, status, transfer_id, fee_transfer_id, fee_amount, sale_rev, fee_rev FROM (
			SELECT p.id, p.buyer_id, p.item_id, p.currency, p.status, p.transfer_id, p.fee_transfer_id,
				CASE WHEN p.settlement = 'saga' THEN 0 ELSE p.fee_amount END AS fee_amount,
				CASE WHEN p.transfer_id <> '' AND EXISTS (SELECT 1 FROM payments_transfers r
					WHERE r.reverses_id = p.transfer_id AND r.reverses_id <> '') THEN 1 ELSE 0 END AS sale_rev,
				CASE WHEN p.fee_transfer_id <> '' AND EXISTS (SELECT 1 FROM payments_transfers r
					WHERE r.reverses_id = p.fee_transfer_id AND r.reverses_id <> '') THEN 1 ELSE 0 END AS fee_rev
			FROM payments_purchases p) x
		WHERE (status = 'refunded' AND (sale_rev = 0 OR (fee_amount > 0 AND fee_rev = 0)))
			OR (status <> 'refunded' AND (sale_rev = 1 OR fee_rev = 1))
		ORDER BY id`,
		row: func(scan func(...any) error) (payments.Violation, error) {
			var id, buyer, item, sale, cut strata.ID
			var currency, status string
			var fee int64
			var saleRev, feeRev int
			if err := scan(&id, &buyer, &item, &currency, &status, &sale, &cut, &fee, &saleRev, &feeRev); err != nil {
				return payments.Violation{}, err
			}
			var what []string
			if status == string(payments.PurchaseRefunded) {
				if saleRev == 0 {
					what = append(what, fmt.Sprintf("refunded purchase without a reversal of its purchase transfer %q", sale))
				}
				if fee > 0 && feeRev == 0 {
					what = append(what, fmt.Sprintf("refunded purchase without a reversal of its fee transfer %q", cut))
				}
			} else {
				what = append(what, status+" purchase whose transfers are reversed")
			}
			return payments.Violation{Currency: currency, IDs: ids(id, buyer, item, sale, cut), Detail: strings.Join(what, "; ")}, nil
		},
	},
	{
		invariant: payments.InvariantRefundReversals,
		query: `SELECT r.id, r.currency, r.reverses_id FROM payments_transfers r
		WHERE r.reverses_id <> '' AND NOT EXISTS (SELECT 1 FROM payments_transfers t WHERE t.id = r.reverses_id)
		ORDER BY r.id`,
		row: func(scan func(...any) error) (payments.Violation, error) {
			var id, reversed strata.ID
			var currency string
			if err := scan(&id, &currency, &reversed); err != nil {
				return payments.Violation{}, err
			}
			return payments.Violation{Currency: currency, IDs: ids(id, reversed), Detail: "reversal of a transfer that does not exist"}, nil
		},
	},
	{
		invariant: payments.InvariantTopUpTransfer,
		query: `SELECT i.id, i.user_id, i.amount, i.currency, i.transfer_id FROM payments_intents i
		WHERE i.status = 'succeeded' AND NOT EXISTS (SELECT 1 FROM payments_transfers t
			WHERE t.intent_id = i.id AND t.type = 'topup' AND t.id = i.transfer_id
				AND t.amount = i.amount AND t.currency = i.currency)
		ORDER BY i.id`,
		row: func(scan func(...any) error) (payments.Violation, error) {
			var id, user, transfer strata.ID
			var amount int64
			var currency string
			if err := scan(&id, &user, &amount, &currency, &transfer); err != nil {
				return payments.Violation{}, err
			}
			return payments.Violation{Currency: currency, IDs: ids(id, user, transfer),
				Detail: fmt.Sprintf("succeeded intent without its top-up transfer %q of %d", transfer, amount)}, nil
		},
	},
	{
		invariant: payments.InvariantTopUpTransfer,
		query: `SELECT t.id, t.currency, t.intent_id FROM payments_transfers t
		WHERE t.type = 'topup' AND NOT EXISTS (SELECT 1 FROM payments_intents i
			WHERE i.id = t.intent_id AND i.status = 'succeeded')
		ORDER BY t.id`,
		row: func(scan func(...any) error) (payments.Violation, error) {
			var id, intent strata.ID
			var currency string
			if err := scan(&id, &currency, &intent); err != nil {
				return payments.Violation{}, err
			}
			return payments.Violation{Currency: currency, IDs: ids(id, intent), Detail: "top-up transfer of no succeeded intent"}, nil
		},
	},
	{
		invariant: payments.InvariantIntentSettled,
		bound:     payments.IntentSettleBound,
		query: `SELECT i.id, i.user_id, i.amount, i.currency, i.charge_id FROM payments_intents i
		WHERE i.status = 'processing' AND i.updated_at < $1
		ORDER BY i.id`,
		row: func(scan func(...any) error) (payments.Violation, error) {
			var id, user strata.ID
			var amount int64
			var currency, charge string
			if err := scan(&id, &user, &amount, &currency, &charge); err != nil {
				return payments.Violation{}, err
			}
			return payments.Violation{Currency: currency, IDs: ids(id, user),
				Detail: fmt.Sprintf("processing for over %s (amount %d, charge %q): settle it by hand", payments.IntentSettleBound, amount, charge)}, nil
		},
	},
}
