-- +goose Up
-- The purge finds expired and revoked rows by these columns.
CREATE INDEX auth_sessions_expires ON auth_sessions (expires_at);
CREATE INDEX auth_sessions_revoked ON auth_sessions (revoked_at);
CREATE INDEX auth_one_time_tokens_expires ON auth_one_time_tokens (expires_at);

-- +goose Down
DROP INDEX auth_one_time_tokens_expires;
DROP INDEX auth_sessions_revoked;
DROP INDEX auth_sessions_expires;
