// Package content is Strata's content-delivery module. This slice holds the
// catalog: items that creators sell or give away, with their price, tags,
// publication status and (once uploads land) their asset.
//
// # What it owns
//
// Tables (package contentsql), all on the shard of the item's creator (an
// item id carries its creator's shard, so a request routes to its database
// without a lookup): content_items, content_item_tags (one row per tag, for
// the tag filter) and content_assets (one row per item with an upload; the
// upload and processing work fills it).
//
// # Invariants
//
//   - Only the creator of an item or an admin changes it; anyone else gets
//     permission_denied "not_owner".
//   - Drafts, unpublished and deleted items are visible only to their
//     creator and admins; to anyone else they do not exist (not_found).
//   - An item is published only while its asset is ready
//     (conflict "asset_not_ready"); a deleted item cannot change again
//     (conflict "item_deleted").
//   - Deletion is soft: the row stays, so that buyers keep what they bought.
//   - Every change bumps the item's version by one and writes its event to
//     the outbox in the same transaction.
//   - Listing gathers from every database and merges by id, newest first:
//     the fan-out reads at most (limit+1) × databases rows.
//
// # Events
//
// Published through the transactional outbox on stream CONTENT (see
// StreamConfig): content.item.created, content.item.updated,
// content.item.published, content.item.unpublished and content.item.deleted,
// each an ItemEvent. Nothing is consumed yet.
package content
