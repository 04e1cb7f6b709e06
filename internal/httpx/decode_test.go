package httpx_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/httpx"
	"github.com/stretchr/testify/require"
)

type address struct {
	City string `json:"city"`
	Zip  int    `json:"zip"`
}

type signup struct {
	Email   string   `json:"email"`
	Age     int      `json:"age"`
	Tags    []string `json:"tags"`
	Address address  `json:"address"`
}

func decodeRequest(t *testing.T, contentType, body string, limit int64) (signup, error) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, "/v1/signup", strings.NewReader(body))
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	var dst signup
	err := httpx.DecodeJSON(httptest.NewRecorder(), r, &dst, limit)
	return dst, err
}

func TestDecodeJSON(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		contentType string
		body        string
		limit       int64
		wantCode    strata.Code
		wantReason  string
		wantField   string
		wantMessage string // a substring of the message
	}{
		{name: "valid", contentType: "application/json",
			body: `{"email":"a@b.c","age":30,"tags":["x"],"address":{"city":"Oslo","zip":150}}`},
		{name: "valid with charset and trailing whitespace", contentType: "application/json; charset=utf-8",
			body: "{\"email\":\"a@b.c\"}\n\t "},
		{name: "valid +json type", contentType: "application/merge-patch+json", body: `{"age":1}`},
		{name: "valid without content type", body: `{"age":1}`},
		{name: "malformed", contentType: "application/json", body: `{"email": "a@b.c",}`,
			wantCode: strata.CodeInvalid, wantReason: "malformed_json", wantMessage: "byte offset 19"},
		{name: "truncated", contentType: "application/json", body: `{"email": "a@`,
			wantCode: strata.CodeInvalid, wantReason: "malformed_json", wantMessage: "ends early"},
		{name: "unknown field", contentType: "application/json", body: `{"email":"a@b.c","admin":true}`,
			wantCode: strata.CodeInvalid, wantReason: "unknown_field", wantField: "admin"},
		{name: "wrong type", contentType: "application/json", body: `{"age":"thirty"}`,
			wantCode: strata.CodeInvalid, wantReason: "invalid_type", wantField: "age",
			wantMessage: "age must be an integer, not string"},
		{name: "nested wrong type", contentType: "application/json", body: `{"address":{"zip":"0150"}}`,
			wantCode: strata.CodeInvalid, wantReason: "invalid_type", wantField: "address.zip",
			wantMessage: "must be an integer"},
		{name: "wrong type in array", contentType: "application/json", body: `{"tags":["a",2]}`,
			wantCode: strata.CodeInvalid, wantReason: "invalid_type", wantField: "tags",
			wantMessage: "must be a string, not number"},
		{name: "not an object", contentType: "application/json", body: `[1,2]`,
			wantCode: strata.CodeInvalid, wantReason: "invalid_type", wantMessage: "must be a JSON object"},
		{name: "oversize", contentType: "application/json", body: `{"email":"` + strings.Repeat("a", 100) + `"}`,
			limit: 64, wantCode: strata.CodeTooLarge, wantReason: "body_too_large", wantMessage: "64 bytes"},
		{name: "oversize trailing data", contentType: "application/json", body: `{}` + strings.Repeat(" ", 70) + "x",
			limit: 64, wantCode: strata.CodeTooLarge, wantReason: "body_too_large"},
		{name: "empty", contentType: "application/json", body: "",
			wantCode: strata.CodeInvalid, wantReason: "empty_body"},
		{name: "only whitespace", contentType: "application/json", body: " \n ",
			wantCode: strata.CodeInvalid, wantReason: "empty_body"},
		{name: "trailing value", contentType: "application/json", body: `{"age":1}{"age":2}`,
			wantCode: strata.CodeInvalid, wantReason: "trailing_data", wantMessage: "byte offset"},
		{name: "trailing garbage", contentType: "application/json", body: `{"age":1} x`,
			wantCode: strata.CodeInvalid, wantReason: "trailing_data"},
		{name: "wrong content type", contentType: "text/plain", body: `{"age":1}`,
			wantCode: strata.CodeUnsupported, wantReason: "unsupported_media_type"},
		{name: "form content type", contentType: "application/x-www-form-urlencoded", body: `age=1`,
			wantCode: strata.CodeUnsupported, wantReason: "unsupported_media_type"},
		{name: "unparsable content type", contentType: "application/json; =", body: `{}`,
			wantCode: strata.CodeUnsupported, wantReason: "unsupported_media_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := decodeRequest(t, tt.contentType, tt.body, tt.limit)
			if tt.wantCode == "" {
				require.NoError(t, err)
				return
			}
			var e *strata.Error
			require.ErrorAs(t, err, &e)
			require.Equal(t, tt.wantCode, e.Code)
			require.Equal(t, tt.wantReason, e.Reason)
			require.Contains(t, e.Message, tt.wantMessage)
			if tt.wantField != "" {
				require.Len(t, e.Fields, 1)
				require.Equal(t, tt.wantField, e.Fields[0].Field)
				require.NotEmpty(t, e.Fields[0].Message)
			}
		})
	}
}

func TestDecodeJSONValues(t *testing.T) {
	t.Parallel()
	got, err := decodeRequest(t, "application/json",
		`{"email":"a@b.c","age":30,"tags":["x","y"],"address":{"city":"Oslo","zip":150}}`, 0)
	require.NoError(t, err)
	require.Equal(t, signup{Email: "a@b.c", Age: 30, Tags: []string{"x", "y"},
		Address: address{City: "Oslo", Zip: 150}}, got)
}

type refusing struct{}

func (*refusing) UnmarshalJSON([]byte) error { return errors.New("secret internals") }

type strict struct{}

func (*strict) UnmarshalJSON([]byte) error { return strata.Invalid("code", "is not a known code") }

func TestDecodeJSONUnmarshalerErrors(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"v":1}`))
	var dst struct {
		V refusing `json:"v"`
	}
	err := httpx.DecodeJSON(httptest.NewRecorder(), r, &dst, 0)
	var e *strata.Error
	require.ErrorAs(t, err, &e)
	require.Equal(t, "invalid_value", e.Reason)
	require.NotContains(t, e.Message, "secret")

	r = httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{"v":1}`))
	var dst2 struct {
		V strict `json:"v"`
	}
	err = httpx.DecodeJSON(httptest.NewRecorder(), r, &dst2, 0)
	require.ErrorAs(t, err, &e)
	require.Equal(t, "validation_failed", e.Reason)
	require.Equal(t, "code", e.Fields[0].Field)
}

func TestDecodeJSONNotAPointer(t *testing.T) {
	t.Parallel()
	r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(`{}`))
	err := httpx.DecodeJSON(httptest.NewRecorder(), r, signup{}, 0)
	require.Equal(t, strata.CodeInternal, strata.ErrorCode(err))
}

type fuzzTarget struct {
	Name   string            `json:"name"`
	Count  int8              `json:"count"`
	Ratio  float64           `json:"ratio"`
	OK     *bool             `json:"ok"`
	Tags   []string          `json:"tags"`
	Labels map[string]uint16 `json:"labels"`
	When   time.Time         `json:"when"`
	Nested struct {
		ID  string `json:"id"`
		Num uint   `json:"num"`
	} `json:"nested"`
}

func FuzzDecodeJSON(f *testing.F) {
	for _, seed := range []string{
		`{"name":"x","count":1,"ratio":0.5,"ok":true,"tags":["a"],"labels":{"a":1}}`,
		`{"when":"2026-01-02T03:04:05Z","nested":{"id":"x","num":3}}`,
		`{"count":300}`, `{"nested":{"num":-1}}`, `{"when":"yesterday"}`, `{"extra":1}`,
		`[]`, `null`, `{} {}`, `{"name":"\ud800"}`, ``, `{`, `"` + strings.Repeat("a", 300) + `"`,
	} {
		f.Add([]byte(seed), "application/json")
	}
	f.Add([]byte(`{}`), "text/html")
	f.Add([]byte(`{}`), "application/problem+json; charset=utf-8")
	valid := map[strata.Code]bool{strata.CodeInvalid: true, strata.CodeTooLarge: true, strata.CodeUnsupported: true}
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(body)))
		r.Header.Set("Content-Type", contentType)
		var dst fuzzTarget
		err := httpx.DecodeJSON(httptest.NewRecorder(), r, &dst, 256)
		if err == nil {
			return
		}
		var e *strata.Error
		if !errors.As(err, &e) {
			t.Fatalf("error %v (%T) is not a *strata.Error", err, err)
		}
		if !valid[e.Code] || e.Reason == "" || e.Message == "" {
			t.Fatalf("error %#v is not a 4xx strata error with a reason and message", e)
		}
	})
}
