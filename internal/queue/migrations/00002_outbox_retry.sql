-- A row whose publish fails is retried with back-off instead of blocking
-- every later row (see Relay).

-- +goose Up
ALTER TABLE outbox_events ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;        -- failed publishes so far
ALTER TABLE outbox_events ADD COLUMN next_attempt_at BIGINT NOT NULL DEFAULT 0; -- unix milliseconds; 0: at once
ALTER TABLE outbox_events ADD COLUMN last_error TEXT NOT NULL DEFAULT '';       -- the last publish error

-- The relay's scan: unsent rows that are due, in id order. The index is
-- walked in id order and next_attempt_at is checked in it, so the LIMIT
-- stops the walk early; only rows backing off are skipped.
DROP INDEX outbox_events_unsent;
CREATE INDEX outbox_events_unsent ON outbox_events (id, next_attempt_at) WHERE sent_at IS NULL;

-- +goose Down
DROP INDEX outbox_events_unsent;
CREATE INDEX outbox_events_unsent ON outbox_events (id) WHERE sent_at IS NULL;
ALTER TABLE outbox_events DROP COLUMN last_error;
ALTER TABLE outbox_events DROP COLUMN next_attempt_at;
ALTER TABLE outbox_events DROP COLUMN attempts;
