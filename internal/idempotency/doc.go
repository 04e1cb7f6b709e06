// Package idempotency makes mutating requests safe to retry: a client sends
// an Idempotency-Key header, and every request with the same key gets the
// outcome of the first, which runs once. It is a building block (middleware
// and its store) that every module's mutating routes share; docs/idempotency.md
// states the contract for clients and operators.
//
// # The contract
//
// Middleware acts on requests that carry Idempotency-Key (1 to 255
// printable ASCII characters; else 400 validation_failed naming the field),
// have an unsafe method and an authenticated principal. Keys are scoped to
// the principal's user: two users' equal keys never meet. Requests without
// a principal pass through, key ignored: with no caller to scope to, one
// anonymous client could be replayed another's response.
//
// The request is fingerprinted (SHA-256 of method, path, query and body;
// the body is read whole, at most Config.MaxBody, else 413 body_too_large)
// and the key claimed. Then:
//
//   - a new key, or one whose TTL passed: the handler runs;
//   - a key completed by the same request: the recorded status, headers
//     (replayHeaders) and body are replayed as they were, with
//     Idempotent-Replayed: true, and the handler does not run;
//   - a key used by a different request: 422 idempotency_key_reused;
//   - a key whose request is still running: 409 idempotency_key_in_use,
//     Retry-After: 1;
//   - a key in flight whose claim is older than Config.LockTimeout: the
//     instance that claimed it is presumed dead; one retry takes it over
//     (a conditional UPDATE on the claim's token) and runs the handler;
//   - the store failing: 503, and the handler does not run.
//
// The response is recorded only when it is final (see recorded): 2xx, 3xx
// and 4xx except 400, 401, 403, 408, 409, 413, 415, 422 and 429. Others,
// 5xx included, release the key (delete its row), so a corrected or later
// retry runs afresh. A response body over Config.MaxStoredBody reaches the
// client but is not recorded. The recorder streams to the client as the
// handler writes: nothing waits for the store.
//
// # Storage
//
// Table idempotency_keys (migrations in migrations/, goose table
// goose_idempotency), on the shard of the caller, primary key (scope,
// key). Store.Sweep deletes expired rows on every database; Store.Run
// sweeps periodically. All times come from the injected strata.Clock.
//
// # Limits
//
// The recorded response is written after the handler's own transaction
// commits, not inside it: if the instance dies in between, the key stays
// in flight until the lock lapses and the retry then runs the handler a
// second time. Handlers whose effect must happen once should also rely on
// their own uniqueness constraints. The fingerprint compares bytes: the
// same JSON with keys in another order is a different request (422).
package idempotency
