package httpx

import (
	"net/http"
	"slices"
	"sync"
)

// Mux is an http.ServeMux that records every registered pattern, tells
// CaptureRoute which pattern served a request, and answers unknown routes and
// wrong methods with problem+json instead of the standard text/plain:
// 404 with code "route_not_found", 405 with code "method_not_allowed" and the
// Allow header.
type Mux struct {
	mux *http.ServeMux

	mu       sync.Mutex
	patterns []string
	wrappers []func(pattern string, h http.Handler) http.Handler
}

// NewMux returns an empty Mux.
func NewMux() *Mux {
	return &Mux{mux: http.NewServeMux()}
}

// Wrap makes Handle pass every handler registered from now on through w,
// with the route's pattern: it is the place for per-route middleware, such as
// a gauge labeled with the route, which middleware outside the Mux cannot
// know before routing. Handlers registered earlier are left as they are.
// Wrappers added by successive calls all apply, the first added outermost.
// The wrapped handler runs after routing, so it also sees r.Pattern and the
// path values. A nil w is a wiring bug and panics.
func (m *Mux) Wrap(w func(pattern string, h http.Handler) http.Handler) {
	if w == nil {
		panic("httpx: Mux.Wrap with a nil func")
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.wrappers = append(m.wrappers, w)
}

// Handle registers h for pattern, with http.ServeMux syntax and rules (it
// panics on an invalid or conflicting pattern), wrapped by the funcs given
// to Wrap so far.
func (m *Mux) Handle(pattern string, h http.Handler) {
	m.mu.Lock()
	wrappers := slices.Clone(m.wrappers)
	m.mu.Unlock()
	for i := len(wrappers) - 1; i >= 0; i-- {
		h = wrappers[i](pattern, h)
	}
	m.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		setRoute(r)
		h.ServeHTTP(w, r)
	}))
	m.mu.Lock()
	m.patterns = append(m.patterns, pattern)
	m.mu.Unlock()
}

// HandleFunc registers f for pattern, like Handle.
func (m *Mux) HandleFunc(pattern string, f func(http.ResponseWriter, *http.Request)) {
	m.Handle(pattern, http.HandlerFunc(f))
}

// Patterns returns the registered patterns, in registration order.
func (m *Mux) Patterns() []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.patterns)
}

// ServeHTTP routes r. ServeMux reports no pattern exactly when it would
// answer 404 or 405 itself; then its answer is captured (for the status and
// the Allow header) and replaced with problem+json.
func (m *Mux) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h, pattern := m.mux.Handler(r)
	if pattern != "" {
		m.mux.ServeHTTP(w, r) // routes again, so r.Pattern and PathValue are set
		return
	}
	capture := &headerCapture{header: http.Header{}}
	h.ServeHTTP(capture, r)
	if capture.status == http.StatusMethodNotAllowed {
		if allow := capture.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		writeProblem(w, http.StatusMethodNotAllowed, Problem{
			Code:      "method_not_allowed",
			Detail:    "the method " + r.Method + " is not allowed on this route",
			RequestID: RequestIDFrom(r.Context()),
		})
		return
	}
	writeProblem(w, http.StatusNotFound, Problem{
		Code:      "route_not_found",
		Detail:    "no route matches the request path",
		RequestID: RequestIDFrom(r.Context()),
	})
}

// headerCapture records what ServeMux's fallback handlers would write.
type headerCapture struct {
	header http.Header
	status int
}

func (c *headerCapture) Header() http.Header { return c.header }

func (c *headerCapture) Write(b []byte) (int, error) {
	if c.status == 0 {
		c.status = http.StatusOK
	}
	return len(b), nil
}

func (c *headerCapture) WriteHeader(status int) {
	if c.status == 0 {
		c.status = status
	}
}
