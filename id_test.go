package strata_test

import (
	"sort"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stretchr/testify/require"
)

func TestIDRoundTrip(t *testing.T) {
	t.Parallel()
	at := time.UnixMilli(1_790_000_000_123)
	for _, shard := range []int{0, 1, 255, 65535} {
		id := strata.NewID("usr", shard, at)
		require.Equal(t, "usr", id.Prefix())
		got, ok := id.Shard()
		require.True(t, ok)
		require.Equal(t, shard, got)
		require.True(t, id.Time().Equal(at), "time %v", id.Time())
		parsed, err := strata.ParseID(string(id), "usr")
		require.NoError(t, err)
		require.Equal(t, id, parsed)
	}
}

func TestIDSortsByTime(t *testing.T) {
	t.Parallel()
	var ids []string
	base := time.UnixMilli(1_700_000_000_000)
	for i := range 100 {
		ids = append(ids, string(strata.NewID("itm", 99-i%7, base.Add(time.Duration(i)*time.Millisecond))))
	}
	require.True(t, sort.StringsAreSorted(ids))
}

// Not parallel: a parallel test minting IDs for many other milliseconds
// would evict this one's sequence.
func TestIDsOfOneMillisecondKeepTheirOrder(t *testing.T) {
	at := time.UnixMilli(1_800_000_000_000)
	prev := strata.NewID("evt", 5, at)
	for range 1000 {
		id := strata.NewID("evt", 5, at)
		require.Less(t, string(prev), string(id))
		prev = id
	}
}

func TestParseIDRejects(t *testing.T) {
	t.Parallel()
	good := string(strata.NewID("usr", 3, time.Now()))
	for name, s := range map[string]string{
		"empty":        "",
		"wrong prefix": "itm" + good[3:],
		"short":        good[:len(good)-1],
		"bad char":     good[:len(good)-1] + "u",
		"overflow":     "usr_z" + good[5:],
		"uppercase":    "usr_" + "0123456789ABCDEFGHJKMNPQRS",
	} {
		_, err := strata.ParseID(s, "usr")
		require.Error(t, err, name)
		require.Equal(t, strata.CodeInvalid, strata.ErrorCode(err), name)
	}
}

func FuzzParseID(f *testing.F) {
	f.Add(string(strata.NewID("usr", 7, time.Now())))
	f.Add("usr_")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := strata.ParseID(s, "usr")
		if err != nil {
			return
		}
		shard, ok := id.Shard()
		require.True(t, ok)
		again := strata.NewID("usr", shard, id.Time())
		require.Equal(t, again[:4+10], id[:4+10], "time and shard survive re-encoding")
	})
}

func TestShardOfKeyStable(t *testing.T) {
	t.Parallel()
	// Fixed values: a change here would move every email index entry.
	require.Equal(t, 70, strata.ShardOfKey("alice@example.com", 256))
	require.Equal(t, 153, strata.ShardOfKey("bob@example.com", 256))
	for range 1000 {
		s := strata.RandomShard(256)
		require.GreaterOrEqual(t, s, 0)
		require.Less(t, s, 256)
	}
}
