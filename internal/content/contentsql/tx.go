package contentsql

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/content"
	"github.com/stratadev/strata/internal/queue"
	"github.com/stratadev/strata/internal/storage/sqldb"
)

// txStore implements content.Tx on one transaction of one shard.
type txStore struct {
	tx        *sql.Tx
	shard     int
	clock     strata.Clock
	forUpdate string    // the dialect's row-lock clause for the *ForUpdate reads
	db        *sqldb.DB // runs the statements, prepared once seen
}

var _ content.Tx = (*txStore)(nil)

func (t *txStore) exec(ctx context.Context, action, q string, args ...any) (int64, error) {
	return t.db.Exec(ctx, t.tx, action, q, args...)
}

var errNotFound = &strata.Error{Code: strata.CodeNotFound, Reason: "not_found", Message: "not found"}

func (t *txStore) InsertItem(ctx context.Context, it *content.Item) error {
	shard, _ := it.ID.Shard()
	if _, err := t.exec(ctx, "insert item",
		`INSERT INTO content_items (id, shard, creator_id, title, title_lower, description, price_amount, price_currency,
		   tags, status, version, created_at, updated_at, deleted_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		it.ID, shard, it.CreatorID, it.Title, strings.ToLower(it.Title), it.Description, it.Price.Amount, it.Price.Currency,
		strings.Join(it.Tags, ","), string(it.Status), it.Version, sqldb.Millis(it.CreatedAt), sqldb.Millis(it.UpdatedAt), sqldb.NullMillis(it.DeletedAt)); err != nil {
		return err
	}
	return t.insertTags(ctx, it.ID, it.Tags)
}

func (t *txStore) insertTags(ctx context.Context, id strata.ID, tags []string) error {
	for _, tag := range tags {
		if _, err := t.exec(ctx, "insert item tag",
			"INSERT INTO content_item_tags (tag, item_id) VALUES ($1, $2)", tag, id); err != nil {
			return err
		}
	}
	return nil
}

func (t *txStore) ItemForUpdate(ctx context.Context, id strata.ID) (*content.Item, error) {
	// The lock clause names the item table only: PostgreSQL refuses FOR
	// UPDATE on the nullable side of an outer join.
	lock := t.forUpdate
	if lock != "" {
		lock += " OF i"
	}
	it, err := scanItem(t.tx.QueryRowContext(ctx, "SELECT "+itemColumns+itemFrom+" WHERE i.id = $1"+lock, id))
	if err != nil {
		return nil, fmt.Errorf("read item %s: %w", id, err)
	}
	return it, nil
}

func (t *txStore) UpdateItem(ctx context.Context, it *content.Item) error {
	n, err := t.exec(ctx, "update item",
		`UPDATE content_items SET title = $2, title_lower = $3, description = $4, price_amount = $5, price_currency = $6,
		   tags = $7, status = $8, version = $9, updated_at = $10, deleted_at = $11
		 WHERE id = $1`,
		it.ID, it.Title, strings.ToLower(it.Title), it.Description, it.Price.Amount, it.Price.Currency,
		strings.Join(it.Tags, ","), string(it.Status), it.Version, sqldb.Millis(it.UpdatedAt), sqldb.NullMillis(it.DeletedAt))
	if err != nil {
		return err
	}
	if n == 0 {
		return fmt.Errorf("update item %s: %w", it.ID, errNotFound)
	}
	if _, err := t.exec(ctx, "clear item tags", "DELETE FROM content_item_tags WHERE item_id = $1", it.ID); err != nil {
		return err
	}
	return t.insertTags(ctx, it.ID, it.Tags)
}

func (t *txStore) PutAsset(ctx context.Context, item strata.ID, a content.Asset) error {
	if !a.Status.Valid() {
		return strata.Invalid("status", "must be pending, processing, ready or failed")
	}
	var one int
	err := t.tx.QueryRowContext(ctx, "SELECT 1 FROM content_items WHERE id = $1"+t.forUpdate, item).Scan(&one)
	if err != nil {
		return fmt.Errorf("read item %s: %w", item, sqldb.Translate(err))
	}
	var l content.LiveFile
	if a.Live != nil {
		l = *a.Live
	}
	now := t.clock.Now()
	created := a.CreatedAt
	if created.IsZero() {
		created = now
	}
	_, err = t.exec(ctx, "put asset",
		`INSERT INTO content_assets (item_id, status, sha256, size, media_type, width, height, failure_reason, filename,
		   thumbnail_sha256, preview_sha256, live_sha256, live_size, live_media_type, live_filename,
		   live_thumbnail_sha256, live_preview_sha256, created_at, updated_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)
		 ON CONFLICT (item_id) DO UPDATE SET status = $2, sha256 = $3, size = $4, media_type = $5, width = $6,
		   height = $7, failure_reason = $8, filename = $9, thumbnail_sha256 = $10, preview_sha256 = $11,
		   live_sha256 = $12, live_size = $13, live_media_type = $14, live_filename = $15,
		   live_thumbnail_sha256 = $16, live_preview_sha256 = $17, updated_at = $19`,
		item, string(a.Status), a.SHA256, a.Size, a.MediaType, a.Width, a.Height, a.FailureReason, a.Filename,
		a.ThumbnailSHA256, a.PreviewSHA256, l.SHA256, l.Size, l.MediaType, l.Filename, l.ThumbnailSHA256, l.PreviewSHA256,
		sqldb.Millis(created), sqldb.Millis(now))
	return err
}

func (t *txStore) Outbox(ctx context.Context, ev queue.Event) error {
	_, err := queue.WriteOutbox(ctx, t.tx, t.shard, ev, t.clock.Now())
	return err
}
