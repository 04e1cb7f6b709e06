package discovery_test

import (
	"context"
	"log/slog"
	"net/netip"
	"net/url"
	"reflect"
	"testing"
	"time"

	"github.com/stratadev/strata/internal/discovery"
	"github.com/stretchr/testify/require"
)

// dnsName is rooted (trailing dot) so that the resolver asks for it alone,
// whatever search domains the machine's resolv.conf lists.
const dnsName = "payments.strata.test.:8080"

const dnsInterval = 20 * time.Millisecond

// awaitLookups waits until srv has answered n more A questions than
// before: at least n/2 more lookups (a failing lookup asks more than once).
// Lookups run one after another, and each sends its update before the next
// starts, so after two more any update an earlier one caused has arrived.
func awaitLookups(t *testing.T, srv *dnsServer, n int64) {
	t.Helper()
	target := srv.aQueries.Load() + n
	require.Eventually(t, func() bool { return srv.aQueries.Load() >= target }, waitFor, time.Millisecond)
}

func TestDNSFollowsTheAnswers(t *testing.T) {
	t.Parallel()
	srv := startDNSServer(t,
		netip.MustParseAddr("10.0.0.2"),
		netip.MustParseAddr("fd00::1"),
		netip.MustParseAddr("10.0.0.1"),
	)
	logs := newLogRecorder()
	sets, _ := runSource(t, discovery.DNS(dnsName, "http", []string{"payments", "auth"}, dnsInterval, srv.resolver(), logs.logger()))

	require.Equal(t, []discovery.Instance{
		inst("http://10.0.0.1:8080", "auth", "payments"),
		inst("http://10.0.0.2:8080", "auth", "payments"),
		inst("http://[fd00::1]:8080", "auth", "payments"),
	}, next(t, sets, waitFor))

	awaitLookups(t, srv, 4)
	requireNone(t, sets) // the same answer again is no change

	srv.set(netip.MustParseAddr("10.0.0.3"), netip.MustParseAddr("10.0.0.1"))
	awaitSet(t, sets, []discovery.Instance{
		inst("http://10.0.0.1:8080", "auth", "payments"),
		inst("http://10.0.0.3:8080", "auth", "payments"),
	})

	srv.setFail()
	awaitLookups(t, srv, 6)
	requireNone(t, sets) // the last good set stays; no empty update
	require.Positive(t, logs.count(slog.LevelWarn, "discovery dns lookup"))

	srv.set(netip.MustParseAddr("10.0.0.4"))
	awaitSet(t, sets, []discovery.Instance{inst("http://10.0.0.4:8080", "auth", "payments")})
}

// awaitSet waits for an update equal to want. A lookup asks for A and
// AAAA records separately, so one that straddles a change of the answer
// may report a mix of the old and the new set first, as it would with a
// real DNS server.
func awaitSet(t *testing.T, sets <-chan []discovery.Instance, want []discovery.Instance) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		got := next(t, sets, time.Until(deadline))
		if reflect.DeepEqual(got, want) {
			return
		}
		t.Logf("an intermediate set: %v", got)
	}
}

func TestDNSSendsNothingUntilALookupSucceeds(t *testing.T) {
	t.Parallel()
	srv := startDNSServer(t)
	srv.setFail()
	sets, _ := runSource(t, discovery.DNS(dnsName, "https", nil, dnsInterval, srv.resolver(), nil))
	awaitLookups(t, srv, 6)
	requireNone(t, sets)

	srv.set(netip.MustParseAddr("10.0.0.9"))
	require.Equal(t, []discovery.Instance{inst("https://10.0.0.9:8080")}, next(t, sets, waitFor))
}

// TestDNSLocalhost resolves through the machine's own resolver.
func TestDNSLocalhost(t *testing.T) {
	t.Parallel()
	sets, _ := runSource(t, discovery.DNS("localhost:8080", "", []string{"auth"}, time.Hour, nil, nil))
	set := next(t, sets, waitFor)
	require.NotEmpty(t, set)
	for _, in := range set {
		u, err := url.Parse(in.URL)
		require.NoError(t, err)
		require.Equal(t, "http", u.Scheme)
		require.Equal(t, "8080", u.Port())
		require.True(t, netip.MustParseAddr(u.Hostname()).IsLoopback(), in.URL)
		require.Equal(t, []string{"auth"}, in.Roles)
	}
}

func TestDNSRejectsWhatCannotRun(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, host, scheme string
	}{
		{name: "no port", host: "payments.strata.svc", scheme: "http"},
		{name: "named port", host: "payments.strata.svc:http", scheme: "http"},
		{name: "port zero", host: "payments.strata.svc:0", scheme: "http"},
		{name: "port too large", host: "payments.strata.svc:65536", scheme: "http"},
		{name: "no host", host: ":8080", scheme: "http"},
		{name: "scheme", host: "payments.strata.svc:8080", scheme: "ftp"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			err := discovery.DNS(tc.host, tc.scheme, nil, time.Second, nil, nil).Run(ctx, func([]discovery.Instance) {
				t.Error("update called")
			})
			require.Error(t, err)
		})
	}
}
