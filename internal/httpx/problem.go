package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/stratadev/strata"
)

// ProblemTypeBase prefixes the machine code to form a problem's type URI.
const ProblemTypeBase = "https://strata.dev/problems/"

// ContentTypeProblem is the media type of every error response (RFC 9457).
const ContentTypeProblem = "application/problem+json"

// Problem is the body of every error response: RFC 9457 problem details with
// Strata's extension members code, request_id and errors.
type Problem struct {
	// Type is ProblemTypeBase followed by Code.
	Type string `json:"type"`
	// Title is the standard text of the status, such as "Not Found".
	Title  string `json:"title"`
	Status int    `json:"status"`
	// Detail is strata.Error.Message: safe for users, never the cause.
	Detail string `json:"detail,omitempty"`
	// Code is the stable machine code: strata.Error.Reason, else its Code.
	Code      string `json:"code"`
	RequestID string `json:"request_id,omitempty"`
	// Errors names the invalid fields of a 4xx validation error.
	Errors []strata.FieldError `json:"errors,omitempty"`
}

// statusOf is the one mapping from strata error codes to HTTP statuses.
// An unknown code is a bug and maps to 500.
func statusOf(code strata.Code) int {
	switch code {
	case strata.CodeInvalid:
		return http.StatusBadRequest
	case strata.CodeUnauthenticated:
		return http.StatusUnauthorized
	case strata.CodePaymentRequired:
		return http.StatusPaymentRequired
	case strata.CodePermissionDenied:
		return http.StatusForbidden
	case strata.CodeNotFound:
		return http.StatusNotFound
	case strata.CodeConflict:
		return http.StatusConflict
	case strata.CodeTooLarge:
		return http.StatusRequestEntityTooLarge
	case strata.CodeUnsupported:
		return http.StatusUnsupportedMediaType
	case strata.CodeUnprocessable:
		return http.StatusUnprocessableEntity
	case strata.CodeRateLimited:
		return http.StatusTooManyRequests
	case strata.CodeUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// WriteJSON writes v as JSON with the given status. v is encoded before
// anything is written; a value that cannot be encoded is a programming error,
// so WriteJSON then panics with nothing written, and Recover logs it and
// answers 500.
func WriteJSON(w http.ResponseWriter, status int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Errorf("httpx: encode %T response: %w", v, err))
	}
	WriteJSONBytes(w, status, body)
}

// WriteJSONBytes answers status with body, JSON its caller encoded already
// (a cached response, say), followed by a newline.
func WriteJSONBytes(w http.ResponseWriter, status int, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(status)
	_, _ = w.Write(body)
	_, _ = w.Write(newline)
}

var newline = []byte{'\n'}

// WriteError writes err as problem+json; it is the one place where strata
// error codes become HTTP statuses (see statusOf). An error that is not (and
// does not wrap) a *strata.Error is a 500 with a generic detail: its text is
// never shown. 5xx errors are logged, with their cause, through Logger(ctx).
//
// Retry-After is set, in whole seconds rounded up (at least 1), when
// RetryAfter is positive; 429 and 503 always carry it, defaulting to 1 second,
// as the API conventions promise. 401 carries WWW-Authenticate: Bearer, with
// error="invalid_token" when a bearer token was presented and refused (a
// reason starting "token_"); a request without one gets a bare challenge
// (RFC 6750 §3.1).
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	ctx := context.Background()
	if r != nil {
		ctx = r.Context()
	}
	var e *strata.Error
	if !errors.As(err, &e) {
		if err == nil {
			err = errors.New("httpx: WriteError called with a nil error")
		}
		e = strata.Internal(err)
	}
	status := statusOf(e.Code)
	code := e.Reason
	if code == "" {
		code = string(e.Code)
	}
	if status == http.StatusInternalServerError {
		code = string(strata.CodeInternal) // also hides unknown codes
	}
	if status >= 500 {
		logServerError(ctx, r, status, err)
	}
	if rw, ok := w.(*ResponseWriter); ok && rw.Written() {
		return // too late for a new status; the log has the error
	}

	h := w.Header()
	if secs := retryAfterSeconds(e.RetryAfter, status); secs > 0 {
		h.Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	if status == http.StatusUnauthorized {
		challenge := "Bearer"
		if strings.HasPrefix(e.Reason, "token_") && e.Reason != ReasonTokenMissing {
			challenge = `Bearer error="invalid_token"`
		}
		h.Set("WWW-Authenticate", challenge)
	}
	p := Problem{Code: code, Detail: e.Message, RequestID: RequestIDFrom(ctx)}
	if status < 500 {
		p.Errors = e.Fields
	}
	writeProblem(w, status, p)
}

// writeProblem fills in Type, Title and Status and writes p.
func writeProblem(w http.ResponseWriter, status int, p Problem) {
	p.Status = status
	p.Title = http.StatusText(status)
	p.Type = ProblemTypeBase + p.Code
	if p.Detail == "" {
		p.Detail = p.Title
	}
	body, err := json.Marshal(p)
	if err != nil { // cannot happen: Problem holds only strings and ints
		panic(fmt.Errorf("httpx: encode problem: %w", err))
	}
	h := w.Header()
	h.Set("Content-Type", ContentTypeProblem)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(status)
	_, _ = w.Write(append(body, '\n'))
}

func retryAfterSeconds(d time.Duration, status int) int64 {
	if d <= 0 {
		if status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable {
			return 1
		}
		return 0
	}
	secs := int64((d + time.Second - 1) / time.Second)
	return max(secs, 1)
}

func logServerError(ctx context.Context, r *http.Request, status int, err error) {
	attrs := []slog.Attr{
		slog.Int("status", status),
		slog.String("code", string(strata.ErrorCode(err))),
		slog.String("reason", strata.ErrorReason(err)),
		slog.String("error", err.Error()),
	}
	if r != nil {
		attrs = append(attrs, slog.String("method", r.Method), slog.String("path", r.URL.Path))
	}
	Logger(ctx).LogAttrs(ctx, slog.LevelError, "request failed", attrs...)
}
