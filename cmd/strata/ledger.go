package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/payments"
	"github.com/stratadev/strata/internal/payments/paymentssql"
)

// errViolations makes `strata ledger verify` exit 1; the report is
// already printed.
type errViolations struct{ n int64 }

func (e errViolations) Error() string {
	return fmt.Sprintf("ledger verify: %d invariant violation(s) found", e.n)
}

func ledgerCommand(getenv func(string) string, stdout io.Writer) *cobra.Command {
	ledger := &cobra.Command{Use: "ledger", Short: "Inspect the payments ledger"}
	ledger.AddCommand(reportCommand("verify [--format text|json]",
		"Check every invariant of the ledger; exit 1 on any violation",
		"Check every invariant of the payments ledger on every database, as the worker does every\n"+
			"--reconcile-interval: each transfer balances, the balances of each currency sum to zero, no\n"+
			"wallet is negative, each balance equals the sum of its entries, each purchase has its transfers\n"+
			"and entitlement (each refund its reversals), each succeeded top-up its transfer, the transit\n"+
			"accounts of cross-database purchases are accounted for and no credit is stuck. Prints the\n"+
			"counts per database and every violation with the ids involved; exits 1 when there is one.\n"+
			"Runs beside a live server: it only reads, each database in one snapshot.\n"+
			"Takes the same storage settings as strata serve (--data-dir, --sqlite-shards, --postgres...).",
		getenv, stdout, func(ctx context.Context, st *storage) (any, func(io.Writer), error) {
			r, err := payments.Verify(ctx, paymentssql.New(st.router, strata.SystemClock{}))
			if err != nil {
				return nil, nil, err
			}
			var verdict error
			if !r.Clean() {
				verdict = errViolations{r.Total()}
			}
			return r, func(w io.Writer) { printReport(w, r) }, verdict
		}))
	return ledger
}

// reportCommand builds an admin command that opens the deployment's
// storage (taking serve's settings), computes a report with do and prints
// it for people, or as JSON with --format json. An error do returns with
// a report is printed after it (a verdict, like violations found).
func reportCommand(use, short, long string, getenv func(string) string, stdout io.Writer,
	do func(ctx context.Context, st *storage) (report any, print func(io.Writer), err error)) *cobra.Command {
	var s settings
	var format string
	cmd := &cobra.Command{Use: use, Short: short, Long: long, Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := load(cmd.Flags(), getenv, &s); err != nil {
				return err
			}
			if format != "text" && format != "json" {
				return fmt.Errorf("format: must be text or json, got %q", format)
			}
			st, err := openStorage(cmd.Context(), &s, nil)
			if err != nil {
				return err
			}
			defer st.close()
			report, print, err := do(cmd.Context(), st)
			if report == nil {
				return err
			}
			if format == "json" {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				if jerr := enc.Encode(report); jerr != nil {
					return jerr
				}
			} else {
				print(stdout)
			}
			return err
		},
	}
	s.registerFlags(cmd.Flags())
	cmd.Flags().StringVar(&format, "format", "text", "output format: text, or json for machines")
	return cmd
}

// printReport writes r for people.
func printReport(w io.Writer, r *payments.Report) {
	for _, d := range r.Databases {
		fmt.Fprintf(w, "database %s: %d accounts, %d transfers, %d entries, %d purchases, %d intents; balances sum to %s\n",
			d.Database, d.Accounts, d.Transfers, d.Entries, d.Purchases, d.Intents, moneyList(d.Sums))
	}
	if len(r.Databases) > 1 {
		fmt.Fprintf(w, "all databases: balances sum to %s\n", moneyList(r.Totals))
	}
	listed := map[string]int64{}
	for _, v := range r.Violations {
		listed[v.Invariant]++
		line := "VIOLATION " + v.Invariant
		if v.Currency != "" {
			line += " " + v.Currency
		}
		if len(v.IDs) > 0 {
			ids := make([]string, len(v.IDs))
			for i, id := range v.IDs {
				ids[i] = string(id)
			}
			line += " ids=" + strings.Join(ids, ",")
		}
		if v.Database != "" {
			line += " db=" + v.Database
		}
		fmt.Fprintf(w, "%s: %s\n", line, v.Detail)
	}
	for _, inv := range payments.Invariants() {
		if more := r.Found[inv] - listed[inv]; more > 0 {
			fmt.Fprintf(w, "VIOLATION %s: %d more not listed\n", inv, more)
		}
	}
	took := r.Duration.Round(time.Millisecond)
	if r.Clean() {
		fmt.Fprintf(w, "ok: %d invariants hold (checked in %s)\n", len(payments.Invariants()), took)
		return
	}
	var parts []string
	for _, inv := range payments.Invariants() {
		if n := r.Found[inv]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", inv, n))
		}
	}
	fmt.Fprintf(w, "FAILED: %d violation(s): %s (checked in %s)\n", r.Total(), strings.Join(parts, ", "), took)
}

func moneyList(ms []strata.Money) string {
	if len(ms) == 0 {
		return "nothing (no accounts)"
	}
	parts := make([]string, len(ms))
	for i, m := range ms {
		parts[i] = m.String()
	}
	return strings.Join(parts, ", ")
}
