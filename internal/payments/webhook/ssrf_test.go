package webhook_test

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stratadev/strata/internal/payments"
	"github.com/stratadev/strata/internal/payments/webhook"
	"github.com/stretchr/testify/require"
)

// TestConnectTimeRefusals aims the delivery client at forbidden addresses
// with AllowPrivate off: each is refused when the socket is about to
// connect, after name resolution.
func TestConnectTimeRefusals(t *testing.T) {
	t.Parallel()
	live := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(live.Close)
	u, err := url.Parse(live.URL)
	require.NoError(t, err)
	port := u.Port() // a real listener on 127.0.0.1: only the check stands in the way

	resolver := fakeResolver{
		"internal.example":  {netip.MustParseAddr("10.0.0.1")},
		"sneaky.example":    {netip.MustParseAddr("127.0.0.1")},
		"metadata.example":  {netip.MustParseAddr("169.254.169.254")},
		"rebinding.example": {netip.MustParseAddr("::ffff:127.0.0.1")},
	}
	strict := webhook.NewClient(webhook.Config{Timeout: 2 * time.Second}, resolver)
	tests := []struct {
		name string
		url  string
	}{
		{"loopback", live.URL},
		{"ipv6 loopback", "http://[::1]:" + port + "/"},
		{"metadata", "http://169.254.169.254/latest/meta-data/"},
		{"aws ipv6 metadata", "http://[fd00:ec2::254]/"},
		{"name resolving to 10.0.0.1", "http://internal.example:" + port + "/"},
		{"name resolving to loopback", "http://sneaky.example:" + port + "/"},
		{"name resolving to metadata", "https://metadata.example/"},
		{"name resolving to mapped loopback", "http://rebinding.example:" + port + "/"},
		{"unspecified", "http://0.0.0.0:" + port + "/"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			resp, err := strict.Post(tc.url, "application/json", strings.NewReader("{}"))
			if resp != nil {
				resp.Body.Close()
			}
			require.ErrorIs(t, err, webhook.ErrForbiddenAddress)
		})
	}

	// The same names, allowed for development, reach the live server: the
	// resolver is used and the address check was all that refused.
	dev := webhook.NewClient(webhook.Config{AllowPrivate: true, Timeout: 2 * time.Second}, resolver)
	resp, err := dev.Post("http://sneaky.example:"+port+"/", "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
}

func TestClientFollowsNoRedirect(t *testing.T) {
	t.Parallel()
	hit := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hit <- r.URL.Path
		http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
	}))
	t.Cleanup(srv.Close)
	c := webhook.NewClient(webhook.Config{AllowPrivate: true}, nil)
	resp, err := c.Post(srv.URL+"/hook", "application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
	require.Equal(t, "/hook", <-hit)
	require.Empty(t, hit, "the redirect was not followed")
}

func TestClientIgnoresProxyEnvironment(t *testing.T) {
	t.Parallel()
	tr := webhook.NewClient(webhook.Config{}, nil).Transport.(*http.Transport)
	require.Nil(t, tr.Proxy)
}

// TestSenderRefusesPrivateAddresses: endpoints whose names resolve to
// private addresses pass creation (names are not resolved then) but are
// refused when the sender connects, and the attempt is logged.
func TestSenderRefusesPrivateAddresses(t *testing.T) {
	t.Parallel()
	h := newHarness(t, webhook.Config{})
	h.resolver["hooks.internal.example"] = []netip.Addr{netip.MustParseAddr("10.0.0.1")}
	ep, _ := h.createEndpoint("https://hooks.internal.example/strata", "*")
	h.dispatch(h.message(payments.SubjectPurchaseCompleted, map[string]any{}))
	require.Equal(t, 1, h.sendDue(h.svc))
	d := h.only(ep)
	require.Equal(t, webhook.StatusPending, d.Status, "retried, in case the name is fixed")
	require.Zero(t, d.LastStatusCode)
	require.Contains(t, d.LastError, "10.0.0.1 is private")
	require.Contains(t, d.Log[0].Error, "not allowed")

	// An endpoint registered while private addresses were allowed (a
	// development database) is refused by a sender that does not allow
	// them: the receiver never hears of it.
	devh := newHarness(t, webhook.Config{AllowPrivate: true})
	rc := newReceiver(t, always(http.StatusOK))
	ep2, _ := devh.createEndpoint(rc.URL, "*")
	devh.dispatch(devh.message(payments.SubjectPurchaseCompleted, map[string]any{}))
	strict := devh.newService(webhook.Config{})
	require.Equal(t, 1, devh.sendDue(strict))
	require.Empty(t, rc.requests())
	require.Contains(t, devh.only(ep2).LastError, "127.0.0.1 is loopback")
}

func TestForbiddenAddresses(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"127.0.0.1":                   "loopback",
		"127.5.6.7":                   "loopback",
		"::1":                         "loopback",
		"::ffff:127.0.0.1":            "loopback",
		"10.0.0.1":                    "private",
		"172.16.0.1":                  "private",
		"172.31.255.255":              "private",
		"192.168.1.1":                 "private",
		"fc00::1":                     "private",
		"fd12:3456::1":                "private",
		"169.254.169.254":             "cloud metadata",
		"fd00:ec2::254":               "cloud metadata",
		"169.254.1.1":                 "link-local",
		"fe80::1":                     "link-local",
		"0.0.0.0":                     "unspecified",
		"::":                          "unspecified",
		"224.0.0.1":                   "multicast",
		"ff02::1":                     "multicast",
		"100.64.0.1":                  "reserved",
		"0.1.2.3":                     "reserved",
		"198.18.0.1":                  "reserved",
		"255.255.255.255":             "reserved",
		"64:ff9b::a00:1":              "private", // NAT64 of 10.0.0.1
		"8.8.8.8":                     "",
		"1.1.1.1":                     "",
		"172.32.0.1":                  "",
		"2606:4700:4700::1111":        "",
		"64:ff9b::808:808":            "", // NAT64 of 8.8.8.8
		"2a00:1450:4001:82b::200e":    "",
		"93.184.215.14":               "",
		"fe80::1%eth0":                "link-local",
		"::ffff:169.254.169.254":      "cloud metadata",
		"2001:db8::1":                 "reserved",
		"100::1":                      "reserved",
		"192.0.0.8":                   "reserved",
		"240.0.0.1":                   "reserved",
		"11.0.0.1":                    "",
		"192.169.0.1":                 "",
		"169.255.0.1":                 "",
		"::ffff:0:a00:1":              "reserved",
		"2001:4860:4860::8888":        "",
		"2001:4860:4860:0:0:0:0:8844": "",
	}
	for addr, want := range tests {
		require.Equal(t, want, webhook.Forbidden(netip.MustParseAddr(addr)), addr)
	}
}

func TestCheckURL(t *testing.T) {
	t.Parallel()
	got, err := webhook.CheckURL("HTTPS://Hooks.Example.com:8443/a/b?c=d", false)
	require.NoError(t, err)
	require.Equal(t, "https://Hooks.Example.com:8443/a/b?c=d", got)
	_, err = webhook.CheckURL("https://"+strings.Repeat("a", 2100)+".com/", false)
	require.Error(t, err)
	_, err = webhook.CheckURL("http://[::1", false)
	require.Error(t, err)
}

// FuzzCheckURL: validation never panics, and what it accepts is http(s)
// with a host and no user information.
func FuzzCheckURL(f *testing.F) {
	for _, s := range []string{"https://hooks.example.com/x", "http://127.0.0.1/", "ftp://x", "http://u:p@h/", "http://[::1]:80/", "//x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		got, err := webhook.CheckURL(raw, false)
		if err != nil {
			return
		}
		u, err := url.Parse(got)
		require.NoError(t, err)
		require.Contains(t, []string{"http", "https"}, u.Scheme)
		require.NotEmpty(t, u.Hostname())
		require.Nil(t, u.User)
		if ip, err := netip.ParseAddr(u.Hostname()); err == nil {
			require.Empty(t, webhook.Forbidden(ip), got)
		}
	})
}
