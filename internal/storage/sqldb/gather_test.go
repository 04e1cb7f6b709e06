package sqldb_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stratadev/strata/internal/storage/sqldb"
	"github.com/stretchr/testify/require"
)

func TestGather(t *testing.T) {
	t.Parallel()
	r := setup(t, 8, 3)
	got, err := sqldb.Gather(context.Background(), r.DBs(), func(ctx context.Context, db *sqldb.DB) ([]string, error) {
		var one string
		if err := db.Reader().QueryRowContext(ctx, "SELECT 'x'").Scan(&one); err != nil {
			return nil, err
		}
		return []string{db.Name(), one}, nil
	})
	require.NoError(t, err)
	require.Len(t, got, 6)
	for i, db := range r.DBs() {
		require.Equal(t, db.Name(), got[2*i], "parts keep the order of the databases")
	}

	boom := errors.New("boom")
	_, err = sqldb.Gather(context.Background(), r.DBs(), func(ctx context.Context, db *sqldb.DB) ([]string, error) {
		if db == r.DBs()[1] {
			return nil, boom
		}
		<-ctx.Done() // the failure cancels the others
		return nil, ctx.Err()
	})
	require.ErrorIs(t, err, boom)
}
