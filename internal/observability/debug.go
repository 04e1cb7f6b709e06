package observability

import (
	"net/http"
	"net/http/pprof"
)

// DebugHandler serves the net/http/pprof endpoints under /debug/pprof/, on a
// mux of its own. Profiles reveal memory contents and cost CPU: serve it only
// on a separate, non-public listener, which is off by default.
func DebugHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index) // also serves heap, goroutine, allocs...
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
