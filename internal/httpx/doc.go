// Package httpx holds the HTTP building blocks every Strata module shares:
// decoding JSON request bodies, encoding responses, the one mapping from
// strata error codes to HTTP statuses (WriteError), request ids, the context
// logger, and the standard middleware.
//
// Invariants:
//   - Every error response is RFC 9457 application/problem+json with a stable
//     machine code; the internal cause of an error (strata.Error.Err, or any
//     error that is not a *strata.Error) never reaches a client, only the log.
//   - DecodeJSON returns only *strata.Error values with 4xx codes for bad
//     input, so handlers can pass its error straight to WriteError.
//   - Routes are registered on a Mux, which answers unknown routes (404) and
//     wrong methods (405) with problem+json too, and records every pattern so
//     tests can compare them with the OpenAPI document.
//
// The usual chain, outermost first, is
//
//	httpx.Chain(mux, httpx.RequestID, httpx.AccessLog(logger), metrics.HTTPMiddleware, httpx.Recover)
//
// RequestID comes first so every later layer sees the id; AccessLog puts a
// logger carrying request_id in the context, which WriteError and Recover use;
// Recover sits inside the access log and metrics so they record its 500.
//
// Middleware outside the Mux learns the matched route pattern through
// CaptureRoute: the Mux fills a slot in the request context with r.Pattern
// before calling the route's handler. Middleware that needs the route while
// the request is in progress (the per-route in-flight gauge) goes inside
// instead, through Mux.Wrap, set before the routes are registered:
//
//	mux := httpx.NewMux()
//	mux.Wrap(metrics.InFlight)
//	mux.Handle(...)
//
// ClientIP, used to key per-client limits, believes only the rightmost
// X-Forwarded-For entry, and only when told a proxy stands in front. Never label metrics or logs with the raw
// path as a route: its cardinality is unbounded.
package httpx
