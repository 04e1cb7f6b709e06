package httpx

import (
	"context"
	"io"
	"net/http"
	"sync/atomic"
)

// ResponseWriter wraps an http.ResponseWriter and records the status and the
// number of body bytes written. It supports http.Flusher directly and every
// other optional interface (Hijacker, deadlines, full duplex) through
// http.ResponseController, which follows Unwrap.
type ResponseWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	before []func() // run once, just before the status line is written
}

// BeforeHeader has fn run just before the status line is written (or at
// once, if it was), so middleware can add headers that depend on what the
// handler did.
func (w *ResponseWriter) BeforeHeader(fn func()) {
	if w.status != 0 {
		return
	}
	w.before = append(w.before, fn)
}

// begin runs the BeforeHeader hooks and records status.
func (w *ResponseWriter) begin(status int) {
	hooks := w.before
	w.before = nil
	for _, fn := range hooks {
		fn()
	}
	w.status = status
}

// NewResponseWriter wraps w; when w already is a *ResponseWriter it is
// returned as is, so nested middleware share one record.
func NewResponseWriter(w http.ResponseWriter) *ResponseWriter {
	if rw, ok := w.(*ResponseWriter); ok {
		return rw
	}
	return &ResponseWriter{ResponseWriter: w}
}

// WriteHeader records the first final (non-1xx) status and passes it on.
func (w *ResponseWriter) WriteHeader(status int) {
	if w.status == 0 && status >= 200 {
		w.begin(status)
	}
	w.ResponseWriter.WriteHeader(status)
}

// Write records an implicit 200 and the bytes written.
func (w *ResponseWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.begin(http.StatusOK)
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// ReadFrom copies r to the response through the wrapped writer's ReadFrom
// when it has one, so net/http can send an *os.File with sendfile(2), and
// records the bytes.
func (w *ResponseWriter) ReadFrom(r io.Reader) (int64, error) {
	if w.status == 0 {
		w.begin(http.StatusOK)
	}
	var n int64
	var err error
	if rf, ok := w.ResponseWriter.(io.ReaderFrom); ok {
		n, err = rf.ReadFrom(r)
	} else {
		n, err = io.Copy(writerOnly{w.ResponseWriter}, r)
	}
	w.bytes += n
	return n, err
}

// writerOnly hides every method but Write, so io.Copy cannot loop back
// into ReadFrom.
type writerOnly struct{ io.Writer }

// Flush sends buffered data to the client, when the wrapped writer can.
func (w *ResponseWriter) Flush() {
	if w.status == 0 {
		w.begin(http.StatusOK)
	}
	_ = http.NewResponseController(w.ResponseWriter).Flush()
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (w *ResponseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// Written reports whether the status line has been written.
func (w *ResponseWriter) Written() bool { return w.status != 0 }

// Status returns the status written, or 200 when nothing was written yet,
// since that is what net/http sends for a handler that writes nothing.
func (w *ResponseWriter) Status() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}

// BytesWritten returns the number of body bytes written.
func (w *ResponseWriter) BytesWritten() int64 { return w.bytes }

type routeKey struct{}

// routeSlot receives the pattern of the route that served a request. It is
// atomic because a handler such as http.TimeoutHandler may run the route on
// another goroutine than the middleware that reads it.
type routeSlot struct{ pattern atomic.Pointer[string] }

// CaptureRoute prepares r so that middleware outside the router can learn the
// route pattern that served it. It returns the request to pass on and a
// function that, once ServeHTTP has returned, reports the pattern: the one
// Mux recorded, else the r.Pattern a plain http.ServeMux set on this very
// request, else "" (no route matched). Nested calls share one slot.
func CaptureRoute(r *http.Request) (*http.Request, func() string) {
	slot := routeSlotFrom(r.Context())
	if slot == nil {
		slot = new(routeSlot)
		r = r.WithContext(context.WithValue(r.Context(), routeKey{}, slot))
	}
	return r, func() string {
		if p := slot.pattern.Load(); p != nil {
			return *p
		}
		return r.Pattern
	}
}

// setRoute records r.Pattern in the slot of CaptureRoute, if there is one.
func setRoute(r *http.Request) {
	if slot := routeSlotFrom(r.Context()); slot != nil {
		p := r.Pattern
		slot.pattern.Store(&p)
	}
}

// routeSlotFrom finds the route slot of a request: its own, or the one in
// the request state RequestID made.
func routeSlotFrom(ctx context.Context) *routeSlot {
	if slot, ok := ctx.Value(routeKey{}).(*routeSlot); ok {
		return slot
	}
	if st := stateFrom(ctx); st != nil {
		return &st.route
	}
	return nil
}
