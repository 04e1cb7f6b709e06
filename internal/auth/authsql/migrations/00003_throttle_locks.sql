-- +goose Up
-- How many times a key was locked in its window: each lock doubles.
ALTER TABLE auth_throttle ADD COLUMN locks BIGINT NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE auth_throttle DROP COLUMN locks;
