-- +goose Up
-- Payment intents of top-ups, on the user's shard. Their states follow
-- Stripe's: processing -> succeeded, or requires_payment_method with the
-- failure code; canceled.
CREATE TABLE payments_intents (
    id           TEXT PRIMARY KEY,  -- pi_ ID on the user's shard
    shard        BIGINT NOT NULL,
    user_id      TEXT NOT NULL,
    amount       BIGINT NOT NULL,   -- minor units
    currency     TEXT NOT NULL,
    status       TEXT NOT NULL,     -- processing | succeeded | requires_payment_method | canceled
    failure_code TEXT NOT NULL DEFAULT '',
    attempt      BIGINT NOT NULL,   -- the provider's idempotency key is <id>/<attempt>
    charge_id    TEXT NOT NULL DEFAULT '',
    card_brand   TEXT NOT NULL DEFAULT '',
    card_last4   TEXT NOT NULL DEFAULT '',
    transfer_id  TEXT NOT NULL DEFAULT '',
    created_at   BIGINT NOT NULL,
    updated_at   BIGINT NOT NULL
);
CREATE INDEX payments_intents_user ON payments_intents (user_id, id);

-- +goose Down
DROP TABLE payments_intents;
