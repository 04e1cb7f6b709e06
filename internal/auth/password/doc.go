// Package password hashes, verifies and vets user passwords.
//
// Hashes are argon2id (golang.org/x/crypto/argon2) stored as PHC strings,
//
//	$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>
//
// with salt and hash in unpadded standard base64, so that every stored hash
// carries the parameters it was made with. Verify reports rehash when they
// differ from the current ones, and the caller stores a fresh hash on that
// successful login: raising the cost needs no migration.
//
// Parameters. DefaultParams is OWASP's minimum for argon2id: 19 MiB, 2
// passes, 1 lane, 16-byte salt, 32-byte hash. OWASP lists five settings of
// equal strength, from 46 MiB×1 pass to 7 MiB×5 passes. On the 2-core
// reference machine, busy with other jobs (load average 1–2), they took 79,
// 47, 38, 34 and 26 ms. 19 MiB×2 sits in the middle: it takes about 60% of
// the time of 46 MiB×1 and makes each guess use 2.7 times the memory of
// Keycloak's 7 MiB×5, and memory is what a GPU attacker pays for. One hash
// takes 34 ms on an idle machine (as measured for the dependency report)
// and 45–55 ms on a busy one, so a core serves about 18–29 password checks
// a second. That is above the 15 per vCPU that Keycloak sizes for.
// Params.Validate refuses anything below OWASP's table, and anything above
// 1 GiB or 64 passes.
//
// Invariants:
//   - At most maxConcurrent hashes run at once (NumCPU by default), so login
//     bursts queue instead of exhausting memory (each hash holds Memory KiB).
//     A caller whose context ends while queued gets CodeUnavailable with
//     reason "overloaded" and RetryAfter set.
//   - Comparison is constant-time, and VerifyDummy makes a login for an
//     unknown account cost the same as one with a wrong password.
//   - A malformed stored hash is a CodeInternal error, never a panic;
//     decoding bounds the parameters so that a corrupt row cannot ask for
//     more than 1 GiB.
//
// Policy vets new passwords: at least 10 characters (runes), at most 256
// bytes, not among the 10,000 most common passwords (case-insensitive; the
// list is SecLists' top 10,000, MIT, see README.md), and not containing the
// user's email local part or name. Its errors are CodeInvalid with a field
// error on "password" and a specific Reason.
package password
