// Package content is Strata's content-delivery module: the catalog of items
// that creators sell or give away (price, tags, publication status), their
// asset — the file a creator uploads whole (PUT /v1/items/{id}/file) or by
// the tus protocol (/v1/uploads/), which AssetProcessor verifies and
// previews — and delivery: GET /v1/items/{id}/download checks access and
// redirects to a signed, expiring /cdn/ URL that any instance serves from
// blob storage or its hot-object cache.
//
// # What it owns
//
// Tables (package contentsql), all on the shard of the item's creator (an
// item id carries its creator's shard, so a request routes to its database
// without a lookup): content_items, content_item_tags (one row per tag, for
// the tag filter) and content_assets (one row per item with an upload). The
// files themselves live in blob storage (Deps.Blobs), keyed by SHA-256;
// content owns the references to them, not the blobs.
//
// # Uploads and processing
//
// An upload streams the body to blob storage, bounded by
// Config.UploadMaxBytes (413 body_too_large), and accepts only the media
// types of Config.UploadTypes as sniffed from the bytes (415
// unsupported_media_type). A refused upload may leave an unreferenced blob,
// for a later sweep. The asset then becomes processing and
// content.asset.uploaded is written in the same transaction. AssetProcessor
// (durable consumer "content-processor") re-hashes the stored bytes
// (failed "checksum_mismatch"), reads the header of images only (failed
// "image_too_large" past MaxPixels, a decompression bomb, or
// "image_unreadable") and marks the asset ready with the image's size.
// Events of a replaced or finished asset are dropped, so redelivery is
// harmless. Uploading again replaces the asset; a published item stays
// published while the new file is processed. For images it also makes a
// thumbnail and a blurred preview in the blob store's "previews" namespace.
// Resumable uploads keep their parts in blob storage and their state and
// cross-instance lock in content_uploads, so any instance takes the next
// PATCH. Cleanup (run by the worker) expires uploads and sweeps blobs that
// no asset references.
//
// # Delivery
//
// Download allows the creator and admins, anyone for a free published item,
// and holders of an Entitlements grant; the URL it signs (URLSigner,
// HMAC-SHA256 with rotating key ids) covers the content-addressed path, the
// expiry and the user. /cdn/ needs no database: the signature says who may
// fetch, the digest names the bytes.
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
//   - Every change of the item's fields bumps its version by one and writes
//     its event to the outbox in the same transaction; asset changes write
//     their content.asset.* event the same way but leave the version alone.
//   - Listing gathers from every database and merges by id, newest first:
//     the fan-out reads at most (limit+1) × databases rows.
//
// # Events
//
// Published through the transactional outbox on stream CONTENT (see
// StreamConfig): content.item.created, content.item.updated,
// content.item.published, content.item.unpublished and content.item.deleted,
// each an ItemEvent; content.asset.uploaded (AssetUploadedEvent), consumed
// by AssetProcessor; content.asset.ready and content.asset.failed
// (AssetResultEvent).
package content
