// Package contentsql stores the content module's data in SQL databases
// through the shard router: portable SQL that runs on SQLite and
// PostgreSQL.
package contentsql

import (
	"cmp"
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strings"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/content"
	"github.com/stratadev/strata/internal/storage/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations returns the module's goose migrations.
func Migrations() fs.FS { return sqldb.MigrationsDir(migrations) }

// Migrate applies content's migrations to every database of r.
func Migrate(ctx context.Context, r *sqldb.Router) error {
	return sqldb.MigrateAll(ctx, r, "content", Migrations())
}

// Store implements content.Store on a shard router.
type Store struct {
	router *sqldb.Router
	clock  strata.Clock
}

var _ content.Store = (*Store)(nil)

// New returns a Store over r.
func New(r *sqldb.Router, clock strata.Clock) *Store {
	return &Store{router: r, clock: clock}
}

// Tx runs fn in a transaction on the database of shard.
func (s *Store) Tx(ctx context.Context, shard int, fn func(content.Tx) error) error {
	if shard < 0 || shard >= s.router.NumShards() {
		return &strata.Error{Code: strata.CodeNotFound, Reason: "not_found", Message: "not found"}
	}
	db := s.router.Shard(shard)
	return db.Tx(ctx, func(tx *sql.Tx) error {
		return fn(&txStore{tx: tx, db: db, shard: shard, clock: s.clock, forUpdate: db.ForUpdate()})
	})
}

// Ping checks every database.
func (s *Store) Ping(ctx context.Context) error { return s.router.Ping(ctx) }

// itemColumns are read from content_items i LEFT JOIN content_assets a.
const itemColumns = `i.id, i.creator_id, i.title, i.description, i.price_amount, i.price_currency, i.tags,
	i.status, i.version, i.created_at, i.updated_at, i.deleted_at,
	a.status, a.sha256, a.size, a.media_type, a.width, a.height, a.failure_reason, a.filename, a.thumbnail_sha256,
	a.preview_sha256, a.live_sha256, a.live_size, a.live_media_type, a.live_filename, a.live_thumbnail_sha256,
	a.live_preview_sha256, a.created_at, a.updated_at`

const itemFrom = " FROM content_items i LEFT JOIN content_assets a ON a.item_id = i.id"

func scanItem(row interface{ Scan(...any) error }) (*content.Item, error) {
	var it content.Item
	var tags, status string
	var created, updated int64
	var deleted sql.NullInt64
	var aStatus, aSHA, aType, aReason, aName, aThumb, aPreview sql.NullString
	var lSHA, lType, lName, lThumb, lPreview sql.NullString
	var lSize sql.NullInt64
	var aSize, aWidth, aHeight, aCreated, aUpdated sql.NullInt64
	if err := row.Scan(&it.ID, &it.CreatorID, &it.Title, &it.Description, &it.Price.Amount, &it.Price.Currency, &tags,
		&status, &it.Version, &created, &updated, &deleted,
		&aStatus, &aSHA, &aSize, &aType, &aWidth, &aHeight, &aReason, &aName, &aThumb, &aPreview,
		&lSHA, &lSize, &lType, &lName, &lThumb, &lPreview,
		&aCreated, &aUpdated); err != nil {
		return nil, sqldb.Translate(err)
	}
	it.Status = content.Status(status)
	it.Tags = splitTags(tags)
	it.CreatedAt, it.UpdatedAt = sqldb.FromMillis(created), sqldb.FromMillis(updated)
	if deleted.Valid {
		it.DeletedAt = sqldb.FromMillis(deleted.Int64)
	}
	if aStatus.Valid {
		it.Asset = &content.Asset{
			Status: content.AssetStatus(aStatus.String), SHA256: aSHA.String, Size: aSize.Int64, MediaType: aType.String,
			Width: int(aWidth.Int64), Height: int(aHeight.Int64), FailureReason: aReason.String,
			Filename: aName.String, ThumbnailSHA256: aThumb.String, PreviewSHA256: aPreview.String,
			CreatedAt: sqldb.FromMillis(aCreated.Int64), UpdatedAt: sqldb.FromMillis(aUpdated.Int64),
		}
		if lSHA.String != "" {
			it.Asset.Live = &content.LiveFile{SHA256: lSHA.String, Size: lSize.Int64, MediaType: lType.String,
				Filename: lName.String, ThumbnailSHA256: lThumb.String, PreviewSHA256: lPreview.String}
		}
	}
	return &it, nil
}

func splitTags(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

// ItemByID reads an item from the reader pool of its shard.
func (s *Store) ItemByID(ctx context.Context, id strata.ID) (*content.Item, error) {
	db, err := s.router.ForID(id)
	if err != nil {
		return nil, err
	}
	it, err := scanItem(db.Read().QueryRowContext(ctx, "SELECT "+itemColumns+itemFrom+" WHERE i.id = $1", id))
	if err != nil {
		return nil, fmt.Errorf("read item %s: %w", id, err)
	}
	return it, nil
}

// likeEscaper escapes LIKE's wildcards and its escape character, so that a
// search for "50%" finds the text "50%".
var likeEscaper = strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)

// ListItems gathers matching items from every database (only the
// creator's, with a creator filter), each returning at most f.Limit, and
// merges them newest first.
func (s *Store) ListItems(ctx context.Context, f content.ListFilter) ([]content.Item, error) {
	where := []string{"i.status = 'published'", "i.deleted_at IS NULL"}
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return fmt.Sprintf("$%d", len(args))
	}
	if f.Creator != "" {
		where = append(where, "i.creator_id = "+arg(f.Creator))
	}
	if f.Tag != "" {
		where = append(where, "EXISTS (SELECT 1 FROM content_item_tags t WHERE t.tag = "+arg(f.Tag)+" AND t.item_id = i.id)")
	}
	if f.Query != "" {
		where = append(where, "i.title_lower LIKE "+arg("%"+likeEscaper.Replace(strings.ToLower(f.Query))+"%")+` ESCAPE '\'`)
	}
	if f.Before != "" {
		where = append(where, "i.id < "+arg(f.Before))
	}
	q := "SELECT " + itemColumns + itemFrom + " WHERE " + strings.Join(where, " AND ") +
		" ORDER BY i.id DESC LIMIT " + arg(f.Limit)

	dbs := s.router.DBs()
	if f.Creator != "" {
		db, err := s.router.ForID(f.Creator)
		if err != nil {
			return nil, nil // a creator on no shard of ours has no items
		}
		dbs = []*sqldb.DB{db}
	}
	out, err := sqldb.Gather(ctx, dbs, func(ctx context.Context, db *sqldb.DB) ([]content.Item, error) {
		items, err := queryItems(ctx, db.Read(), q, args...)
		if err != nil {
			return nil, fmt.Errorf("list items on %s: %w", db.Name(), err)
		}
		return items, nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b content.Item) int { return cmp.Compare(b.ID, a.ID) })
	return out, nil
}

func queryItems(ctx context.Context, q sqldb.Querier, query string, args ...any) ([]content.Item, error) {
	rows, err := q.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, sqldb.Translate(err)
	}
	defer rows.Close()
	var out []content.Item
	for rows.Next() {
		it, err := scanItem(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, *it)
	}
	return out, rows.Err()
}

// PutAsset writes an item's asset in a transaction of its own.
func (s *Store) PutAsset(ctx context.Context, item strata.ID, a content.Asset) error {
	shard, ok := item.Shard()
	if !ok {
		return &strata.Error{Code: strata.CodeNotFound, Reason: "not_found", Message: "not found"}
	}
	return s.Tx(ctx, shard, func(tx content.Tx) error { return tx.PutAsset(ctx, item, a) })
}

// BlobsReferenced asks every database, in parallel, which of shas an asset
// names (as its file, or as a preview), one query per database.
func (s *Store) BlobsReferenced(ctx context.Context, shas []string, preview bool) (map[string]bool, error) {
	if len(shas) == 0 {
		return map[string]bool{}, nil
	}
	args := make([]any, len(shas))
	marks := make([]string, len(shas))
	for i, sha := range shas {
		args[i], marks[i] = sha, fmt.Sprintf("$%d", i+1)
	}
	in := "(" + strings.Join(marks, ", ") + ")"
	q := "SELECT sha256 FROM content_assets WHERE sha256 IN " + in +
		" UNION SELECT live_sha256 FROM content_assets WHERE live_sha256 IN " + in
	if preview {
		q = "SELECT thumbnail_sha256 FROM content_assets WHERE thumbnail_sha256 IN " + in +
			" UNION SELECT preview_sha256 FROM content_assets WHERE preview_sha256 IN " + in +
			" UNION SELECT live_thumbnail_sha256 FROM content_assets WHERE live_thumbnail_sha256 IN " + in +
			" UNION SELECT live_preview_sha256 FROM content_assets WHERE live_preview_sha256 IN " + in
	}
	// The primary, not a reader: a reference just written must be seen.
	found, err := sqldb.Gather(ctx, s.router.DBs(), func(ctx context.Context, db *sqldb.DB) ([]string, error) {
		rows, err := db.Primary().QueryContext(ctx, q, args...)
		if err != nil {
			return nil, fmt.Errorf("look up blob references: %w", sqldb.Translate(err))
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var sha string
			if err := rows.Scan(&sha); err != nil {
				return nil, fmt.Errorf("look up blob references: %w", sqldb.Translate(err))
			}
			out = append(out, sha)
		}
		return out, sqldb.Translate(rows.Err())
	})
	if err != nil {
		return nil, err
	}
	refs := make(map[string]bool, len(found))
	for _, sha := range found {
		refs[sha] = true
	}
	return refs, nil
}
