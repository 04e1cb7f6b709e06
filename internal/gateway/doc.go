// Package gateway is the front door of a split deployment: an HTTP reverse
// proxy that routes each request by its path prefix to the pool of
// instances serving that module (auth, content, payments), and keeps the
// deployment answering while instances come, go and fail.
//
// Per pool, a balancing policy from package balance picks an instance
// (round-robin, least-request by power of two choices, or consistent
// hashing on the item id for cache locality). Instances come from a
// discovery.Source (a static list, DNS names re-resolved, or NATS
// announcements). Each instance is checked actively (GET /readyz) and
// passively: consecutive failures open its circuit breaker, which ejects
// it, with a back-off that doubles on each ejection, until a trial request
// succeeds.
//
// Requests that are safe to send twice (GET, HEAD, OPTIONS, or carrying an
// Idempotency-Key) are retried on another instance after a transport error
// or a 502/503/504, with jittered back-off, within a retry budget that
// keeps retries a small fraction of the traffic so that they cannot
// multiply an outage. Any request is retried when its connection was
// refused, since nothing reached the instance.
//
// Before a request reaches a pool it passes a per-client rate limit (a
// Limiter: a token bucket per client address here, one shared through
// Redis across gateways where configured) and an adaptive concurrency
// limit that sheds excess load with 503 and Retry-After while latency is
// still low, instead of letting queues grow until everything times out.
//
// Bodies stream both ways; the gateway adds X-Forwarded-For/-Proto/-Host,
// propagates the request id and the W3C trace context (with a span of its
// own), and keeps a warm pool of keep-alive connections per instance.
package gateway
