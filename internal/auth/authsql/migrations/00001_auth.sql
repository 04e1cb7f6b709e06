-- +goose Up
CREATE TABLE auth_users (
    id             TEXT PRIMARY KEY,
    shard          BIGINT NOT NULL,
    email          TEXT NOT NULL,
    name           TEXT NOT NULL,
    roles          TEXT NOT NULL,
    email_verified BOOLEAN NOT NULL DEFAULT FALSE,
    password_hash  TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    updated_at     BIGINT NOT NULL
);

-- The email index lives on the shard of the email's hash, not the user's.
CREATE TABLE auth_email_index (
    email      TEXT PRIMARY KEY,
    shard      BIGINT NOT NULL,
    user_id    TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE auth_sessions (
    id            TEXT PRIMARY KEY,
    user_id       TEXT NOT NULL REFERENCES auth_users (id),
    created_at    BIGINT NOT NULL,
    expires_at    BIGINT NOT NULL,
    revoked_at    BIGINT,
    revoke_reason TEXT NOT NULL DEFAULT '',
    user_agent    TEXT NOT NULL DEFAULT '',
    ip            TEXT NOT NULL DEFAULT ''
);
CREATE INDEX auth_sessions_user ON auth_sessions (user_id);

CREATE TABLE auth_refresh_tokens (
    id         TEXT PRIMARY KEY,
    session_id TEXT NOT NULL REFERENCES auth_sessions (id),
    user_id    TEXT NOT NULL,
    hash       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);
CREATE INDEX auth_refresh_tokens_session ON auth_refresh_tokens (session_id);

CREATE TABLE auth_one_time_tokens (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL REFERENCES auth_users (id),
    purpose    TEXT NOT NULL,
    hash       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at    BIGINT
);

CREATE TABLE auth_audit (
    id         TEXT PRIMARY KEY,
    user_id    TEXT NOT NULL DEFAULT '',
    event      TEXT NOT NULL,
    ip         TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT '',
    detail     TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL
);
CREATE INDEX auth_audit_user ON auth_audit (user_id, id);
CREATE INDEX auth_audit_event ON auth_audit (event, id);

CREATE TABLE auth_signing_keys (
    id          TEXT PRIMARY KEY,
    generation  BIGINT NOT NULL UNIQUE,
    public_key  TEXT NOT NULL,
    sealed_key  TEXT NOT NULL,
    not_before  BIGINT NOT NULL,
    retire_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    created_at  BIGINT NOT NULL
);

CREATE TABLE auth_throttle (
    key          TEXT PRIMARY KEY,
    window_start BIGINT NOT NULL,
    failures     BIGINT NOT NULL,
    locked_until BIGINT NOT NULL
);

-- +goose Down
DROP TABLE auth_throttle;
DROP TABLE auth_signing_keys;
DROP TABLE auth_audit;
DROP TABLE auth_one_time_tokens;
DROP TABLE auth_refresh_tokens;
DROP TABLE auth_sessions;
DROP TABLE auth_email_index;
DROP TABLE auth_users;
