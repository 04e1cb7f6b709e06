package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"

	"github.com/nats-io/nats.go"
	"github.com/stratadev/strata/internal/cache"
	"github.com/stratadev/strata/internal/gateway"
	"github.com/stratadev/strata/internal/httpx"
	"github.com/stratadev/strata/internal/observability"
	"github.com/stratadev/strata/internal/queue"
	"github.com/stratadev/strata/internal/resilience"
)

// serveGateway runs the gateway role: no database, no blobs; NATS only to
// hear instances announce themselves (--discovery=nats).
func serveGateway(ctx context.Context, s *settings, logger *slog.Logger, stdout io.Writer) error {
	metrics := observability.NewMetrics()
	deps := gateway.Deps{Config: s.gateway, Metrics: gateway.NewMetrics(metrics.Registry()), Logger: logger,
		TrustProxyHeaders: s.trustProxy}
	if s.cache.redisURL != "" && s.gateway.RateLimit > 0 {
		// The per-client limit in Redis, shared by every gateway.
		r, err := cache.OpenRedis(s.cache.redisURL,
			resilience.New("redis", s.cache.redisGuard, resilience.NewMetrics(metrics.Registry()), logger), logger)
		if err != nil {
			return err
		}
		defer r.Close()
		deps.Limiter = newSharedLimiter(r, s.gateway.RateLimit, s.gateway.RateBurst)
	}
	g := gateway.New(deps)
	defer g.Close()

	var q *queue.Client
	if s.discovery == "nats" {
		var err error
		if q, err = queue.Connect(s.natsURL); err != nil {
			return fmt.Errorf("nats-url: %w", err)
		}
		defer q.Close()
	}
	var nc *nats.Conn
	if q != nil {
		nc = q.Conn()
	}
	sources := discoverySources(s, nc, logger)
	if len(sources) == 0 {
		return fmt.Errorf("gateway: no instances to route to: set --upstream-auth, --upstream-content and --upstream-payments, or --discovery=nats")
	}
	watchCtx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopWatch()
	wg.Go(func() {
		if err := g.Watch(watchCtx, sources...); err != nil {
			logger.Error("gateway: discovery stopped", "error", err)
		}
	})

	probes := observability.NewProbes()
	probes.SetLogger(logger)
	mux := http.NewServeMux()
	mux.Handle("GET /healthz", probes.HealthzHandler())
	mux.Handle("GET /readyz", probes.ReadyzHandler())
	mux.Handle("GET /metrics", metrics.Handler())
	mux.Handle("GET /gateway/status", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.WriteJSON(w, http.StatusOK, g.Status())
	}))
	mux.Handle("/", g)
	handler := httpx.Chain(mux, httpx.RequestID, httpx.AccessLog(logger), httpx.Recover)
	hs, err := startHTTP(s, handler, logger, stdout)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "strata %s: roles gateway\n", version)
	fmt.Fprintf(stdout, "strata: listening on %s\n", displayURL(hs.ln.Addr()))
	logger.Info("strata started", "http_addr", hs.ln.Addr().String(), "roles", []string{roleGateway})
	hs.wait(ctx, logger)
	err = hs.drain(s, probes, logger)
	logger.Info("stopped")
	return err
}
