package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/stratadev/strata/internal/observability"
)

// httpServer is an instance's HTTP listener and, when configured, its
// pprof listener.
type httpServer struct {
	srv, debug *http.Server
	ln         net.Listener
	errs       chan error
}

// startHTTP serves handler on --http-addr (and pprof on --debug-addr).
func startHTTP(s *settings, handler http.Handler, logger *slog.Logger, stdout io.Writer) (*httpServer, error) {
	hs := &httpServer{errs: make(chan error, 2)}
	hs.srv = &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       time.Minute,
		WriteTimeout:      time.Minute,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	var err error
	if hs.ln, err = net.Listen("tcp", s.httpAddr); err != nil {
		return nil, fmt.Errorf("http-addr: %w", err)
	}
	go func() { hs.errs <- hs.srv.Serve(hs.ln) }()
	if s.debugAddr != "" {
		dln, err := net.Listen("tcp", s.debugAddr)
		if err != nil {
			hs.srv.Close()
			return nil, fmt.Errorf("debug-addr: %w", err)
		}
		hs.debug = &http.Server{Handler: observability.DebugHandler(), ReadHeaderTimeout: 10 * time.Second}
		go func() { hs.errs <- hs.debug.Serve(dln) }()
		fmt.Fprintf(stdout, "strata: pprof on http://%s/debug/pprof/\n", dln.Addr())
	}
	return hs, nil
}

// wait blocks until ctx ends or a listener fails.
func (hs *httpServer) wait(ctx context.Context, logger *slog.Logger) {
	select {
	case <-ctx.Done():
	case err := <-hs.errs:
		if !errors.Is(err, http.ErrServerClosed) {
			logger.Error("http server failed", "error", err)
		}
	}
}

// drain stops taking requests the way load balancers expect: /readyz
// turns 503 for --shutdown-delay while the listener still answers, then
// in-flight requests get --shutdown-grace to finish.
func (hs *httpServer) drain(s *settings, probes *observability.Probes, logger *slog.Logger) error {
	logger.Info("shutting down", "grace", s.shutdownGrace.String())
	probes.SetDraining()
	if s.shutdownDelay > 0 {
		time.Sleep(s.shutdownDelay)
	}
	grace, cancel := context.WithTimeout(context.Background(), s.shutdownGrace)
	defer cancel()
	var err error
	if e := hs.srv.Shutdown(grace); e != nil {
		err = fmt.Errorf("drain http: %w", e)
		hs.srv.Close()
	}
	if hs.debug != nil {
		hs.debug.Close()
	}
	return err
}
