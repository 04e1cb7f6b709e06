package content

import (
	"context"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/queue"
)

// Store is the persistence content needs. Methods return *strata.Error
// code not_found as stated; anything else is internal or unavailable.
type Store interface {
	// Tx runs fn in one transaction on the database of logical shard.
	Tx(ctx context.Context, shard int, fn func(Tx) error) error

	// ItemByID reads an item with its asset, deleted or not; not_found when
	// absent.
	ItemByID(ctx context.Context, id strata.ID) (*Item, error)
	// ListItems returns published, non-deleted items matching f, newest
	// first: at most f.Limit from each database, merged, so up to
	// f.Limit × databases in all; the caller cuts the list.
	ListItems(ctx context.Context, f ListFilter) ([]Item, error)
	// PutAsset creates or replaces the asset of an item in a transaction of
	// its own; not_found when the item does not exist.
	PutAsset(ctx context.Context, item strata.ID, a Asset) error
	// Ping checks every database.
	Ping(ctx context.Context) error
	// BlobsReferenced reports which of the digests shas any asset, on any
	// shard, names as its file (preview false) or as one of its previews
	// (preview true); the primary of each database answers.
	BlobsReferenced(ctx context.Context, shas []string, preview bool) (map[string]bool, error)
	UploadStore // resumable uploads (tus.go)
}

// Tx is the write side of Store, bound to one transaction on one shard.
type Tx interface {
	// InsertItem creates an item and its tags; conflict when the id exists.
	InsertItem(ctx context.Context, it *Item) error
	// ItemForUpdate reads an item with its asset in this transaction,
	// locking it; not_found when absent.
	ItemForUpdate(ctx context.Context, id strata.ID) (*Item, error)
	// UpdateItem writes every field of an item (its tags included) but its
	// asset; not_found when absent.
	UpdateItem(ctx context.Context, it *Item) error
	// PutAsset creates or replaces the asset of an item; not_found when the
	// item does not exist.
	PutAsset(ctx context.Context, item strata.ID, a Asset) error
	// Outbox writes an event that the relay publishes after commit.
	Outbox(ctx context.Context, ev queue.Event) error
}
