-- Cross-database purchases (a saga). The buyer's database records the
-- purchase with settlement 'saga': the price moved from the wallet to the
-- shard's transit account, and the creator's credit follows on the
-- creator's database, where a receipt records, once per purchase, whether
-- the credit was applied or canceled (a refund or a compensation got there
-- first, fencing it off for good).

-- +goose Up
ALTER TABLE payments_purchases ADD COLUMN settlement TEXT NOT NULL DEFAULT 'local'; -- local | saga
ALTER TABLE payments_purchases ADD COLUMN refund_reason TEXT NOT NULL DEFAULT '';   -- '' | credit_failed
ALTER TABLE payments_purchases ADD COLUMN credited_at BIGINT;                       -- saga: unix ms when the creator's database confirmed the credit

CREATE TABLE payments_saga_receipts (
    purchase_id        TEXT PRIMARY KEY, -- the purchase on the buyer's database
    state              TEXT NOT NULL,    -- applied | canceled
    credit_transfer_id TEXT NOT NULL,    -- transit -> earnings ('' when canceled)
    fee_transfer_id    TEXT NOT NULL,    -- earnings -> revenue ('' when canceled or no fee)
    cause              TEXT NOT NULL DEFAULT '', -- why it was canceled
    creator_id         TEXT NOT NULL,
    currency           TEXT NOT NULL,
    refunded_at        BIGINT,                   -- unix ms: the credit was taken back by a refund
    refund_deficit     BIGINT NOT NULL DEFAULT 0, -- earnings overdrawn by a forced refund (recorded here, beside the earnings)
    created_at         BIGINT NOT NULL
);

-- +goose Down
DROP TABLE payments_saga_receipts;
ALTER TABLE payments_purchases DROP COLUMN credited_at;
ALTER TABLE payments_purchases DROP COLUMN refund_reason;
ALTER TABLE payments_purchases DROP COLUMN settlement;
