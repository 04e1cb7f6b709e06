// Package webhook delivers the payments module's events to URLs that
// admins register, signed so that receivers can trust them: Stripe's
// scheme, with the header Strata-Signature. It is part of the payments
// module (it reads payments' subjects) and stands apart from its ledger:
// internal/payments does not import it. docs/webhooks.md is the contract
// for receivers and operators.
//
// # Flow
//
//	outbox (payments' state change) → relay → JetStream PAYMENTS
//	  → Dispatcher (durable "payments-webhooks"): one pending delivery per
//	    subscribed, enabled endpoint, then ack
//	  → RunSender: claim a due delivery under a lease, POST it signed,
//	    record the attempt; retry with back-off until MaxAge, then failed
//
// The Dispatcher consumes only the public subjects (EventTypes:
// payment_intent.succeeded, payment_intent.payment_failed,
// purchase.completed, purchase.refunded); payments.payment_intent.settle
// and any future internal subject never reach receivers. The body sent is
// an Envelope whose id is the outbox event id, the same on every attempt:
// delivery is at least once and unordered, and receivers de-duplicate on
// it. An endpoint receives the events that happen after it was created
// (events older than the endpoint are skipped, so a new endpoint is not
// flooded with the stream's backlog); the dispatcher caches the endpoint
// list for endpointCacheTTL, so changes made on another instance take up
// to that long to apply.
//
// # Invariants
//
//   - One delivery per (event, endpoint), enforced by a unique index: a
//     message redelivered by the queue adds nothing.
//   - A delivery is sent by one sender at a time: claiming is a
//     conditional UPDATE taking a lease (lease_token, lease_until) that
//     lasts the timeout plus a minute. A sender that dies mid-delivery
//     records nothing; its lease lapses and another sender sends the
//     delivery again. The outcome is recorded only under the lease that
//     was taken, so a sender that lost its lease cannot overwrite another's.
//   - Retries: after failure n, a delay drawn uniformly from
//     [0, min(1h, 30s·2^(n-1))] (full jitter, at least 1s); the last
//     attempt is made at MaxAge (72h) after the first, and if it fails the
//     delivery is failed. 3xx counts as failure: redirects are not followed.
//   - Every attempt is logged (status code, duration, error), the last
//     50 per delivery; finished deliveries, their logs and unreferenced
//     events are swept after Retention (30 days).
//
// # Signing
//
// Sign, Header and Verify implement the scheme: v1 = hex HMAC-SHA256,
// keyed by the secret string ("whsec_" and the base64url of 32 random
// bytes, taken as is), of "<unix t>.<raw body>". A rotation keeps the
// previous secret signing beside the new one for RotationOverlap (24h):
// the header then carries two v1 values. Secrets are sealed at rest when
// a Sealer is given (cmd/strata passes auth's, keyed by the master key),
// with the endpoint id as additional data.
//
// # SSRF
//
// Endpoint URLs must be http(s), with a host, no user information. Unless
// Config.AllowPrivate, literal loopback, private, link-local, metadata and
// reserved IPs and the name localhost are refused at creation, and, what
// counts, every connection is checked on the address it is about to
// connect to (net.Dialer.Control, after resolution), so a name that
// resolves to such an address is refused too. No proxy from the
// environment is used.
//
// # Storage
//
// Tables payments_webhook_endpoints, _events, _deliveries and _attempts
// (payments' migration 00003_webhooks.sql) on the database of logical
// shard 0 (HomeShard): endpoints are platform-wide configuration, small
// and admin-managed, which every dispatcher reads; keeping the deliveries
// beside them lets a sender find due work with one indexed query instead
// of scanning every database. The cost is that all webhook writes land on
// one database; they are few next to the ledger's.
//
// # Access
//
// Routes admits admins only; the Service's methods do not check the
// caller.
package webhook
