package httpx

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"reflect"
	"strconv"
	"strings"

	"github.com/stratadev/strata"
)

// DefaultBodyLimit is the body limit DecodeJSON applies when given limit <= 0.
const DefaultBodyLimit = 1 << 20

// DecodeJSON decodes the JSON body of r into dst, which must be a non-nil
// pointer. The body must be one JSON value of at most limit bytes (limit <= 0
// means DefaultBodyLimit), with no unknown fields and nothing but whitespace
// after it; the Content-Type must be application/json or a +json type, or be
// absent. Every failure is a *strata.Error:
//
//	CodeInvalid      empty_body, malformed_json (with the byte offset),
//	                 trailing_data, unknown_field, invalid_type, invalid_value,
//	                 unreadable_body (the body could not be read)
//	CodeTooLarge     body_too_large
//	CodeUnsupported  unsupported_media_type
//
// unknown_field and invalid_type name the field in Fields. A dst that is not
// a pointer is a bug and gives CodeInternal.
func DecodeJSON(w http.ResponseWriter, r *http.Request, dst any, limit int64) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && !strings.HasSuffix(mt, "+json")) {
			return strata.Errorf(strata.CodeUnsupported, "unsupported_media_type",
				"the request body must be application/json")
		}
	}
	if limit <= 0 {
		limit = DefaultBodyLimit
	}
	if r.Body == nil {
		return emptyBody()
	}
	body := &bodyReader{r: http.MaxBytesReader(w, r.Body, limit)}
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err, body.err, dec.InputOffset())
	}
	// Anything but whitespace after the value is an error. Token reads only
	// the next token, so a huge tail still stops at the limit.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return bodyTooLarge(tooLarge.Limit)
		}
		return strata.Errorf(strata.CodeInvalid, "trailing_data",
			"the request body has data after the JSON value (at byte offset %d)", dec.InputOffset())
	}
	return nil
}

// bodyReader remembers the error reading the body failed with, to tell it
// apart from a decoding error: the decoder returns both as they are.
type bodyReader struct {
	r   io.Reader
	err error
}

func (b *bodyReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}

// decodeError translates an error of json.Decoder.Decode; readErr is the
// error reading the body failed with, if it did.
func decodeError(err, readErr error, offset int64) error {
	var (
		syntaxErr    *json.SyntaxError
		typeErr      *json.UnmarshalTypeError
		tooLarge     *http.MaxBytesError
		invalidUnmar *json.InvalidUnmarshalError
		strataErr    *strata.Error
	)
	switch {
	case errors.Is(err, io.EOF):
		return emptyBody()
	case errors.As(err, &tooLarge):
		return bodyTooLarge(tooLarge.Limit)
	case readErr != nil:
		return &strata.Error{Code: strata.CodeInvalid, Reason: "unreadable_body",
			Message: "the request body could not be read", Err: err}
	case errors.As(err, &syntaxErr):
		return &strata.Error{Code: strata.CodeInvalid, Reason: "malformed_json",
			Message: fmt.Sprintf("the request body is not valid JSON (at byte offset %d)", syntaxErr.Offset),
			Err:     err}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &strata.Error{Code: strata.CodeInvalid, Reason: "malformed_json",
			Message: fmt.Sprintf("the request body is not valid JSON (it ends early, at byte offset %d)", offset),
			Err:     err}
	case errors.As(err, &typeErr):
		return invalidType(typeErr)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for this; the name is quoted.
		name, uerr := strconv.Unquote(strings.TrimPrefix(err.Error(), "json: unknown field "))
		if uerr != nil {
			name = strings.TrimPrefix(err.Error(), "json: unknown field ")
		}
		return &strata.Error{Code: strata.CodeInvalid, Reason: "unknown_field",
			Message: fmt.Sprintf("the request body has an unknown field %q", name),
			Fields:  []strata.FieldError{{Field: name, Message: "is not a known field"}},
			Err:     err}
	case errors.As(err, &invalidUnmar):
		return strata.Internal(fmt.Errorf("decode json: %w", err))
	case errors.As(err, &strataErr):
		return strataErr // a field's UnmarshalJSON already said what is wrong
	}
	// An UnmarshalJSON or UnmarshalText method refused a value. Its text may
	// say more than a user should see, so it stays in Err, for the log.
	return &strata.Error{Code: strata.CodeInvalid, Reason: "invalid_value",
		Message: "the request body has an invalid value", Err: err}
}

func invalidType(e *json.UnmarshalTypeError) *strata.Error {
	want := jsonTypeName(e.Type)
	if e.Field == "" {
		return &strata.Error{Code: strata.CodeInvalid, Reason: "invalid_type",
			Message: fmt.Sprintf("the request body must be a JSON %s, not %s", want, e.Value), Err: e}
	}
	msg := fmt.Sprintf("must be %s %s, not %s", article(want), want, e.Value)
	return &strata.Error{Code: strata.CodeInvalid, Reason: "invalid_type",
		Message: e.Field + " " + msg,
		Fields:  []strata.FieldError{{Field: e.Field, Message: msg}},
		Err:     e}
}

// jsonTypeName names the JSON type that decodes into t.
func jsonTypeName(t reflect.Type) string {
	if t == nil {
		return "value"
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.String:
		return "string"
	case reflect.Slice, reflect.Array:
		return "array"
	case reflect.Struct, reflect.Map:
		return "object"
	}
	return "value"
}

func article(word string) string {
	if strings.IndexByte("aeiou", word[0]) >= 0 {
		return "an"
	}
	return "a"
}

func emptyBody() *strata.Error {
	return strata.Errorf(strata.CodeInvalid, "empty_body", "the request body is empty")
}

func bodyTooLarge(limit int64) *strata.Error {
	return strata.Errorf(strata.CodeTooLarge, "body_too_large",
		"the request body is larger than %d bytes", limit)
}
