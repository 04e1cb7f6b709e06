package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/storage/sqldb"
)

// shardTables are the tables whose rows `strata shards list` counts per
// logical shard, by the shard their id names: users, items (on their
// creator's shard) and purchases (on their buyer's).
var shardTables = []struct{ name, table string }{
	{"users", "auth_users"},
	{"items", "content_items"},
	{"purchases", "payments_purchases"},
}

// shardRow is one logical shard in `strata shards list`.
type shardRow struct {
	Shard    int              `json:"shard"`
	Database string           `json:"database"`
	Rows     map[string]int64 `json:"rows"`
}

// shardListing is what `strata shards list --format json` prints.
type shardListing struct {
	Version   int64              `json:"version"`
	Shards    int                `json:"shards"`
	Databases []string           `json:"databases"`
	Ranges    []sqldb.ShardRange `json:"ranges"`
	PerShard  []shardRow         `json:"per_shard"`
	// Stray counts rows found in a database that the map does not give
	// their shard: left behind by an interrupted move, or misplaced.
	Stray map[string]int64 `json:"stray"`
}

func shardsCommand(getenv func(string) string, stdout io.Writer) *cobra.Command {
	shards := &cobra.Command{Use: "shards", Short: "Inspect the shard map"}
	shards.AddCommand(reportCommand("list [--format text|json]",
		"Show the shard map and the rows of each logical shard",
		"Show the shard map (its version, which database holds each logical shard) and, per logical\n"+
			"shard, how many users, items and purchases it holds, counted from the ids in every database\n"+
			"(rows in a database the map does not give their shard are reported as stray).\n"+
			"Takes the same storage settings as strata serve (--data-dir, --sqlite-shards, --postgres...).",
		getenv, stdout, func(ctx context.Context, st *storage) (any, func(io.Writer), error) {
			l, err := listShards(ctx, st.router)
			if err != nil {
				return nil, nil, err
			}
			return l, func(w io.Writer) { printShards(w, l) }, nil
		}))
	return shards
}

// listShards counts the rows of shardTables per logical shard in every
// database of r.
func listShards(ctx context.Context, r *sqldb.Router) (*shardListing, error) {
	m := r.Map()
	l := &shardListing{Version: m.Version, Shards: len(m.Shards), Ranges: m.Ranges(), Stray: map[string]int64{}}
	for s, name := range m.Shards {
		l.PerShard = append(l.PerShard, shardRow{Shard: s, Database: name, Rows: map[string]int64{}})
	}
	for _, db := range r.DBs() {
		name := r.NameOf(db)
		l.Databases = append(l.Databases, name)
		for _, t := range shardTables {
			rows, err := db.Read().QueryContext(ctx, "SELECT id FROM "+t.table)
			if err != nil {
				return nil, fmt.Errorf("count %s in %s: %w", t.table, name, sqldb.Translate(err))
			}
			for rows.Next() {
				var id strata.ID
				if err := rows.Scan(&id); err != nil {
					rows.Close()
					return nil, fmt.Errorf("count %s in %s: %w", t.table, name, err)
				}
				s, ok := id.Shard()
				if !ok || s >= len(m.Shards) || m.Shards[s] != name {
					l.Stray[t.name+"@"+name]++
					continue
				}
				l.PerShard[s].Rows[t.name]++
			}
			err = rows.Err()
			rows.Close()
			if err != nil {
				return nil, fmt.Errorf("count %s in %s: %w", t.table, name, err)
			}
		}
	}
	return l, nil
}

// printShards writes l for people: the ranges, then one line per shard.
func printShards(w io.Writer, l *shardListing) {
	fmt.Fprintf(w, "shard map version %d: %d logical shards on %d database(s)\n", l.Version, l.Shards, len(l.Databases))
	for _, rg := range l.Ranges {
		fmt.Fprintf(w, "  shards %d-%d: %s\n", rg.First, rg.Last, rg.DB)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "shard\tdatabase\t")
	for _, t := range shardTables {
		fmt.Fprintf(tw, "%s\t", t.name)
	}
	fmt.Fprintln(tw)
	for _, row := range l.PerShard {
		fmt.Fprintf(tw, "%d\t%s\t", row.Shard, row.Database)
		for _, t := range shardTables {
			fmt.Fprintf(tw, "%d\t", row.Rows[t.name])
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	for _, what := range slices.Sorted(maps.Keys(l.Stray)) {
		fmt.Fprintf(w, "STRAY %d %s rows whose shard the map puts elsewhere\n", l.Stray[what], what)
	}
}
