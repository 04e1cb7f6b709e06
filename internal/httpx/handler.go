package httpx

import (
	"context"
	"net/http"
)

// JSONHandler is the common shape of a JSON endpoint: decode the body
// (bounded by limit) into a Req, call fn, and answer status with fn's
// result as JSON — or with no body when the result is nil. Errors from
// decoding or from fn go through WriteError.
func JSONHandler[Req any](status int, limit int64, fn func(ctx context.Context, req Req) (any, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req Req
		if err := DecodeJSON(w, r, &req, limit); err != nil {
			WriteError(w, r, err)
			return
		}
		resp, err := fn(r.Context(), req)
		if err != nil {
			WriteError(w, r, err)
			return
		}
		if resp == nil {
			w.WriteHeader(status)
			return
		}
		WriteJSON(w, status, resp)
	})
}
