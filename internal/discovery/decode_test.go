package discovery

import (
	"encoding/json"
	"slices"
	"testing"
)

// FuzzDecodeInstance checks the one parser of network input: it never
// panics, and what it accepts is a usable base URL with normalized roles
// that survives a round trip.
func FuzzDecodeInstance(f *testing.F) {
	for _, seed := range []string{
		`{"url":"http://10.0.0.1:8080","roles":["payments","auth"]}`,
		`{"url":"https://[fd00::1]:8443","roles":[]}`,
		`{"url":"http://payments.strata.svc:8080/base"}`,
		`{"url":"http://10.0.0.1:8080/","roles":["auth"]}`,
		`{"url":"http://10.0.0.1:8080?x","roles":null}`,
		`{"url":"ftp://x"}`,
		`{"url":""}`,
		`{"roles":["auth","auth"]}`,
		`[]`,
		`null`,
		``,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := decodeInstance(data)
		if err != nil {
			return
		}
		if err := checkURL(in.URL); err != nil {
			t.Fatalf("accepted a bad url: %v", err)
		}
		if in.Roles == nil || !slices.IsSorted(in.Roles) || len(slices.Compact(slices.Clone(in.Roles))) != len(in.Roles) {
			t.Fatalf("roles not normalized: %q", in.Roles)
		}
		again, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		back, err := decodeInstance(again)
		if err != nil {
			t.Fatalf("re-decode %s: %v", again, err)
		}
		if back.URL != in.URL || !slices.Equal(back.Roles, in.Roles) {
			t.Fatalf("round trip changed %+v to %+v", in, back)
		}
	})
}
