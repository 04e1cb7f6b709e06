// Package auth is Strata's accounts module: users and their credentials,
// access and refresh tokens, signing keys, login throttling, email
// verification and password reset, and the security audit log.
//
// # What it owns
//
// Tables (package authsql): auth_users and auth_email_index (a user lives on
// a random logical shard; the email index lives on the shard of the email's
// hash so login finds the user without a scatter), auth_sessions and
// auth_refresh_tokens (on the user's shard), auth_one_time_tokens
// (verification and reset, on the user's shard), auth_throttle (on the shard
// of the throttled key), auth_audit (on the user's shard, or the email's
// for failures against unknown emails) and auth_signing_keys (on logical
// shard 0).
//
// # Invariants
//
//   - Passwords are stored only as argon2id PHC strings; refresh, reset and
//     verification tokens only as SHA-256 hashes.
//   - A refresh token is single-use. Presenting a rotated token again after
//     the grace window revokes its whole session (token family).
//   - Access tokens are verified from the key ring alone: no database call on
//     the request path. They stay valid until exp (15 minutes by default)
//     even after logout; refresh is what logout and reset revoke.
//   - An unknown email and a wrong password take the same time and get the
//     same answer.
//
// # Events
//
// Published through the transactional outbox on subjects auth.mail.*:
// auth.mail.verify_email and auth.mail.password_reset, consumed by the mail
// consumer (MailConsumer) in the worker role, which renders and sends them
// through a mail.Mailer.
package auth
