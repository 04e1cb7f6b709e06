-- +goose Up
-- Outgoing webhooks (package internal/payments/webhook). Like every
-- payments table these exist on each database, but only the database of
-- logical shard 0 holds rows: endpoints are platform-wide configuration,
-- few and admin-managed, and keeping their deliveries beside them lets the
-- sender find due work with one query.

CREATE TABLE payments_webhook_endpoints (
    id                  TEXT PRIMARY KEY,  -- whe_ ID on shard 0
    url                 TEXT NOT NULL,
    events              TEXT NOT NULL,     -- JSON array of event types, or ["*"]
    secret              TEXT NOT NULL,     -- "sealed:<base64>" under the master key, or the plain "whsec_..."
    previous_secret     TEXT NOT NULL DEFAULT '', -- the secret before the last rotation, same encoding
    previous_expires_at BIGINT NOT NULL DEFAULT 0, -- until when previous_secret still signs
    enabled             BOOLEAN NOT NULL,
    created_at          BIGINT NOT NULL,
    updated_at          BIGINT NOT NULL
);

-- An event as it is sent: the envelope, byte for byte the same on every
-- attempt to every endpoint.
CREATE TABLE payments_webhook_events (
    id         TEXT PRIMARY KEY,  -- the outbox event id (evt_), the envelope's id
    type       TEXT NOT NULL,     -- such as purchase.completed
    body       TEXT NOT NULL,     -- the JSON envelope
    created_at BIGINT NOT NULL
);
CREATE INDEX payments_webhook_events_created ON payments_webhook_events (created_at);

CREATE TABLE payments_webhook_deliveries (
    id               TEXT PRIMARY KEY,  -- whd_ ID on shard 0
    event_id         TEXT NOT NULL REFERENCES payments_webhook_events (id),
    endpoint_id      TEXT NOT NULL REFERENCES payments_webhook_endpoints (id) ON DELETE CASCADE,
    status           TEXT NOT NULL,     -- pending | succeeded | failed
    attempts         BIGINT NOT NULL DEFAULT 0, -- every attempt, replays included
    failures         BIGINT NOT NULL DEFAULT 0, -- failed attempts in the current retry window: the back-off step
    first_attempt_at BIGINT NOT NULL DEFAULT 0, -- start of the retry window; 0 until the first attempt and after a replay
    next_attempt_at  BIGINT NOT NULL,
    lease_token      TEXT NOT NULL DEFAULT '', -- the sender holding the delivery
    lease_until      BIGINT NOT NULL DEFAULT 0, -- past it, another sender may take the delivery over
    last_status_code BIGINT NOT NULL DEFAULT 0, -- 0: no response
    last_error       TEXT NOT NULL DEFAULT '',
    created_at       BIGINT NOT NULL,
    updated_at       BIGINT NOT NULL
);
-- A redelivered queue message never makes a second delivery.
CREATE UNIQUE INDEX payments_webhook_deliveries_once ON payments_webhook_deliveries (event_id, endpoint_id);
CREATE INDEX payments_webhook_deliveries_due ON payments_webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX payments_webhook_deliveries_endpoint ON payments_webhook_deliveries (endpoint_id, id);
CREATE INDEX payments_webhook_deliveries_done ON payments_webhook_deliveries (updated_at) WHERE status <> 'pending';

-- The delivery log: the last attempts of each delivery.
CREATE TABLE payments_webhook_attempts (
    id           TEXT PRIMARY KEY,  -- wha_ ID on shard 0
    delivery_id  TEXT NOT NULL REFERENCES payments_webhook_deliveries (id) ON DELETE CASCADE,
    attempted_at BIGINT NOT NULL,
    status_code  BIGINT NOT NULL,   -- 0: no response (refused, timed out, unreachable)
    duration_ms  BIGINT NOT NULL,
    error        TEXT NOT NULL DEFAULT ''
);
CREATE INDEX payments_webhook_attempts_delivery ON payments_webhook_attempts (delivery_id, attempted_at);

-- +goose Down
DROP TABLE payments_webhook_attempts;
DROP TABLE payments_webhook_deliveries;
DROP TABLE payments_webhook_events;
DROP TABLE payments_webhook_endpoints;
