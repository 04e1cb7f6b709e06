package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// ServerConfig configures the embedded NATS server.
type ServerConfig struct {
	// StoreDir is the folder JetStream keeps its file store in. Required.
	StoreDir string
	// Listen makes the server accept TCP clients on Host:Port. Without it the
	// server is reachable only in-process, through ConnectInProcess.
	Listen bool
	// Host is the address to bind when Listen is set; default 127.0.0.1.
	Host string
	// Port is the TCP port when Listen is set; 0 means 4222 (the NATS
	// default) and -1 a random free port (read it back with srv.ClientURL()).
	Port int
	// ReadyTimeout bounds the wait for the server to accept connections;
	// default 10s.
	ReadyTimeout time.Duration
}

// Validate reports a configuration that cannot start a server.
func (c ServerConfig) Validate() error {
	if c.StoreDir == "" {
		return errors.New("queue server: store dir is required")
	}
	if c.Listen && (c.Port < -1 || c.Port > 65535) {
		return fmt.Errorf("queue server: port %d out of range", c.Port)
	}
	return nil
}

// StartServer starts an embedded NATS server with JetStream on file storage
// under cfg.StoreDir and waits until it accepts connections. Shutting it
// down is the caller's job: srv.Shutdown(); srv.WaitForShutdown().
//
// The server's own log lines go to logger: warnings and errors at their
// level, notices at debug, its debug and trace output nowhere.
func StartServer(cfg ServerConfig, logger *slog.Logger) (*server.Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Host == "" {
		cfg.Host = "127.0.0.1"
	}
	if cfg.ReadyTimeout <= 0 {
		cfg.ReadyTimeout = 10 * time.Second
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	opts := &server.Options{
		ServerName: "strata",
		JetStream:  true,
		StoreDir:   cfg.StoreDir,
		NoSigs:     true, // signals belong to the process, not to the library
		DontListen: !cfg.Listen,
		Host:       cfg.Host,
		Port:       cfg.Port,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("queue server: %w", err)
	}
	srv.SetLoggerV2(&serverLogger{logger: logger.With("component", "nats")}, false, false, false)
	srv.Start()
	if !srv.ReadyForConnections(cfg.ReadyTimeout) {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, fmt.Errorf("queue server: not ready after %s", cfg.ReadyTimeout)
	}
	if !srv.JetStreamEnabled() {
		srv.Shutdown()
		srv.WaitForShutdown()
		return nil, errors.New("queue server: jetstream did not start")
	}
	return srv, nil
}

// serverLogger adapts slog to the nats-server Logger interface.
type serverLogger struct{ logger *slog.Logger }

func (l *serverLogger) log(level slog.Level, format string, v []any) {
	ctx := context.Background()
	if !l.logger.Enabled(ctx, level) {
		return
	}
	l.logger.Log(ctx, level, "nats server", "detail", fmt.Sprintf(format, v...))
}

func (l *serverLogger) Noticef(format string, v ...any) { l.log(slog.LevelDebug, format, v) }
func (l *serverLogger) Warnf(format string, v ...any)   { l.log(slog.LevelWarn, format, v) }
func (l *serverLogger) Errorf(format string, v ...any)  { l.log(slog.LevelError, format, v) }

// Fatalf is logged as an error: the embedded server must not exit the
// process; the server shuts itself down and readiness checks notice.
func (l *serverLogger) Fatalf(format string, v ...any) { l.log(slog.LevelError, format, v) }
func (l *serverLogger) Debugf(string, ...any)          {}
func (l *serverLogger) Tracef(string, ...any)          {}
