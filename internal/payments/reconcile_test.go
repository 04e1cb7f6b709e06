package payments_test

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/payments"
	"github.com/stratadev/strata/internal/payments/paymentssql"
	"github.com/stratadev/strata/internal/payments/provider"
	"github.com/stratadev/strata/internal/storage/sqldb"
	"github.com/stretchr/testify/require"
)

// ledger is a small, clean ledger to damage: a top-up by card, a
// purchase, and a refunded purchase.
type ledger struct {
	h                *harness
	buyer, creator   user
	admin            user
	intent           *payments.Intent
	purchase         *payments.Purchase
	refunded         *payments.Purchase
	buyerShard       int
	creatorShard     int
	db               *sqldb.DB // the buyer's and creator's database
	otherDB          *sqldb.DB // the other database, with a ledger of its own
	otherBuyerIntent *payments.Intent
}

// newLedger builds a clean ledger over two databases (shards 0-7 and
// 8-15).
func newLedger(t *testing.T) *ledger {
	t.Helper()
	h := newHarness(t, 2)
	l := &ledger{h: h, buyerShard: 3, creatorShard: 5}
	l.buyer, l.creator = h.newUser(strata.RoleBuyer, l.buyerShard), h.newUser(strata.RoleCreator, l.creatorShard)
	l.admin = h.newUser(strata.RoleAdmin, 0)
	l.db, l.otherDB = h.router.Shard(l.buyerShard), h.router.Shard(12)
	l.intent = l.cardTopUp(l.buyer, 5000, "USD")
	l.purchase = l.buy(l.buyer, l.creator, 800)
	l.refunded = l.buy(l.buyer, l.creator, 400)
	_, err := h.svc.Refund(l.creator.ctx(), l.refunded.ID, false)
	require.NoError(t, err)

	other, seller := h.newUser(strata.RoleBuyer, 12), h.newUser(strata.RoleCreator, 14)
	l.otherBuyerIntent = l.cardTopUp(other, 3000, "EUR")
	l.buyIn(other, seller, 1000, "EUR")
	return l
}

// visa is a card the test network charges successfully.
var visa = provider.Card{Number: provider.TestCardSucceeds, ExpMonth: 12, ExpYear: 2099, CVC: "123"}

// cardTopUp tops u up through the card network, so that an intent
// backs the top-up transfer.
func (l *ledger) cardTopUp(u user, amount int64, currency string) *payments.Intent {
	l.h.t.Helper()
	in, err := l.h.svc.TopUp(u.ctx(), strata.Money{Amount: amount, Currency: currency}, visa)
	require.NoError(l.h.t, err)
	require.Equal(l.h.t, payments.IntentSucceeded, in.Status)
	return in
}

func (l *ledger) buy(buyer, creator user, price int64) *payments.Purchase {
	return l.buyIn(buyer, creator, price, "USD")
}

func (l *ledger) buyIn(buyer, creator user, price int64, currency string) *payments.Purchase {
	l.h.t.Helper()
	p, err := l.h.svc.Buy(buyer.ctx(), l.h.item(creator, price, currency))
	require.NoError(l.h.t, err)
	return p
}

// exec runs statements on db outside the service, as damage would.
func exec(t *testing.T, db *sqldb.DB, q string, args ...any) {
	t.Helper()
	_, err := db.Writer().Exec(q, args...)
	require.NoError(t, err, "%s", q)
}

// accountID returns the id of the account of key.
func (l *ledger) accountID(kind payments.AccountKind, owner strata.ID, currency string, shard int) strata.ID {
	l.h.t.Helper()
	var id strata.ID
	require.NoError(l.h.t, l.db.Writer().QueryRow(
		"SELECT id FROM payments_accounts WHERE kind = $1 AND owner_id = $2 AND currency = $3 AND shard = $4",
		string(kind), owner, currency, shard).Scan(&id))
	return id
}

// rawTransfer writes a balanced transfer and its balances directly, as a
// payout or a hand-made correction would: nothing checks the guards.
func (l *ledger) rawTransfer(typ payments.TransferType, entries ...payments.Entry) strata.ID {
	l.h.t.Helper()
	id := strata.NewID("trf", l.buyerShard, l.h.clock.Now())
	var positive int64
	for _, e := range entries {
		positive += max(e.Amount, 0)
	}
	err := l.db.Tx(context.Background(), func(tx *sql.Tx) error {
		if _, err := tx.Exec("INSERT INTO payments_transfers (id, shard, type, currency, amount, created_at) VALUES ($1, $2, $3, 'USD', $4, 0)",
			id, l.buyerShard, string(typ), positive); err != nil {
			return err
		}
		for _, e := range entries {
			if _, err := tx.Exec("INSERT INTO payments_entries (transfer_id, account_id, amount) VALUES ($1, $2, $3)", id, e.Account, e.Amount); err != nil {
				return err
			}
			if _, err := tx.Exec("UPDATE payments_accounts SET balance = balance + $1 WHERE id = $2", e.Amount, e.Account); err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(l.h.t, err)
	return id
}

func verify(t *testing.T, svc *payments.Service) *payments.Report {
	t.Helper()
	r, err := svc.Verify(context.Background())
	require.NoError(t, err)
	return r
}

// found returns the invariants r reports, sorted.
func found(r *payments.Report) []string {
	var out []string
	for inv, n := range r.Found {
		if n > 0 {
			out = append(out, inv)
		}
	}
	slices.Sort(out)
	return out
}

// requireViolation asserts r lists a violation of invariant naming every
// id of want.
func requireViolation(t *testing.T, r *payments.Report, invariant string, want ...strata.ID) payments.Violation {
	t.Helper()
	for _, v := range r.Violations {
		if v.Invariant != invariant {
			continue
		}
		missing := false
		for _, id := range want {
			missing = missing || !slices.Contains(v.IDs, id)
		}
		if !missing {
			return v
		}
	}
	t.Fatalf("no %s violation naming %v in %+v", invariant, want, r.Violations)
	return payments.Violation{}
}

func TestVerifyCleanLedger(t *testing.T) {
	t.Parallel()
	l := newLedger(t)
	r := verify(t, l.h.svc)
	require.True(t, r.Clean(), "violations: %+v", r.Violations)
	require.Empty(t, r.Violations)
	require.Zero(t, r.Total())
	require.Len(t, r.Databases, 2)
	first, second := r.Databases[0], r.Databases[1]
	// Accounts: the buyer's wallet, the creator's earnings, revenue and
	// external. Transfers: the top-up, two purchases with their fees, two
	// refund transfers.
	require.Equal(t, int64(4), first.Accounts)
	require.Equal(t, int64(7), first.Transfers)
	require.Equal(t, int64(14), first.Entries)
	require.Equal(t, int64(2), first.Purchases)
	require.Equal(t, int64(1), first.Intents)
	require.Equal(t, []strata.Money{{Amount: 0, Currency: "USD"}}, first.Sums)
	require.Equal(t, int64(3), second.Transfers)
	require.Equal(t, []strata.Money{{Amount: 0, Currency: "EUR"}}, second.Sums)
	require.Equal(t, []strata.Money{{Amount: 0, Currency: "EUR"}, {Amount: 0, Currency: "USD"}}, r.Totals)
	l.h.checkInvariants()
}

func TestVerifyFindsEachViolation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		// damage breaks the ledger and returns the invariant it must be
		// reported under and the ids that violation must name.
		damage func(t *testing.T, l *ledger) (string, []strata.ID)
		// all is every invariant the damage breaks.
		all []string
	}{
		{
			name: "an entry's amount changed",
			damage: func(t *testing.T, l *ledger) (string, []strata.ID) {
				exec(t, l.db, "UPDATE payments_entries SET amount = amount + 1 WHERE transfer_id = $1 AND amount > 0", l.purchase.TransferID)
				return payments.InvariantTransferBalanced, []strata.ID{l.purchase.TransferID}
			},
			all: []string{payments.InvariantBalanceEntries, payments.InvariantTransferBalanced},
		},
		{
			name: "a transfer with a single entry",
			damage: func(t *testing.T, l *ledger) (string, []strata.ID) {
				wallet := l.accountID(payments.KindWallet, l.buyer.id, "USD", l.buyerShard)
				exec(t, l.db, "DELETE FROM payments_entries WHERE transfer_id = $1 AND account_id <> $2", l.intent.TransferID, wallet)
				exec(t, l.db, "UPDATE payments_entries SET amount = 0 WHERE transfer_id = $1", l.intent.TransferID)
				return payments.InvariantTransferBalanced, []strata.ID{l.intent.TransferID}
			},
			all: []string{payments.InvariantBalanceEntries, payments.InvariantTransferBalanced},
		},
		{
			name: "a balance changed without an entry",
			damage: func(t *testing.T, l *ledger) (string, []strata.ID) {
				exec(t, l.db, "UPDATE payments_accounts SET balance = balance + 7 WHERE kind = 'wallet' AND owner_id = $1", l.buyer.id)
				return payments.InvariantBalanceEntries, []strata.ID{l.accountID(payments.KindWallet, l.buyer.id, "USD", l.buyerShard), l.buyer.id}
			},
			all: []string{payments.InvariantBalanceEntries, payments.InvariantCurrencySum},
		},
		{
			name: "a wallet set negative with a matching entry",
			damage: func(t *testing.T, l *ledger) (string, []strata.ID) {
				wallet := l.accountID(payments.KindWallet, l.buyer.id, "USD", l.buyerShard)
				external := l.accountID(payments.KindExternal, "", "USD", l.buyerShard)
				out := l.h.wallet(l.buyer, "USD") + 250
				l.rawTransfer(payments.TransferCorrection, payments.Entry{Account: wallet, Amount: -out}, payments.Entry{Account: external, Amount: out})
				return payments.InvariantNonNegative, []strata.ID{wallet, l.buyer.id}
			},
			all: []string{payments.InvariantNonNegative},
		},
		{
			name: "a purchase's entitlement deleted",
			damage: func(t *testing.T, l *ledger) (string, []strata.ID) {
				exec(t, l.db, "DELETE FROM payments_entitlements WHERE purchase_id = $1", l.purchase.ID)
				return payments.InvariantPurchaseEntitlement, []strata.ID{l.purchase.ID, l.buyer.id, l.purchase.ItemID}
			},
			all: []string{payments.InvariantPurchaseEntitlement},
		},
		{
			name: "an entitlement of no purchase",
			damage: func(t *testing.T, l *ledger) (string, []strata.ID) {
				item := strata.NewID("itm", l.creatorShard, l.h.clock.Now())
				exec(t, l.db, "INSERT INTO payments_entitlements (user_id, item_id, purchase_id, created_at) VALUES ($1, $2, 'pur_none', 0)", l.buyer.id, item)
				return payments.InvariantPurchaseEntitlement, []strata.ID{l.buyer.id, item}
			},
			all: []string{payments.InvariantPurchaseEntitlement},
		},
		{
			name: "a purchase with its transfer deleted",
			damage: func(t *testing.T, l *ledger) (string, []strata.ID) {
				exec(t, l.db, "DELETE FROM payments_entries WHERE transfer_id = $1", l.purchase.TransferID)
				exec(t, l.db, "DELETE FROM payments_transfers WHERE id = $1", l.purchase.TransferID)
				return payments.InvariantPurchaseTransfers, []strata.ID{l.purchase.ID, l.purchase.TransferID}
			},
			all: []string{payments.InvariantBalanceEntries, payments.InvariantPurchaseTransfers},
		},
		{
			name: "a fee transfer of no purchase",
			damage: func(t *testing.T, l *ledger) (string, []strata.ID) {
				exec(t, l.db, "UPDATE payments_purchases SET fee_transfer_id = '' WHERE id = $1", l.purchase.ID)
				return payments.InvariantPurchaseTransfers, []strata.ID{l.purchase.FeeTransferID, l.purchase.ID}
			},
			all: []string{payments.InvariantPurchaseTransfers},
		},
		{
			name: "a refunded purchase without its reversals",
			damage: func(t *testing.T, l *ledger) (string, []strata.ID) {
				exec(t, l.db, "UPDATE payments_transfers SET reverses_id = '' WHERE reverses_id IN ($1, $2)", l.refunded.TransferID, l.refunded.FeeTransferID)
				return payments.InvariantRefundReversals, []strata.ID{l.refunded.ID, l.refunded.TransferID, l.refunded.FeeTransferID}
			},
			all: []string{payments.InvariantRefundReversals},
		},
		{
			name: "a purchase marked refunded by hand",
			damage: func(t *testing.T, l *ledger) (string, []strata.ID) {
				exec(t, l.db, "UPDATE payments_purchases SET status = 'refunded', refunded_at = 1 WHERE id = $1", l.purchase.ID)
				return payments.InvariantRefundReversals, []strata.ID{l.purchase.ID}
			},
			all: []string{payments.InvariantPurchaseEntitlement, payments.InvariantRefundReversals},
		},
		{
			name: "a succeeded intent without its transfer",
			damage: func(t *testing.T, l *ledger) (string, []strata.ID) {
				id := strata.NewID("pi", l.buyerShard, l.h.clock.Now())
				exec(t, l.db, `INSERT INTO payments_intents (id, shard, user_id, amount, currency, status, attempt, created_at, updated_at)
					VALUES ($1, $2, $3, 900, 'USD', 'succeeded', 1, 0, 0)`, id, l.buyerShard, l.buyer.id)
				return payments.InvariantTopUpTransfer, []strata.ID{id, l.buyer.id}
			},
			all: []string{payments.InvariantTopUpTransfer},
		},
		{
			name: "a top-up transfer of another amount than its intent",
			damage: func(t *testing.T, l *ledger) (string, []strata.ID) {
				exec(t, l.otherDB, "UPDATE payments_intents SET amount = amount + 1 WHERE id = $1", l.otherBuyerIntent.ID)
				return payments.InvariantTopUpTransfer, []strata.ID{l.otherBuyerIntent.ID, l.otherBuyerIntent.TransferID}
			},
			all: []string{payments.InvariantTopUpTransfer},
		},
		{
			name: "a top-up transfer without an intent",
			damage: func(t *testing.T, l *ledger) (string, []strata.ID) {
				intent := strata.NewID("pi", l.buyerShard, l.h.clock.Now())
				require.NoError(t, l.h.svc.TopUpForTest(context.Background(), l.buyer.id, intent, strata.Money{Amount: 100, Currency: "USD"}))
				var transfer strata.ID
				require.NoError(t, l.db.Writer().QueryRow("SELECT id FROM payments_transfers WHERE intent_id = $1", intent).Scan(&transfer))
				return payments.InvariantTopUpTransfer, []strata.ID{transfer, intent}
			},
			all: []string{payments.InvariantTopUpTransfer},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newLedger(t)
			invariant, ids := tc.damage(t, l)
			r := verify(t, l.h.svc)
			require.False(t, r.Clean())
			require.Equal(t, tc.all, found(r), "violations: %+v", r.Violations)
			v := requireViolation(t, r, invariant, ids...)
			require.NotEmpty(t, v.Detail)
			require.NotEmpty(t, v.Database)
			require.Equal(t, int64(len(r.Violations)), r.Total(), "everything found is listed")
		})
	}
}

func TestVerifyReportsCurrencySumsPerDatabaseAndOverall(t *testing.T) {
	t.Parallel()
	l := newLedger(t)
	exec(t, l.otherDB, "UPDATE payments_accounts SET balance = balance - 3 WHERE kind = 'external' AND currency = 'EUR'")
	r := verify(t, l.h.svc)
	var perDB, overall int
	for _, v := range r.Violations {
		if v.Invariant != payments.InvariantCurrencySum {
			continue
		}
		require.Equal(t, "EUR", v.Currency)
		if v.Database == "" {
			overall++
			require.Contains(t, v.Detail, "-3 over all databases")
		} else {
			perDB++
			require.Equal(t, l.otherDB.Name(), v.Database)
		}
	}
	require.Equal(t, 1, perDB)
	require.Equal(t, 1, overall)
	require.Equal(t, int64(2), r.Found[payments.InvariantCurrencySum])
	require.Contains(t, r.Totals, strata.Money{Amount: -3, Currency: "EUR"})
}

// TestVerifyForcedRefundDeficit: earnings a forced refund overdrew are
// negative by design, as far as the deficit recorded on the purchases
// covers them, and no further.
func TestVerifyForcedRefundDeficit(t *testing.T) {
	t.Parallel()
	l := newLedger(t)
	earnings := l.accountID(payments.KindEarnings, l.creator.id, "USD", l.creatorShard)
	external := l.accountID(payments.KindExternal, "", "USD", l.buyerShard)
	kept := l.h.balance(payments.KindEarnings, l.creator.id, "USD", l.creatorShard)
	require.Positive(t, kept)
	// A payout empties the earnings; the admin then forces a refund.
	l.rawTransfer(payments.TransferPayout, payments.Entry{Account: earnings, Amount: -kept}, payments.Entry{Account: external, Amount: kept})
	_, err := l.h.svc.Refund(l.admin.ctx(), l.purchase.ID, true)
	require.NoError(t, err)
	deficit := l.purchase.Price.Amount - l.purchase.Fee
	require.Equal(t, -deficit, l.h.balance(payments.KindEarnings, l.creator.id, "USD", l.creatorShard))
	r := verify(t, l.h.svc)
	require.True(t, r.Clean(), "violations: %+v", r.Violations)

	// A credit shrinks the deficit: still covered.
	l.rawTransfer(payments.TransferCorrection, payments.Entry{Account: external, Amount: -200}, payments.Entry{Account: earnings, Amount: 200})
	require.True(t, verify(t, l.h.svc).Clean())

	// A deficit beyond the recorded one is a violation.
	exec(t, l.db, "UPDATE payments_purchases SET refund_deficit = 1 WHERE id = $1", l.purchase.ID)
	r = verify(t, l.h.svc)
	require.Equal(t, []string{payments.InvariantNonNegative}, found(r), "violations: %+v", r.Violations)
	v := requireViolation(t, r, payments.InvariantNonNegative, earnings, l.creator.id)
	require.Contains(t, v.Detail, "deficit of 1")
}

func TestVerifyListsAtMostMaxListed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 1)
	u := h.newUser(strata.RoleBuyer, 2)
	const n = payments.MaxListed + 5
	for range n {
		h.topUp(u, 10, "USD") // top-up transfers without intents
	}
	r := verify(t, h.svc)
	require.Equal(t, int64(n), r.Found[payments.InvariantTopUpTransfer])
	require.Equal(t, int64(n), r.Databases[0].Found[payments.InvariantTopUpTransfer])
	require.Len(t, r.Violations, payments.MaxListed)
}

// TestVerifyDuringConcurrentPurchases: every audit reads one snapshot per
// database, so purchases and top-ups committing while it runs never look
// like violations.
func TestVerifyDuringConcurrentPurchases(t *testing.T) {
	t.Parallel()
	h := newHarness(t, 2)
	l := &ledger{h: h}
	type pair struct{ buyer, creator user }
	pairs := []pair{
		{h.newUser(strata.RoleBuyer, 1), h.newUser(strata.RoleCreator, 2)},
		{h.newUser(strata.RoleBuyer, 6), h.newUser(strata.RoleCreator, 2)},
		{h.newUser(strata.RoleBuyer, 9), h.newUser(strata.RoleCreator, 13)},
		{h.newUser(strata.RoleBuyer, 15), h.newUser(strata.RoleCreator, 13)},
	}
	for _, p := range pairs {
		l.cardTopUp(p.buyer, 100_000, "USD")
	}
	done := make(chan struct{})
	var runs atomic.Int32
	var verifier sync.WaitGroup
	verifier.Go(func() {
		for {
			r, err := h.svc.Verify(context.Background())
			if err != nil {
				t.Errorf("verify: %v", err)
				return
			}
			if !r.Clean() {
				t.Errorf("false violations: %+v", r.Violations)
				return
			}
			runs.Add(1)
			select {
			case <-done:
				return
			default:
			}
		}
	})
	var wg sync.WaitGroup
	for _, p := range pairs {
		for i := range 10 {
			item := h.item(p.creator, int64(100+i*37), "USD")
			wg.Go(func() {
				if _, err := h.svc.Buy(p.buyer.ctx(), item); err != nil {
					t.Errorf("buy: %v", err)
				}
			})
		}
		wg.Go(func() {
			if _, err := h.svc.TopUp(p.buyer.ctx(), strata.Money{Amount: 500, Currency: "USD"}, visa); err != nil {
				t.Errorf("top up: %v", err)
			}
		})
	}
	wg.Wait()
	close(done)
	verifier.Wait()
	require.Positive(t, runs.Load())
	t.Logf("verified %d times during the purchases", runs.Load())
	r := verify(t, h.svc)
	require.True(t, r.Clean(), "violations: %+v", r.Violations)
	var purchases int64
	for _, d := range r.Databases {
		purchases += d.Purchases
	}
	require.Equal(t, int64(40), purchases)
}

// lockedBuffer is a bytes.Buffer the reconciler's logger writes to while
// the test reads it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *lockedBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *lockedBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// metric sums the samples of the named metric whose labels include want
// (counters and gauges; for a histogram, its sample count).
func metric(t *testing.T, reg *prometheus.Registry, name string, want map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	require.NoError(t, err)
	var sum float64
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			for k, v := range want {
				if labels[k] != v {
					continue next
				}
			}
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

func TestReconcilerExportsMetricsAndLogsViolations(t *testing.T) {
	t.Parallel()
	l := newLedger(t)
	var logs lockedBuffer
	svc := payments.NewService(payments.Deps{Store: paymentssql.New(l.h.router, l.h.clock), Clock: l.h.clock,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	reg := prometheus.NewRegistry()
	m := payments.NewReconcileMetrics(reg)
	require.Equal(t, 0.0, metric(t, reg, "strata_ledger_violations", map[string]string{"invariant": payments.InvariantTopUpTransfer}))

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { svc.RunReconciler(ctx, 20*time.Millisecond, m) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	require.Eventually(t, func() bool {
		return metric(t, reg, "strata_ledger_reconcile_runs_total", map[string]string{"result": "ok"}) >= 1
	}, 10*time.Second, 5*time.Millisecond)
	require.Contains(t, logs.String(), `"msg":"ledger reconciled"`)

	intent := strata.NewID("pi", l.buyerShard, l.h.clock.Now())
	require.NoError(t, l.h.svc.TopUpForTest(context.Background(), l.buyer.id, intent, strata.Money{Amount: 100, Currency: "USD"}))
	require.Eventually(t, func() bool {
		return metric(t, reg, "strata_ledger_reconcile_runs_total", map[string]string{"result": "violations"}) >= 1
	}, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, 1.0, metric(t, reg, "strata_ledger_violations", map[string]string{"invariant": payments.InvariantTopUpTransfer}))
	require.Equal(t, 0.0, metric(t, reg, "strata_ledger_violations", map[string]string{"invariant": payments.InvariantBalanceEntries}))
	require.Positive(t, metric(t, reg, "strata_ledger_reconcile_duration_seconds", nil))
	require.Zero(t, metric(t, reg, "strata_ledger_reconcile_runs_total", map[string]string{"result": "error"}))
	// The gauges are set before the violations are logged: wait for the log.
	require.Eventually(t, func() bool {
		return strings.Contains(logs.String(), `"level":"ERROR","msg":"ledger invariant violated","invariant":"topup_transfer"`)
	}, 10*time.Second, 5*time.Millisecond)
	out := logs.String()
	require.Contains(t, out, string(intent))
	require.Contains(t, out, `"currency":"USD"`)

	// A failing audit counts as an error and leaves the gauges alone.
	require.NoError(t, l.h.router.Close())
	require.Eventually(t, func() bool {
		return metric(t, reg, "strata_ledger_reconcile_runs_total", map[string]string{"result": "error"}) >= 1
	}, 10*time.Second, 5*time.Millisecond)
	require.Equal(t, 1.0, metric(t, reg, "strata_ledger_violations", map[string]string{"invariant": payments.InvariantTopUpTransfer}))
	require.Contains(t, logs.String(), `"msg":"ledger reconciliation failed"`)
}

func TestReconcilerOffAndConfig(t *testing.T) {
	t.Parallel()
	svc := payments.NewService(payments.Deps{Store: paymentssql.New(newHarness(t, 1).router, nil)})
	svc.RunReconciler(context.Background(), 0, nil) // returns at once: off

	for _, tc := range []struct {
		interval time.Duration
		ok       bool
	}{
		{payments.DefaultReconcileInterval, true},
		{0, true},
		{time.Second, true},
		{time.Millisecond, false},
		{-time.Minute, false},
	} {
		c := payments.ReconcileConfig{Interval: tc.interval}
		if err := c.Validate(); tc.ok {
			require.NoError(t, err, "%s", tc.interval)
		} else {
			require.ErrorContains(t, err, "reconcile-interval", "%s", tc.interval)
		}
	}
}
