-- +goose Up
-- A rotated refresh token keeps its successor, sealed with the master key,
-- so a replay inside the reuse grace window gets the same successor back
-- instead of starting a second, undetectable chain.
ALTER TABLE auth_refresh_tokens ADD COLUMN successor TEXT NOT NULL DEFAULT '';
CREATE INDEX auth_refresh_tokens_expires ON auth_refresh_tokens (expires_at);
CREATE INDEX auth_throttle_window ON auth_throttle (window_start);

-- +goose Down
DROP INDEX auth_throttle_window;
DROP INDEX auth_refresh_tokens_expires;
ALTER TABLE auth_refresh_tokens DROP COLUMN successor;
