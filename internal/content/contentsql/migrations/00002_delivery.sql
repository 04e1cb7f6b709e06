-- +goose Up
-- The name the uploader gave the file, for Content-Disposition.
ALTER TABLE content_assets ADD COLUMN filename TEXT NOT NULL DEFAULT '';
-- Previews made by processing, for images: a thumbnail, and a small blurred
-- preview; both are digests in the blob store's "previews" namespace ('' until
-- made).
ALTER TABLE content_assets ADD COLUMN thumbnail_sha256 TEXT NOT NULL DEFAULT '';
ALTER TABLE content_assets ADD COLUMN preview_sha256 TEXT NOT NULL DEFAULT '';
-- The sweep of unreferenced blobs asks whether any asset still names a digest.
CREATE INDEX content_assets_sha256 ON content_assets (sha256);
CREATE INDEX content_assets_thumbnail ON content_assets (thumbnail_sha256);
CREATE INDEX content_assets_preview ON content_assets (preview_sha256);

-- +goose Down
DROP INDEX content_assets_preview;
DROP INDEX content_assets_thumbnail;
DROP INDEX content_assets_sha256;
ALTER TABLE content_assets DROP COLUMN preview_sha256;
ALTER TABLE content_assets DROP COLUMN thumbnail_sha256;
ALTER TABLE content_assets DROP COLUMN filename;
