-- One row per (caller, Idempotency-Key): claimed while the first request
-- runs, then holding its response for replay until expires_at. Rows live on
-- the shard of the caller (scope is the caller's usr_ ID, which names it).

-- +goose Up
CREATE TABLE idempotency_keys (
    scope            TEXT NOT NULL,              -- the caller: the user id of the authenticated principal
    key              TEXT NOT NULL,              -- the Idempotency-Key header: 1-255 printable ASCII characters
    request_hash     TEXT NOT NULL,              -- hex SHA-256 of method, path, query and body
    state            TEXT NOT NULL,              -- in_flight | completed
    lock_token       TEXT NOT NULL,              -- random, new at every claim: conditional updates name the claim they act for
    locked_until     BIGINT NOT NULL,            -- unix milliseconds; past it an in_flight row may be taken over; 0 once completed
    response_status  BIGINT NOT NULL DEFAULT 0,  -- 0 while in_flight
    response_headers TEXT NOT NULL DEFAULT '{}', -- JSON object of the replayed headers, name to value
    response_body    TEXT NOT NULL DEFAULT '',   -- as written, or base64 (see response_body_encoding)
    response_body_encoding TEXT NOT NULL DEFAULT '', -- '' (UTF-8 text as is) | base64 (any other bytes)
    created_at       BIGINT NOT NULL,            -- unix milliseconds: when the current claim was made
    expires_at       BIGINT NOT NULL,            -- unix milliseconds: from then on the key counts as unused
    PRIMARY KEY (scope, key)
);

-- The sweep of expired rows.
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

-- +goose Down
DROP TABLE idempotency_keys;
