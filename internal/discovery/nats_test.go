package discovery_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/stratadev/strata/internal/discovery"
	"github.com/stratadev/strata/internal/queue/queuetest"
	"github.com/stretchr/testify/require"
)

// connect returns a new client of srv, closed when the test ends.
func connect(t *testing.T, srv *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(srv.ClientURL(), nats.InProcessServer(srv))
	require.NoError(t, err)
	t.Cleanup(nc.Close)
	return nc
}

// announcer is an Announcer running in a test.
type announcer struct {
	conn *nats.Conn         // its own connection
	stop context.CancelFunc // ends its context
	wait func() error       // waits for Run to return, and returns its error
}

// announce runs an Announcer on its own connection until the test ends,
// and waits for its first heartbeat: from then on it answers queries too,
// as it subscribes to them before it heartbeats.
func announce(t *testing.T, srv *server.Server, in discovery.Instance, interval time.Duration) announcer {
	t.Helper()
	probe := connect(t, srv)
	beats, err := probe.SubscribeSync(discovery.SubjectHeartbeat)
	require.NoError(t, err)
	require.NoError(t, probe.Flush())

	nc := connect(t, srv)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	a := &discovery.Announcer{Conn: nc, Instance: in, Interval: interval}
	go func() { done <- a.Run(ctx) }()
	wait := sync.OnceValue(func() error {
		select {
		case err := <-done:
			return err
		case <-time.After(waitFor):
			return errors.New("announcer did not return after its context ended")
		}
	})
	t.Cleanup(func() {
		cancel()
		require.NoError(t, wait())
	})

	deadline := time.Now().Add(waitFor)
	for {
		m, err := beats.NextMsg(time.Until(deadline))
		require.NoError(t, err, "no heartbeat from %s", in.URL)
		var got discovery.Instance
		require.NoError(t, json.Unmarshal(m.Data, &got))
		if got.URL == in.URL {
			break
		}
	}
	require.NoError(t, beats.Unsubscribe())
	return announcer{conn: nc, stop: cancel, wait: wait}
}

func TestWatcherLearnsTheSetFromItsQueryAndSeesLeaves(t *testing.T) {
	t.Parallel()
	srv := queuetest.RunServer(t)
	// Heartbeats every 10 s and a TTL of a minute: whatever the watcher
	// learns within the test, it learns from its query and from leaves.
	auth := announce(t, srv, inst("http://10.0.0.1:8080", "content", "auth"), 10*time.Second)
	announce(t, srv, inst("http://10.0.0.2:8080", "payments"), 10*time.Second)

	start := time.Now()
	sets, _ := runSource(t, &discovery.Watcher{Conn: connect(t, srv), TTL: time.Minute})
	require.Equal(t, []discovery.Instance{
		inst("http://10.0.0.1:8080", "auth", "content"),
		inst("http://10.0.0.2:8080", "payments"),
	}, next(t, sets, 2*time.Second), "the first update holds both announcers")
	require.Less(t, time.Since(start), 2*time.Second, "well before the next heartbeat")

	auth.stop()
	require.NoError(t, auth.wait())
	require.Equal(t, []discovery.Instance{inst("http://10.0.0.2:8080", "payments")}, next(t, sets, 2*time.Second),
		"the leave is seen at once, not after the TTL")
}

func TestWatcherDropsASilentInstanceAfterTTL(t *testing.T) {
	t.Parallel()
	srv := queuetest.RunServer(t)
	const interval, ttl = 50 * time.Millisecond, 300 * time.Millisecond
	announce(t, srv, inst("http://10.0.0.1:8080", "auth"), interval)
	killed := announce(t, srv, inst("http://10.0.0.2:8080", "auth"), interval)

	sets, _ := runSource(t, &discovery.Watcher{Conn: connect(t, srv), TTL: ttl})
	require.Len(t, next(t, sets, waitFor), 2)

	// A closed connection sends no leave: the instance goes silent, as
	// when its process is killed.
	killed.conn.Close()
	start := time.Now()
	require.Equal(t, []discovery.Instance{inst("http://10.0.0.1:8080", "auth")}, next(t, sets, waitFor))
	require.GreaterOrEqual(t, time.Since(start), ttl-interval, "dropped by expiry, not by a leave")
	// Its Run goes on, logging publish errors, until its context ends
	// (the test's cleanup checks that it then returns nil).
}

func TestWatcherRoleFilter(t *testing.T) {
	t.Parallel()
	srv := queuetest.RunServer(t)
	announce(t, srv, inst("http://10.0.0.1:8080", "auth"), 10*time.Second)
	announce(t, srv, inst("http://10.0.0.2:8080", "content", "payments"), 10*time.Second)
	announce(t, srv, inst("http://10.0.0.3:8080", "payments"), 10*time.Second)

	sets, _ := runSource(t, &discovery.Watcher{Conn: connect(t, srv), TTL: time.Minute, Roles: []string{"payments", "mail"}})
	require.Equal(t, []discovery.Instance{
		inst("http://10.0.0.2:8080", "content", "payments"),
		inst("http://10.0.0.3:8080", "payments"),
	}, next(t, sets, 2*time.Second))
}

func TestWatcherFollowsRoleChanges(t *testing.T) {
	t.Parallel()
	srv := queuetest.RunServer(t)
	pub := connect(t, srv)
	heartbeat := func(in discovery.Instance) {
		t.Helper()
		data, err := json.Marshal(in)
		require.NoError(t, err)
		require.NoError(t, pub.Publish(discovery.SubjectHeartbeat, data))
	}

	all, _ := runSource(t, &discovery.Watcher{Conn: connect(t, srv), TTL: time.Minute})
	payments, _ := runSource(t, &discovery.Watcher{Conn: connect(t, srv), TTL: time.Minute, Roles: []string{"payments"}})
	require.Empty(t, next(t, all, 2*time.Second), "nobody answers the query: the first set is empty")
	require.Empty(t, next(t, payments, 2*time.Second))

	heartbeat(inst("http://10.0.0.1:8080", "payments"))
	require.Equal(t, []discovery.Instance{inst("http://10.0.0.1:8080", "payments")}, next(t, all, waitFor))
	require.Equal(t, []discovery.Instance{inst("http://10.0.0.1:8080", "payments")}, next(t, payments, waitFor))

	heartbeat(inst("http://10.0.0.1:8080", "payments")) // the same again is no change
	heartbeat(inst("http://10.0.0.1:8080", "auth"))
	require.Equal(t, []discovery.Instance{inst("http://10.0.0.1:8080", "auth")}, next(t, all, waitFor))
	require.Equal(t, []discovery.Instance{}, next(t, payments, waitFor), "it no longer serves payments")
	requireNone(t, all)
}

func TestWatcherIgnoresMalformedAnnouncements(t *testing.T) {
	t.Parallel()
	srv := queuetest.RunServer(t)
	pub := connect(t, srv)
	logs := newLogRecorder()
	sets, _ := runSource(t, &discovery.Watcher{Conn: connect(t, srv), TTL: time.Minute, Logger: logs.logger()})
	require.Empty(t, next(t, sets, 2*time.Second))

	malformed := []string{
		`not json`,
		`{"url":""}`,
		`{"url":"ftp://10.0.0.1"}`,
		`{"url":"http://10.0.0.1:8080/"}`,
		`{"url":"10.0.0.1:8080"}`,
		`{"url":"http://10.0.0.1:8080","roles":"auth"}`,
	}
	for _, m := range malformed {
		require.NoError(t, pub.Publish(discovery.SubjectHeartbeat, []byte(m)))
	}
	require.NoError(t, pub.Publish(discovery.SubjectLeave, []byte(`{"url":`)))
	// The watcher reads one subscription in order: by the time it reports
	// this one, it has dropped the others.
	require.NoError(t, pub.Publish(discovery.SubjectHeartbeat, []byte(`{"url":"http://10.0.0.9:8080","roles":["auth"]}`)))
	require.Equal(t, []discovery.Instance{inst("http://10.0.0.9:8080", "auth")}, next(t, sets, waitFor))
	require.Equal(t, len(malformed)+1, logs.count(slog.LevelDebug, "discovery malformed announcement"))
}

func TestAnnouncerRejectsWhatCannotRun(t *testing.T) {
	t.Parallel()
	srv := queuetest.RunServer(t)
	closed := connect(t, srv)
	closed.Close()
	for _, tc := range []struct {
		name string
		a    discovery.Announcer
	}{
		{name: "no connection", a: discovery.Announcer{Instance: inst("http://10.0.0.1:8080")}},
		{name: "closed connection", a: discovery.Announcer{Conn: closed, Instance: inst("http://10.0.0.1:8080")}},
		{name: "no url", a: discovery.Announcer{Conn: connect(t, srv)}},
		{name: "trailing slash", a: discovery.Announcer{Conn: connect(t, srv), Instance: inst("http://10.0.0.1:8080/")}},
		{name: "not http", a: discovery.Announcer{Conn: connect(t, srv), Instance: inst("ftp://10.0.0.1")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			require.Error(t, tc.a.Run(ctx))
		})
	}
}

func TestWatcherRejectsAClosedConnection(t *testing.T) {
	t.Parallel()
	nc := connect(t, queuetest.RunServer(t))
	nc.Close()
	err := (&discovery.Watcher{Conn: nc}).Run(context.Background(), func([]discovery.Instance) { t.Error("update called") })
	require.Error(t, err)
	require.Error(t, (&discovery.Watcher{}).Run(context.Background(), func([]discovery.Instance) {}))
}
