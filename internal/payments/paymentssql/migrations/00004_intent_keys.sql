-- +goose Up
-- The Idempotency-Key a top-up was created under: one intent per user and
-- key, whatever happens to the key's lock (a slow or crashed request whose
-- retry runs again finds the intent instead of charging again).
ALTER TABLE payments_intents ADD COLUMN idempotency_key TEXT NOT NULL DEFAULT '';
CREATE UNIQUE INDEX payments_intents_key ON payments_intents (user_id, idempotency_key) WHERE idempotency_key <> '';

-- +goose Down
DROP INDEX payments_intents_key;
ALTER TABLE payments_intents DROP COLUMN idempotency_key;
