// Package queuetest runs embedded NATS JetStream servers for tests, after
// nats-server's RunBasicJetStreamServer.
package queuetest

import (
	"log/slog"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/stratadev/strata/internal/queue"
)

// RunServer starts an in-process JetStream server storing in the test's
// temporary folder, shut down when the test ends. It does not listen on a
// socket: connect with queue.ConnectInProcess.
func RunServer(t testing.TB) *server.Server {
	t.Helper()
	srv, err := queue.StartServer(queue.ServerConfig{StoreDir: t.TempDir()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatalf("start nats server: %v", err)
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

// Connect starts a server with RunServer and returns a client connected to
// it in-process, closed when the test ends (before the server stops).
func Connect(t testing.TB) *queue.Client {
	t.Helper()
	srv := RunServer(t)
	c, err := queue.ConnectInProcess(srv)
	if err != nil {
		t.Fatalf("connect to nats: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}
