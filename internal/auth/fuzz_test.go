package auth_test

import (
	"fmt"
	"strings"
	"testing"
)

// FuzzAuthRoutes sends arbitrary bodies to every public auth route: no
// input may produce a 5xx or an answer that is not problem+json on error.
func FuzzAuthRoutes(f *testing.F) {
	for _, seed := range []string{
		`{"email":"a@example.com","password":"correct horse battery staple","name":"A"}`,
		`{"refresh_token":"rtk_01m8f2dfqz003rbtj1g3y8nbpp.Pw3pwNw4ZE9QqA-_n26Ryeqdyb2jONVyMKaLvtG0k-Q"}`,
		`{"token":"ott_01m8f2dfqz003rbtj1g3y8nbpp.x","password":"p"}`,
		`{"email":null}`, `[]`, `{"email":"\u0000@x.y"}`, `{"roles":["admin"]}`, `"`,
	} {
		for route := range 7 {
			f.Add(uint8(route), uint16(route), seed)
		}
	}
	h := newHarness(f)
	routes := []string{"/v1/auth/signup", "/v1/auth/login", "/v1/auth/refresh", "/v1/auth/logout",
		"/v1/auth/password/forgot", "/v1/auth/password/reset", "/v1/auth/email/verify"}
	f.Fuzz(func(t *testing.T, route uint8, client uint16, body string) {
		h.t = t
		// Many client addresses, so throttling does not turn every later
		// input into the same 429.
		r := h.do("POST", routes[int(route)%len(routes)], body, "X-Forwarded-For", fmt.Sprintf("10.%d.%d.1", client>>8, client&0xff))
		if r.status >= 500 {
			t.Fatalf("%s answered %d to %q: %s", routes[int(route)%len(routes)], r.status, body, r.body)
		}
		if r.status >= 400 && !strings.HasPrefix(r.header.Get("Content-Type"), "application/problem+json") {
			t.Fatalf("error without problem+json: %d %s", r.status, r.body)
		}
	})
}
