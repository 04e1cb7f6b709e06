// Package observability builds what lets an operator see into a running
// Strata process: the structured logger (log/slog), Prometheus metrics on a
// registry of its own, the liveness and readiness probes, and the pprof
// debug handler.
//
// Nothing here is global: NewLogger, NewMetrics and NewProbes return values
// that run.go creates once and passes to whoever needs them, so tests build
// their own and never share state.
//
// Invariants:
//   - Metric labels have bounded cardinality: routes are ServeMux patterns
//     (learned through httpx.CaptureRoute), never raw paths, and unknown HTTP
//     methods are folded into "other".
//   - /healthz answers 200 as long as the process can serve HTTP; /readyz
//     answers 503 as soon as SetDraining is called, so load balancers stop
//     sending traffic before the server shuts down.
//   - /readyz says of each check only "ok" or "failing": it is served on the
//     public listener, so why a check fails (paths, addresses) is logged,
//     never answered.
//   - The in-flight gauge is per route: Metrics.InFlight wraps each route's
//     handler through httpx.Mux.Wrap, inside the mux, where the route is known.
//   - The pprof handler is meant for a separate listener that is off by
//     default; it is never mounted on the public mux.
package observability
