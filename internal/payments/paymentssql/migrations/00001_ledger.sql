-- +goose Up
-- The double-entry ledger. Every row lives on a logical shard: a user's
-- wallet, purchases and entitlements on the user's shard, a creator's
-- earnings on the creator's, platform revenue and the external world once
-- per shard (so no single row is a hot spot).

CREATE TABLE payments_accounts (
    id         TEXT PRIMARY KEY,   -- acc_ ID on the account's shard
    shard      BIGINT NOT NULL,
    kind       TEXT NOT NULL,      -- wallet | earnings | revenue | external
    owner_id   TEXT NOT NULL,      -- the user of a wallet or earnings account; '' otherwise
    currency   TEXT NOT NULL,      -- ISO 4217
    balance    BIGINT NOT NULL,    -- minor units: the sum of the account's entries
    version    BIGINT NOT NULL,    -- bumped by every entry, for optimistic checks
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX payments_accounts_key ON payments_accounts (kind, owner_id, currency, shard);

-- A transfer is immutable and balanced: its entries sum to zero.
CREATE TABLE payments_transfers (
    id          TEXT PRIMARY KEY,  -- trf_ ID
    shard       BIGINT NOT NULL,
    type        TEXT NOT NULL,     -- topup | purchase | fee | refund | payout | correction
    currency    TEXT NOT NULL,
    amount      BIGINT NOT NULL,   -- the sum of its positive entries
    intent_id   TEXT NOT NULL DEFAULT '',
    purchase_id TEXT NOT NULL DEFAULT '',
    item_id     TEXT NOT NULL DEFAULT '',
    reverses_id TEXT NOT NULL DEFAULT '', -- the transfer a refund reverses
    created_at  BIGINT NOT NULL
);
-- A payment intent credits a wallet at most once, a transfer is reversed at
-- most once: enforced by the database, whatever the code does.
CREATE UNIQUE INDEX payments_transfers_topup_once ON payments_transfers (intent_id) WHERE type = 'topup';
CREATE UNIQUE INDEX payments_transfers_reversed_once ON payments_transfers (reverses_id) WHERE reverses_id <> '';
CREATE INDEX payments_transfers_purchase ON payments_transfers (purchase_id) WHERE purchase_id <> '';

CREATE TABLE payments_entries (
    transfer_id TEXT NOT NULL REFERENCES payments_transfers (id),
    account_id  TEXT NOT NULL REFERENCES payments_accounts (id),
    amount      BIGINT NOT NULL,   -- signed: positive raises the balance
    PRIMARY KEY (transfer_id, account_id)
);
CREATE INDEX payments_entries_account ON payments_entries (account_id, transfer_id);

CREATE TABLE payments_purchases (
    id                 TEXT PRIMARY KEY, -- pur_ ID on the buyer's shard
    shard              BIGINT NOT NULL,
    buyer_id           TEXT NOT NULL,
    item_id            TEXT NOT NULL,
    creator_id         TEXT NOT NULL,
    price_amount       BIGINT NOT NULL,
    currency           TEXT NOT NULL,
    fee_amount         BIGINT NOT NULL,
    status             TEXT NOT NULL,    -- completed | refunded
    transfer_id        TEXT NOT NULL,
    fee_transfer_id    TEXT NOT NULL,
    created_at         BIGINT NOT NULL,
    refunded_at        BIGINT,
    refund_deficit     BIGINT NOT NULL DEFAULT 0 -- earnings overdrawn by a forced refund
);
-- One live purchase per buyer and item.
CREATE UNIQUE INDEX payments_purchases_once ON payments_purchases (buyer_id, item_id) WHERE status = 'completed';
CREATE INDEX payments_purchases_buyer ON payments_purchases (buyer_id, id);

CREATE TABLE payments_entitlements (
    user_id     TEXT NOT NULL,
    item_id     TEXT NOT NULL,
    purchase_id TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    PRIMARY KEY (user_id, item_id)
);

-- +goose Down
DROP TABLE payments_entitlements;
DROP TABLE payments_purchases;
DROP TABLE payments_entries;
DROP TABLE payments_transfers;
DROP TABLE payments_accounts;
