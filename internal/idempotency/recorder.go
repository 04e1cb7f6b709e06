package idempotency

import (
	"bytes"
	"net/http"
	"strings"
)

// recorder passes a response through to the client as it is written and
// keeps a copy for recording: the final status, the replayed headers as
// they were when the status went out, and the body up to limit bytes
// (overflow reports that it was longer). It keeps what the handler wrote,
// whether or not the client was still there to receive it.
//
// It has no ReadFrom: bytes copied straight to the connection would not be
// kept. Flush and, through Unwrap, http.ResponseController work.
type recorder struct {
	http.ResponseWriter
	limit int64

	status   int
	headers  map[string]string
	body     bytes.Buffer
	overflow bool
}

// WriteHeader records the first final (non-1xx) status and the headers
// sent with it.
func (r *recorder) WriteHeader(status int) {
	if r.status == 0 && status >= 200 {
		r.status = status
		r.headers = pickHeaders(r.Header())
	}
	r.ResponseWriter.WriteHeader(status)
}

// Write keeps b, up to the limit, and passes it on.
func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK) // what net/http does on the first Write
	}
	if !r.overflow {
		if int64(r.body.Len()+len(b)) > r.limit {
			r.overflow = true
			r.body = bytes.Buffer{} // never recorded: free it now
		} else {
			r.body.Write(b)
		}
	}
	return r.ResponseWriter.Write(b)
}

// Flush sends buffered data to the client, when the wrapped writer can.
func (r *recorder) Flush() {
	if r.status == 0 {
		r.WriteHeader(http.StatusOK)
	}
	_ = http.NewResponseController(r.ResponseWriter).Flush()
}

// Unwrap returns the wrapped writer, for http.ResponseController.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// response returns what was written; a handler that wrote nothing sent 200
// with no body, as net/http does.
func (r *recorder) response() response {
	if r.status == 0 {
		return response{status: http.StatusOK, headers: pickHeaders(r.Header())}
	}
	return response{status: r.status, headers: r.headers, body: r.body.Bytes()}
}

// pickHeaders returns the replayHeaders present in h, each one value
// (several lines joined with ", ", as HTTP allows for list headers).
func pickHeaders(h http.Header) map[string]string {
	out := map[string]string{}
	for _, name := range replayHeaders {
		if v := h.Values(name); len(v) > 0 {
			out[name] = strings.Join(v, ", ")
		}
	}
	return out
}
