package strata

import (
	"errors"
	"fmt"
	"time"
)

// Code is the closed set of error classes. Each maps to exactly one HTTP
// status, in internal/httpx.
type Code string

// The error codes.
const (
	CodeInvalid          Code = "invalid"           // 400: the request is malformed or fails validation
	CodeUnauthenticated  Code = "unauthenticated"   // 401: no valid credential
	CodePaymentRequired  Code = "payment_required"  // 402: not enough funds
	CodePermissionDenied Code = "permission_denied" // 403: authenticated but not allowed
	CodeNotFound         Code = "not_found"         // 404
	CodeConflict         Code = "conflict"          // 409: the current state forbids it
	CodeTooLarge         Code = "too_large"         // 413: the body is over its limit
	CodeUnsupported      Code = "unsupported"       // 415: the media type is not accepted
	CodeUnprocessable    Code = "unprocessable"     // 422: well-formed but semantically refused
	CodeRateLimited      Code = "rate_limited"      // 429: slow down; RetryAfter says how long
	CodeInternal         Code = "internal"          // 500: a bug or an unexpected failure
	CodeUnavailable      Code = "unavailable"       // 503: a dependency is down; retry later
)

// FieldError names one invalid input field.
type FieldError struct {
	Field   string `json:"field"`
	Message string `json:"message"`
}

// Error is the one error type Strata returns across package boundaries.
// Message is safe to show to users; Err, the cause, never leaves the process.
type Error struct {
	Code Code
	// Reason is a stable, specific machine code such as "email_taken" or
	// "token_expired". Clients switch on it; it defaults to Code.
	Reason  string
	Message string
	// Fields lists the invalid fields of a CodeInvalid error.
	Fields []FieldError
	// RetryAfter, when set, tells the client how long to wait.
	RetryAfter time.Duration
	// Err is the internal cause, for logs only.
	Err error
}

func (e *Error) Error() string {
	s := string(e.Code)
	if e.Reason != "" && e.Reason != string(e.Code) {
		s += "/" + e.Reason
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code, reason and user-safe message.
func Errorf(code Code, reason, format string, args ...any) *Error {
	return &Error{Code: code, Reason: reason, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns a CodeInvalid error naming the invalid fields, which
// alternate field, message: Invalid("email", "is required").
func Invalid(fieldMessages ...string) *Error {
	e := &Error{Code: CodeInvalid, Reason: "validation_failed", Message: "the request has invalid fields"}
	for i := 0; i+1 < len(fieldMessages); i += 2 {
		e.Fields = append(e.Fields, FieldError{Field: fieldMessages[i], Message: fieldMessages[i+1]})
	}
	if len(e.Fields) == 1 {
		e.Message = e.Fields[0].Field + " " + e.Fields[0].Message
	}
	return e
}

// Required returns a CodeInvalid error naming every empty value among
// alternating field, value pairs — Required("email", email, "password",
// pw) — or nil when none is empty.
func Required(fieldValues ...string) error {
	var fm []string
	for i := 0; i+1 < len(fieldValues); i += 2 {
		if fieldValues[i+1] == "" {
			fm = append(fm, fieldValues[i], "is required")
		}
	}
	if fm == nil {
		return nil
	}
	return Invalid(fm...)
}

// Internal wraps an unexpected error; its text never reaches a client.
func Internal(err error) *Error {
	return &Error{Code: CodeInternal, Reason: string(CodeInternal), Message: "internal error", Err: err}
}

// ErrorCode returns the code of err: its own when it is an *Error, CodeInternal
// otherwise, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorReason returns the specific reason of err, or its code when it has none.
func ErrorReason(err error) string {
	var e *Error
	if errors.As(err, &e) {
		if e.Reason != "" {
			return e.Reason
		}
		return string(e.Code)
	}
	if err == nil {
		return ""
	}
	return string(CodeInternal)
}
