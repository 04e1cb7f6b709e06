package discovery_test

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stratadev/strata/internal/discovery"
	"github.com/stretchr/testify/require"
)

// A NATS outage silences every heartbeat; the watcher must keep the
// instances it knows (their health checks still decide their traffic)
// rather than report an empty set.
func TestWatcherKeepsInstancesThroughANATSOutage(t *testing.T) {
	t.Parallel()
	opts := &server.Options{Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true}
	srv, err := server.NewServer(opts)
	require.NoError(t, err)
	srv.Start()
	require.True(t, srv.ReadyForConnections(5*time.Second))
	url := srv.ClientURL()
	a, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	defer a.Close()
	w, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	require.NoError(t, err)
	defer w.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go (&discovery.Announcer{Conn: a, Interval: 50 * time.Millisecond,
		Instance: discovery.Instance{URL: "http://10.0.0.1:8080", Roles: []string{"content"}}}).Run(ctx)
	updates := make(chan []discovery.Instance, 100)
	go (&discovery.Watcher{Conn: w, TTL: 200 * time.Millisecond}).Run(ctx, func(s []discovery.Instance) { updates <- s })
	require.Eventually(t, func() bool {
		select {
		case s := <-updates:
			return len(s) == 1
		default:
			return false
		}
	}, 2*time.Second, 5*time.Millisecond)

	srv.Shutdown() // NATS down for five TTLs; the instance itself is fine
	select {
	case s := <-updates:
		t.Fatalf("the watcher reported %v during the outage", s)
	case <-time.After(time.Second):
	}
}
