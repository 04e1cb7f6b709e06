// Package provider is the payments module's view of a card network: the
// Provider interface a processor adapter implements, the Card a buyer
// enters, and TestProvider, a built-in network that behaves like a card
// processor's test mode (Stripe's test cards), for development, tests and
// demos.
//
// Invariants:
//
//   - A card number is never stored, logged, encoded or put in an error.
//     Card formats itself (fmt, slog, JSON) as brand and last 4 only, such
//     as "visa ****4242"; Charge carries only Brand and Last4.
//   - A declined card is not an error: Provider.Charge returns a Charge
//     with Status ChargeFailed and a FailureCode. An error means the
//     request was refused before reaching the card (invalid, conflict) or
//     the network could not be reached (unavailable, or the context's
//     error); in the last case the card may or may not have been charged,
//     and the caller retries with the same IdempotencyKey.
//   - One IdempotencyKey makes at most one charge.
//
// TestProvider keeps no state a second process would need: a charge id
// carries its creation time and outcome, under a checksum, so Retrieve
// answers for charges made by any TestProvider (another worker, a
// restarted process). Only the idempotency memory is per process.
package provider
