package payments

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/spf13/pflag"
	"github.com/stratadev/strata"
)

// The invariants reconciliation checks, by the name reports, logs and the
// strata_ledger_violations metric use.
const (
	// InvariantTransferBalanced: a transfer has at least two entries, they
	// sum to zero, its amount is the sum of its positive entries, and every
	// entry is on an account of the transfer's currency.
	InvariantTransferBalanced = "transfer_balanced"
	// InvariantCurrencySum: the balances of a currency sum to zero, in each
	// database and over all of them.
	InvariantCurrencySum = "currency_sum_zero"
	// InvariantNonNegative: no account but an external one is negative,
	// except an earnings account overdrawn by forced refunds, as far as the
	// deficits those refunds recorded (payments_purchases.refund_deficit)
	// cover it. A forced refund records how far it overdrew the earnings;
	// later earnings only shrink a deficit, so the sum of the recorded
	// deficits bounds any legitimate one.
	InvariantNonNegative = "balance_non_negative"
	// InvariantBalanceEntries: an account's balance is the sum of its
	// entries.
	InvariantBalanceEntries = "balance_matches_entries"
	// InvariantPurchaseTransfers: a purchase has its purchase transfer of
	// the price and, when it took a fee, its fee transfer of the fee, each
	// naming the purchase; every purchase or fee transfer belongs to a
	// purchase that names it.
	InvariantPurchaseTransfers = "purchase_transfers"
	// InvariantPurchaseEntitlement: a completed purchase entitles its
	// buyer to its item, a refunded one no longer does, and every
	// entitlement comes from a purchase.
	InvariantPurchaseEntitlement = "purchase_entitlement"
	// InvariantRefundReversals: a refunded purchase has a reversal of its
	// purchase transfer and of its fee transfer; a completed one has
	// neither; every reversal reverses a transfer that exists.
	InvariantRefundReversals = "refund_reversals"
	// InvariantTopUpTransfer: a succeeded payment intent has exactly one
	// top-up transfer, of its amount, naming it; every top-up transfer
	// belongs to a succeeded intent.
	InvariantTopUpTransfer = "topup_transfer"
	// InvariantIntentSettled: no payment intent stays processing longer
	// than IntentSettleBound. The settler gives up after about an hour of
	// retries; an intent still processing after that needs an operator
	// (its card may have been charged).
	InvariantIntentSettled = "intent_settled"
	// InvariantTransitAccounted: in each database the transit accounts
	// hold what its cross-database purchases sent, less the credits it
	// received for others' (refunds undo both): money in transit is
	// accounted for by the saga's rows.
	InvariantTransitAccounted = "transit_accounted"
	// InvariantCreditSettled: no cross-database purchase waits longer than
	// SagaSettleBound for its creator's credit to be confirmed.
	InvariantCreditSettled = "credit_settled"
)

// IntentSettleBound is how long an intent may stay processing before the
// reconciler reports it.
const IntentSettleBound = 2 * time.Hour

// Invariants returns the names of every invariant, in the order reports
// list them.
func Invariants() []string {
	return []string{InvariantTransferBalanced, InvariantCurrencySum, InvariantNonNegative, InvariantBalanceEntries,
		InvariantPurchaseTransfers, InvariantPurchaseEntitlement, InvariantRefundReversals, InvariantTopUpTransfer,
		InvariantIntentSettled, InvariantTransitAccounted, InvariantCreditSettled}
}

// MaxListed is how many violations of one invariant an audit lists per
// database; it still counts all of them. A ledger gone badly wrong would
// otherwise be loaded into memory whole.
const MaxListed = 100

// Violation is one breach of an invariant.
type Violation struct {
	Invariant string `json:"invariant"`
	// Database names the database it was found in; "" for the sums over
	// all databases.
	Database string `json:"database,omitempty"`
	Currency string `json:"currency,omitempty"`
	// IDs are the rows involved: the transfer, account, purchase or
	// intent first, then the users, items and transfers it names.
	IDs    []strata.ID `json:"ids"`
	Detail string      `json:"detail"`
}

// DatabaseReport is what one database holds and how it fared.
type DatabaseReport struct {
	Database  string `json:"database"`
	Accounts  int64  `json:"accounts"`
	Transfers int64  `json:"transfers"`
	Entries   int64  `json:"entries"`
	Purchases int64  `json:"purchases"`
	Intents   int64  `json:"intents"`
	// Sums are the sums of the balances per currency, by currency.
	Sums []strata.Money `json:"sums"`
	// Found counts the violations per invariant, those beyond MaxListed
	// included; invariants without violations are absent.
	Found map[string]int64 `json:"found,omitempty"`
}

// Report is the outcome of Verify.
type Report struct {
	Databases []DatabaseReport `json:"databases"`
	// Totals are the sums of the balances per currency over every
	// database (a violation of InvariantCurrencySum of its own, without a
	// Database, when there are several). They are not one snapshot: each
	// database is read in its own. Transfers never span databases, so each
	// database's sums must be zero on their own too, and are checked so.
	Totals []strata.Money `json:"totals"`
	// Violations lists up to MaxListed violations per invariant and
	// database, ordered by invariant.
	Violations []Violation `json:"violations"`
	// Found counts every violation per invariant, listed or not.
	Found    map[string]int64 `json:"found"`
	Duration time.Duration    `json:"duration_ns"`
}

// Total returns the number of violations found.
func (r *Report) Total() int64 {
	var n int64
	for _, c := range r.Found {
		n += c
	}
	return n
}

// Clean reports whether no invariant is violated.
func (r *Report) Clean() bool { return r.Total() == 0 }

// Auditor reads the whole ledger for reconciliation; paymentssql.Store
// implements it.
type Auditor interface {
	// Audit checks, on every database, the invariants that hold within one
	// database (all but the sums over all databases), each database in one
	// consistent read snapshot of its primary. It returns one report per
	// database, with its counts and balance sums, and the violations it
	// found, at most limit per invariant and database. Errors are
	// internal or unavailable.
	Audit(ctx context.Context, limit int) ([]DatabaseReport, []Violation, error)
}

// Verify checks every invariant of the ledger behind a: the store's audit
// of each database, then the per-currency sums over all databases.
func Verify(ctx context.Context, a Auditor) (*Report, error) {
	start := time.Now()
	dbs, listed, err := a.Audit(ctx, MaxListed)
	if err != nil {
		return nil, fmt.Errorf("verify ledger: %w", err)
	}
	r := &Report{Databases: dbs, Violations: listed, Found: map[string]int64{}}
	totals := map[string]int64{}
	overflow := map[string]bool{}
	for i := range r.Databases {
		d := &r.Databases[i]
		if d.Found == nil {
			d.Found = map[string]int64{}
		}
		for _, m := range d.Sums {
			sum, ok := add(totals[m.Currency], m.Amount)
			totals[m.Currency], overflow[m.Currency] = sum, overflow[m.Currency] || !ok
			if m.Amount != 0 {
				d.Found[InvariantCurrencySum]++
				r.Violations = append(r.Violations, Violation{Invariant: InvariantCurrencySum, Database: d.Database,
					Currency: m.Currency, IDs: []strata.ID{}, Detail: fmt.Sprintf("the balances sum to %d in this database", m.Amount)})
			}
		}
		for inv, n := range d.Found {
			r.Found[inv] += n
		}
	}
	for _, c := range slices.Sorted(maps.Keys(totals)) {
		r.Totals = append(r.Totals, strata.Money{Amount: totals[c], Currency: c})
		// With one database its own sums are the overall ones, reported already.
		if len(r.Databases) < 2 || (totals[c] == 0 && !overflow[c]) {
			continue
		}
		detail := fmt.Sprintf("the balances sum to %d over all databases", totals[c])
		if overflow[c] {
			detail = "the balances overflow a 64-bit sum over all databases"
		}
		r.Found[InvariantCurrencySum]++
		r.Violations = append(r.Violations, Violation{Invariant: InvariantCurrencySum, Currency: c, IDs: []strata.ID{}, Detail: detail})
	}
	order := map[string]int{}
	for i, inv := range Invariants() {
		order[inv] = i
	}
	slices.SortStableFunc(r.Violations, func(a, b Violation) int { return cmp.Compare(order[a.Invariant], order[b.Invariant]) })
	if r.Violations == nil {
		r.Violations = []Violation{}
	}
	if r.Totals == nil {
		r.Totals = []strata.Money{}
	}
	r.Duration = time.Since(start)
	return r, nil
}

var errNoAuditor = errors.New("the payments store cannot audit the ledger")

// Verify checks every invariant of the ledger: see the package function
// Verify. The store must implement Auditor.
func (s *Service) Verify(ctx context.Context) (*Report, error) {
	a, ok := s.store.(Auditor)
	if !ok {
		return nil, errNoAuditor
	}
	return Verify(ctx, a)
}

// DefaultReconcileInterval is how often the worker verifies the ledger by
// default.
const DefaultReconcileInterval = 10 * time.Minute

// ReconcileConfig holds the settings of the periodic reconciliation.
type ReconcileConfig struct {
	// Interval is how often the worker runs Verify; 0 turns it off.
	Interval time.Duration
}

// RegisterFlags registers the settings with their defaults on fs.
func (c *ReconcileConfig) RegisterFlags(fs *pflag.FlagSet) {
	fs.DurationVar(&c.Interval, "reconcile-interval", DefaultReconcileInterval,
		"how often the worker checks every invariant of the ledger (as strata ledger verify does); 0 turns it off")
}

// Validate checks the settings.
func (c *ReconcileConfig) Validate() error {
	if c.Interval < 0 || (c.Interval > 0 && c.Interval < time.Second) {
		return fmt.Errorf("reconcile-interval: must be 0 (off) or at least 1s, got %s", c.Interval)
	}
	return nil
}

// Results of a reconciliation run, the values of the result label.
const (
	reconcileOK         = "ok"
	reconcileViolations = "violations"
	reconcileError      = "error"
)

// ReconcileMetrics exports what the reconciler finds. A nil
// *ReconcileMetrics records nothing.
type ReconcileMetrics struct {
	violations *prometheus.GaugeVec
	runs       *prometheus.CounterVec
	duration   prometheus.Histogram
}

// NewReconcileMetrics creates the reconciler's metrics and registers them
// with reg (when reg is not nil). Registering twice on one registry
// panics.
func NewReconcileMetrics(reg prometheus.Registerer) *ReconcileMetrics {
	m := &ReconcileMetrics{
		violations: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "strata_ledger_violations",
			Help: "Violations of each ledger invariant found by the last reconciliation that completed; alert when above 0.",
		}, []string{"invariant"}),
		runs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "strata_ledger_reconcile_runs_total",
			Help: "Ledger reconciliations, by result (ok, violations, error).",
		}, []string{"result"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "strata_ledger_reconcile_duration_seconds",
			Help:    "Time a ledger reconciliation takes, over every database.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 9), // 10 ms to about 11 min
		}),
	}
	for _, inv := range Invariants() {
		m.violations.WithLabelValues(inv)
	}
	for _, r := range []string{reconcileOK, reconcileViolations, reconcileError} {
		m.runs.WithLabelValues(r)
	}
	if reg != nil {
		reg.MustRegister(m.violations, m.runs, m.duration)
	}
	return m
}

func (m *ReconcileMetrics) record(r *Report, err error, took time.Duration) {
	if m == nil {
		return
	}
	m.duration.Observe(took.Seconds())
	switch {
	case err != nil:
		m.runs.WithLabelValues(reconcileError).Inc()
		return // the gauges keep what the last completed run found
	case r.Clean():
		m.runs.WithLabelValues(reconcileOK).Inc()
	default:
		m.runs.WithLabelValues(reconcileViolations).Inc()
	}
	for _, inv := range Invariants() {
		m.violations.WithLabelValues(inv).Set(float64(r.Found[inv]))
	}
}

// RunReconciler verifies the ledger at once and then every interval until
// ctx ends, logging each violation as an error (with the invariant, the
// database, the currency and the ids involved) and recording the outcome
// in m. It returns at once when every is not positive (reconciliation off).
// Every worker instance may run it: it only reads.
func (s *Service) RunReconciler(ctx context.Context, every time.Duration, m *ReconcileMetrics) {
	if every <= 0 {
		return
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		s.reconcile(ctx, m)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// reconcile runs Verify once, then logs and records what it found.
func (s *Service) reconcile(ctx context.Context, m *ReconcileMetrics) {
	start := time.Now()
	r, err := s.Verify(ctx)
	if err != nil && ctx.Err() != nil {
		return // stopping: not a failed run
	}
	m.record(r, err, time.Since(start))
	switch {
	case err != nil:
		s.log.ErrorContext(ctx, "ledger reconciliation failed", "error", err)
	case r.Clean():
		var accounts, transfers int64
		for _, d := range r.Databases {
			accounts, transfers = accounts+d.Accounts, transfers+d.Transfers
		}
		s.log.InfoContext(ctx, "ledger reconciled", "databases", len(r.Databases), "accounts", accounts,
			"transfers", transfers, "duration", r.Duration)
	default:
		for _, v := range r.Violations {
			s.log.ErrorContext(ctx, "ledger invariant violated", "invariant", v.Invariant, "database", v.Database,
				"currency", v.Currency, "ids", v.IDs, "detail", v.Detail)
		}
		s.log.ErrorContext(ctx, "ledger reconciliation found violations", "violations", r.Total(),
			"listed", len(r.Violations), "found", r.Found)
	}
}
