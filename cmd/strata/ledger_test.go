package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stratadev/strata/internal/payments"
	"github.com/stratadev/strata/internal/storage/sqldb"
	"github.com/stretchr/testify/require"
)

func TestLedgerVerify(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dir := t.TempDir()
	verify := func(extra ...string) (string, error) {
		var out, errOut syncBuffer
		err := run(ctx, append([]string{"ledger", "verify", "--data-dir", dir}, extra...), noEnv, strings.NewReader(""), &out, &errOut)
		return out.String(), err
	}

	out, err := verify()
	require.NoError(t, err, "a fresh data directory is clean: %s", out)
	require.Contains(t, out, "ok: 11 invariants hold")
	require.Contains(t, out, "0 accounts, 0 transfers")

	// Money out of nowhere: a balance without entries.
	db, err := sqldb.OpenSQLite(ctx, filepath.Join(dir, "strata.db"), sqldb.SQLiteOptions{})
	require.NoError(t, err)
	_, err = db.Writer().Exec(`INSERT INTO payments_accounts (id, shard, kind, owner_id, currency, balance, version, created_at, updated_at)
		VALUES ('acc_forged', 7, 'wallet', 'usr_forger', 'USD', 5000, 1, 0, 0)`)
	require.NoError(t, err)
	require.NoError(t, db.Close())

	out, err = verify()
	require.ErrorContains(t, err, "ledger verify: 2 invariant violation(s) found")
	require.Contains(t, out, "VIOLATION balance_matches_entries USD ids=acc_forged,usr_forger db="+filepath.Join(dir, "strata.db")+": balance is 5000, its entries sum to 0")
	require.Contains(t, out, "VIOLATION currency_sum_zero USD db="+filepath.Join(dir, "strata.db")+": the balances sum to 5000 in this database")
	require.Contains(t, out, "FAILED: 2 violation(s): currency_sum_zero 1, balance_matches_entries 1")

	out, err = verify("--format", "json")
	require.Error(t, err)
	var r payments.Report
	require.NoError(t, json.Unmarshal([]byte(out), &r), "%s", out)
	require.Equal(t, int64(1), r.Found[payments.InvariantBalanceEntries])
	require.Len(t, r.Violations, 2)
	require.Equal(t, payments.InvariantCurrencySum, r.Violations[0].Invariant)
	require.Equal(t, "acc_forged", string(r.Violations[1].IDs[0]))

	// The storage settings are serve's, checked the same way.
	_, err = verify("--shards", "16")
	require.ErrorContains(t, err, "shards: this deployment was created with 256 logical shards")
	_, err = verify("--format", "yaml")
	require.ErrorContains(t, err, "format:")
}
