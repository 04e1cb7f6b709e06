-- +goose Up
CREATE TABLE outbox_events (
    id         TEXT PRIMARY KEY, -- evt_ ID: time-ordered, carries the shard; the Nats-Msg-Id
    subject    TEXT NOT NULL,
    payload    TEXT NOT NULL,    -- JSON
    created_at BIGINT NOT NULL,  -- unix milliseconds
    sent_at    BIGINT            -- unix milliseconds; NULL until published
);

-- The relay's scan: unsent rows in id order.
CREATE INDEX outbox_events_unsent ON outbox_events (id) WHERE sent_at IS NULL;

-- The purge of old sent rows.
CREATE INDEX outbox_events_sent ON outbox_events (sent_at) WHERE sent_at IS NOT NULL;

-- +goose Down
DROP TABLE outbox_events;
