package sqldb_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/stratadev/strata/internal/storage/sqldb"
	"github.com/stratadev/strata/internal/storage/sqldbtest"
	"github.com/stretchr/testify/require"
)

// Reads go to a streaming replica while it keeps up; a caller's token
// keeps its own writes visible; a replica past the lag bound, or dead, is
// skipped. Replay lag is made real by pausing replay on the replica.
func TestReplicaReadRouting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pair := sqldbtest.StartPostgresPair(t)
	db, err := sqldb.OpenPostgres(ctx, pair.Primary, sqldb.PostgresOptions{MaxConns: 4})
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	_, err = db.Writer().Exec("CREATE TABLE things (id TEXT PRIMARY KEY)")
	require.NoError(t, err)
	const maxLag = 2 * time.Second
	require.NoError(t, db.AddReplicas(ctx, []string{pair.Replica}, sqldb.PostgresOptions{MaxConns: 4},
		sqldb.ReplicaOptions{MaxLag: maxLag, CheckInterval: 50 * time.Millisecond}, nil))
	replica, err := sql.Open("pgx", pair.Replica)
	require.NoError(t, err)
	defer replica.Close()

	insert := func(ctx context.Context, id string) {
		t.Helper()
		require.NoError(t, db.Tx(ctx, func(tx *sql.Tx) error {
			_, err := tx.ExecContext(ctx, "INSERT INTO things (id) VALUES ($1)", id)
			return err
		}))
	}
	count := func(ctx context.Context) int {
		t.Helper()
		var n int
		require.NoError(t, db.Read().QueryRowContext(ctx, "SELECT count(*) FROM things").Scan(&n))
		return n
	}
	stats := func() (sqldb.ReplicaStat, int64) {
		rs, _, fallbacks := db.ReplicaStats()
		require.Len(t, rs, 1)
		return rs[0], fallbacks
	}

	insert(ctx, "a")
	pair.WaitReplayed(t)
	require.Eventually(t, func() bool { s, _ := stats(); return s.Healthy }, 10*time.Second, 10*time.Millisecond)
	require.Equal(t, 1, count(ctx))
	s, _ := stats()
	require.Equal(t, int64(1), s.Reads, "a caught-up replica serves the read")

	// Replay paused: the replica falls behind.
	_, err = replica.Exec("SELECT pg_wal_replay_pause()")
	require.NoError(t, err)
	token, err := sqldb.ParseConsistency("")
	require.NoError(t, err)
	writer := sqldb.WithConsistency(ctx, token)
	insert(writer, "b")
	require.NotEmpty(t, token.String(), "the write raised the caller's token")

	_, fallbacks0 := stats()
	require.Equal(t, 2, count(writer), "read-your-writes: the token sends the read to the primary")
	_, fallbacks1 := stats()
	require.Equal(t, fallbacks0+1, fallbacks1)
	again, err := sqldb.ParseConsistency(token.String())
	require.NoError(t, err)
	require.Equal(t, 2, count(sqldb.WithConsistency(ctx, again)), "the token survives a round trip through its text")

	// Without a token, a replica within the lag bound serves a stale read.
	if s, _ := stats(); s.Healthy {
		require.Equal(t, 1, count(ctx), "stale, within the bound")
	}
	// Past the bound it is skipped.
	require.Eventually(t, func() bool { s, _ := stats(); return !s.Healthy }, 10*time.Second, 20*time.Millisecond)
	s, _ = stats()
	require.Greater(t, s.Lag, maxLag)
	require.Equal(t, 2, count(ctx), "a lagging replica is skipped: the primary answers")

	// Replay resumed: back in service, and caught up.
	_, err = replica.Exec("SELECT pg_wal_replay_resume()")
	require.NoError(t, err)
	pair.WaitReplayed(t)
	require.Eventually(t, func() bool { s, _ := stats(); return s.Healthy }, 10*time.Second, 10*time.Millisecond)
	before, _ := stats()
	require.Equal(t, 2, count(ctx))
	after, _ := stats()
	require.Equal(t, before.Reads+1, after.Reads)

	// A dead replica is skipped.
	pair.StopReplica()
	require.Eventually(t, func() bool { s, _ := stats(); return !s.Healthy }, 10*time.Second, 20*time.Millisecond)
	for range 5 {
		require.Equal(t, 2, count(ctx))
	}
}

func TestConsistencyTokenText(t *testing.T) {
	t.Parallel()
	c, err := sqldb.ParseConsistency("b=0/3000060;a=16/B374D848")
	require.NoError(t, err)
	require.Equal(t, "a=16/B374D848;b=0/3000060", c.String())
	empty, err := sqldb.ParseConsistency("")
	require.NoError(t, err)
	require.Empty(t, empty.String())
	for _, bad := range []string{"a", "a=", "=0/1", "a=zz/1", "a=1", "a=0/1;;"} {
		_, err := sqldb.ParseConsistency(bad)
		require.Error(t, err, bad)
	}
}
