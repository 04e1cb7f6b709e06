package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/auth"
	"github.com/stratadev/strata/internal/content"
	"github.com/stratadev/strata/internal/content/contentsql"
	"github.com/stratadev/strata/internal/discovery"
	"github.com/stratadev/strata/internal/gateway"
	"github.com/stratadev/strata/internal/httpx"
	"github.com/stratadev/strata/internal/idempotency"
	"github.com/stratadev/strata/internal/mail"
	"github.com/stratadev/strata/internal/observability"
	"github.com/stratadev/strata/internal/payments"
	"github.com/stratadev/strata/internal/payments/webhook"
	"github.com/stratadev/strata/internal/queue"
	"github.com/stratadev/strata/internal/resilience"
	"github.com/stratadev/strata/internal/storage/blob"
	"github.com/stratadev/strata/internal/storage/sqldb"
)

// serveCmd runs the roles of s until ctx ends, then shuts down gracefully:
// /readyz turns 503, in-flight requests finish within the grace period,
// consumers ack what they finished, and the queue and databases close.
func serveCmd(ctx context.Context, s *settings, stdout, stderr io.Writer) error {
	logOut := stderr
	if s.logFlush > 0 {
		// Registered first, so it runs last: every line logged on the way
		// out is written.
		buffered := observability.NewBufferedWriter(stderr, 256<<10, s.logFlush)
		defer buffered.Close()
		logOut = buffered
	}
	logger, err := observability.NewLogger(logOut, s.logFormat, s.logLevel)
	if err != nil {
		return err
	}
	roles := s.roleSet()
	if roles[roleGateway] {
		return serveGateway(ctx, s, logger, stdout)
	}
	clock := strata.SystemClock{}

	st, err := openStorage(ctx, s, logger)
	if err != nil {
		return err
	}
	defer st.close()

	q, err := openQueue(ctx, s, logger)
	if err != nil {
		return err
	}
	defer q.close()

	metrics := observability.NewMetrics()
	qmetrics := queue.NewMetrics(metrics.Registry())
	// Every outbound dependency gets its resilience policies here.
	guards := resilience.NewMetrics(metrics.Registry())
	dbGuard := s.dbGuard
	dbGuard.FailureFunc = sqldb.Outage // a transaction's own errors are answers, not outages
	for _, db := range st.router.DBs() {
		if db.Dialect() == sqldb.Postgres { // SQLite is a file of this process
			db.SetGuard(resilience.New("postgres "+st.router.NameOf(db), dbGuard, guards, logger))
		}
	}
	q.client.Guard = resilience.New("nats", s.natsGuard, guards, logger)
	registerDBMetrics(metrics.Registry(), st.router)
	probes := observability.NewProbes()
	probes.SetLogger(logger)
	probes.AddReadinessCheck("database", st.router.Ping)
	probes.AddReadinessCheck("queue", q.client.Ping)

	// bg carries the background loops; it ends after HTTP has drained. On
	// an early error return they are stopped and waited for before the
	// queue and the databases close (defers run last-in first-out).
	bg, stopBG := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	defer wg.Wait()
	defer stopBG()
	goBG := func(name string, fn func(context.Context) error) {
		wg.Go(func() {
			if err := fn(bg); err != nil && bg.Err() == nil {
				logger.Error("background task stopped", "task", name, "error", err)
			}
		})
	}

	goBG("shard map", func(ctx context.Context) error {
		return st.router.Follow(ctx, st.meta, s.shardMapRefresh, logger)
	})

	var relay *queue.Relay
	if roles["worker"] {
		relay = queue.NewRelay(st.router, q.client, queue.RelayConfig{Metrics: qmetrics}, logger, clock)
		goBG("outbox relay", relay.Run)
	}
	var notify func()
	if relay != nil {
		notify = relay.Notify
	}
	authSvc, sealer, err := st.authService(s, logger, notify)
	if err != nil {
		return err
	}

	switch {
	case roles["auth"]:
		if err := authSvc.Start(ctx); err != nil {
			return fmt.Errorf("start auth: %w", err)
		}
		goBG("auth maintenance", func(ctx context.Context) error { authSvc.Run(ctx); return nil })
	case roles["content"], roles["payments"]:
		// Content and payments only verify tokens: they keep the key ring
		// current and leave rotation to the auth instances.
		if err := authSvc.Ring().Refresh(ctx); err != nil {
			return fmt.Errorf("load signing keys: %w", err)
		}
		goBG("key ring", authSvc.Ring().Run)
	}
	blobs, err := blob.Open(ctx, s.blobURL())
	if err != nil {
		return fmt.Errorf("blob-url: %w", err)
	}
	blobs.SetGuard(resilience.New("blob storage", s.blobGuard, guards, logger))
	defer blobs.Close()
	probes.AddReadinessCheck("blobs", blobs.Ping)
	// A module whose peer runs in other instances reaches it through
	// their internal API, balanced like the gateway balances.
	token := internalToken(st.masterKey)
	catalogRemote := roles["payments"] && !roles["content"] && hasPeers(s, "content")
	entsRemote := roles["content"] && !roles["payments"] && hasPeers(s, "payments")
	var peers *gateway.Gateway
	if catalogRemote || entsRemote {
		var used []string
		if catalogRemote {
			used = append(used, "content")
		}
		if entsRemote {
			used = append(used, "payments")
		}
		peers = gateway.New(gateway.Deps{Config: s.gateway, Metrics: gateway.NewMetrics(metrics.Registry()), Logger: logger, Pools: used})
		defer peers.Close()
		sources := discoverySources(s, q.client.Conn(), logger)
		goBG("peer discovery", func(ctx context.Context) error { return peers.Watch(ctx, sources...) })
	}
	cs, err := openCaches(s.cache, metrics.Registry(), guards, logger)
	if err != nil {
		return err
	}
	defer cs.close()
	var paymentsSvc *payments.Service
	var ents content.Entitlements = entitlementsOf{&paymentsSvc}
	if entsRemote {
		ents = remoteEntitlements{peerClient{peers, "payments", token}}
	}
	if cs.entitlements != nil {
		ents = cachedEntitlements{ents, cs.entitlements}
	}
	contentSvc, err := st.contentService(s.content, s.delivery, blobs, ents, cs.content, logger, notify)
	if err != nil {
		return err
	}
	if err := cs.subscribe(q.client.Conn(), contentSvc); err != nil {
		return err
	}
	var catalog payments.Catalog = contentCatalog{contentSvc}
	if catalogRemote {
		catalog = remoteCatalog{peerClient{peers, "content", token}}
	}
	if paymentsSvc, err = st.paymentsService(s.payments, s.cardNetwork, catalog, logger, notify); err != nil {
		return err
	}
	logger.Warn("payments use the built-in test card network: no real money moves")
	keys := idempotency.NewStore(st.router, clock)
	if cs.replays != nil {
		keys.SetReplayCache(cs.replays)
	}
	hooks := webhook.NewService(webhook.Deps{Router: st.router, Sealer: sealer, Clock: clock, Logger: logger, Config: s.webhooks})
	mux := newMux(roles, probes, metrics, authSvc, contentSvc, paymentsSvc, hooks, idempotency.Middleware(keys, idempotencyConfig(s.idempotency, st.masterKey)), httpx.RequireInternal(token), s.trustProxy)

	var consumers []*queue.Consumer
	if roles["worker"] {
		mc := auth.MailConsumer{Mailer: mail.LogMailer{Logger: logger}, Sealer: sealer}
		if s.smtpURL != "" {
			m, err := mail.NewSMTP(s.smtpURL, s.mailFrom) // validated with the other settings
			if err != nil {
				return err
			}
			mc.Mailer = m
		}
		ap := content.AssetProcessor{Store: contentsql.New(st.router, clock), Blobs: blobs, Previews: blobs.Namespace(previewsNamespace),
			Clock: clock, Logger: logger}
		goBG("content janitor", func(ctx context.Context) error { contentSvc.RunJanitor(ctx); return nil })
		goBG("idempotency sweep", func(ctx context.Context) error { return keys.Run(ctx, 0, logger) })
		settler := payments.IntentSettler{Service: paymentsSvc, Logger: logger}
		saga := payments.SagaWorker{Service: paymentsSvc, Logger: logger}
		goBG("webhook sender", hooks.RunSender)
		dispatcher := webhook.Dispatcher{Service: hooks, Logger: logger}
		reconcileMetrics := payments.NewReconcileMetrics(metrics.Registry())
		goBG("ledger reconciler", func(ctx context.Context) error {
			paymentsSvc.RunReconciler(ctx, s.reconcile.Interval, reconcileMetrics)
			return nil
		})
		for _, w := range []struct {
			name string
			cfg  queue.ConsumerConfig
			h    queue.Handler
		}{
			{"mail", mc.ConsumerConfig(), mc.Handle},
			{"asset processor", ap.ConsumerConfig(), ap.Handle},
			{"payment settler", settler.ConsumerConfig(), settler.Handle},
			{"purchase saga", saga.ConsumerConfig(), saga.Handle},
			{"webhook dispatcher", dispatcher.ConsumerConfig(), dispatcher.Handle},
		} {
			w.cfg.Metrics = qmetrics
			c, err := q.client.Consume(ctx, w.cfg, w.h, logger)
			if err != nil {
				return fmt.Errorf("start %s consumer: %w", w.name, err)
			}
			consumers = append(consumers, c)
		}
	}
	defer func() { // an early return stops them before the queue closes; after a normal stop, a no-op
		ctx, cancel := context.WithTimeout(context.Background(), s.shutdownGrace)
		defer cancel()
		for _, c := range consumers {
			c.Stop(ctx)
		}
	}()

	chain := []func(http.Handler) http.Handler{httpx.RequestID, httpx.AccessLog(logger), metrics.HTTPMiddleware, httpx.Recover}
	if len(s.corsOrigins) > 0 {
		chain = append(chain, httpx.CORS(s.corsOrigins))
	}
	if len(s.postgresReplicas) > 0 {
		// Clients read their own writes from replicas by sending back the
		// Strata-Consistency token.
		chain = append(chain, httpx.Consistency)
	}
	hs, err := startHTTP(s, httpx.Chain(mux, chain...), logger, stdout)
	if err != nil {
		return err
	}
	absData, _ := filepath.Abs(s.dataDir)
	fmt.Fprintf(stdout, "strata %s: roles %s\n", version, strings.Join(sortedRoles(roles), ","))
	fmt.Fprintf(stdout, "strata: listening on %s\n", displayURL(hs.ln.Addr()))
	fmt.Fprintf(stdout, "strata: data in %s; databases: %s\n", absData, st.describe)
	fmt.Fprintf(stdout, "strata: queue %s\n", q.describe)
	logger.Info("strata started", "http_addr", hs.ln.Addr().String(), "data_dir", absData, "roles", sortedRoles(roles))
	// Announced once serving; the leave goes out before draining, so that
	// gateways stop sending requests before the listener closes.
	announceCtx, stopAnnounce := context.WithCancel(bg)
	defer stopAnnounce()
	var announced sync.WaitGroup
	if s.announceURL != "" && (s.natsURL != "" || s.natsListen != "") {
		a := &discovery.Announcer{Conn: q.client.Conn(), Logger: logger,
			Instance: discovery.Instance{URL: strings.TrimSuffix(s.announceURL, "/"), Roles: sortedRoles(roles)}}
		announced.Go(func() {
			if err := a.Run(announceCtx); err != nil {
				logger.Error("discovery: cannot announce this instance", "error", err)
			}
		})
	}

	hs.wait(ctx, logger)
	stopAnnounce()
	announced.Wait()
	errs := []error{hs.drain(s, probes, logger)}
	// Consumers get a grace period of their own: a slow HTTP drain must
	// not leave them no time to finish and ack.
	jobGrace, cancel := context.WithTimeout(context.Background(), s.shutdownGrace)
	defer cancel()
	for _, c := range consumers {
		if err := c.Stop(jobGrace); err != nil {
			errs = append(errs, fmt.Errorf("stop consumer: %w", err))
		}
	}
	stopBG()
	wg.Wait()
	logger.Info("stopped")
	return errors.Join(errs...)
}

// newMux mounts the probes, the metrics and the routes of every module
// whose role this instance runs.
func newMux(roles map[string]bool, probes *observability.Probes, metrics *observability.Metrics, authSvc *auth.Service,
	contentSvc *content.Service, paymentsSvc *payments.Service, hooks *webhook.Service, idempotent, internal func(http.Handler) http.Handler, trustProxy bool) *httpx.Mux {
	mux := httpx.NewMux()
	mux.Wrap(metrics.InFlight)
	mux.Handle("GET /healthz", probes.HealthzHandler())
	mux.Handle("GET /readyz", probes.ReadyzHandler())
	mux.Handle("GET /metrics", metrics.Handler())
	if roles["auth"] {
		auth.Routes(mux, authSvc, trustProxy)
	}
	if roles["content"] {
		content.Routes(mux, contentSvc, authSvc.Verifier(), idempotent)
		content.InternalRoutes(mux, contentSvc, internal)
	}
	if roles["payments"] {
		payments.Routes(mux, paymentsSvc, authSvc.Verifier(), idempotent)
		webhook.Routes(mux, hooks, authSvc.Verifier(), idempotent)
		payments.InternalRoutes(mux, paymentsSvc, internal)
	}
	return mux
}

// displayURL names a listener the way a user would reach it: a wildcard
// address is shown as localhost.
func displayURL(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return "http://" + a.String()
	}
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "localhost"
	}
	return "http://" + net.JoinHostPort(host, port)
}

func sortedRoles(set map[string]bool) []string {
	var out []string
	for _, r := range knownRoles {
		if set[r] {
			out = append(out, r)
		}
	}
	return out
}

// queueConn is this process's NATS connection and, in one-process mode,
// the embedded server it talks to.
type queueConn struct {
	client   *queue.Client
	server   *server.Server
	describe string
}

func openQueue(ctx context.Context, s *settings, logger *slog.Logger) (*queueConn, error) {
	qc := &queueConn{}
	var err error
	if s.natsURL != "" {
		if qc.client, err = queue.Connect(s.natsURL); err != nil {
			return nil, fmt.Errorf("nats-url: %w", err)
		}
		qc.describe = "NATS at " + s.natsURL
	} else {
		cfg := queue.ServerConfig{StoreDir: filepath.Join(s.dataDir, "nats")}
		if s.natsListen != "" {
			host, port, _ := net.SplitHostPort(s.natsListen)
			cfg.Listen, cfg.Host = true, host
			fmt.Sscan(port, &cfg.Port)
		}
		if qc.server, err = queue.StartServer(cfg, logger); err != nil {
			return nil, fmt.Errorf("start embedded nats: %w", err)
		}
		if qc.client, err = queue.ConnectInProcess(qc.server); err != nil {
			qc.close()
			return nil, err
		}
		qc.describe = "embedded NATS JetStream, store in " + cfg.StoreDir
		if cfg.Listen {
			qc.describe += ", listening on " + s.natsListen
		} else {
			qc.describe += " (in-process only)"
		}
	}
	for _, sc := range []queue.StreamConfig{auth.StreamConfig(), content.StreamConfig(), payments.StreamConfig()} {
		if err := qc.client.EnsureStream(ctx, sc); err != nil {
			qc.close()
			return nil, err
		}
	}
	if err := qc.client.EnsureDeadLetterStream(ctx); err != nil {
		qc.close()
		return nil, err
	}
	return qc, nil
}

func (qc *queueConn) close() {
	if qc.client != nil {
		qc.client.Close()
	}
	if qc.server != nil {
		qc.server.Shutdown()
		qc.server.WaitForShutdown()
	}
}

// idempotencyConfig keys the idempotency fingerprints with a key derived
// from the master key, shared by every instance.
func idempotencyConfig(cfg idempotency.Config, masterKey []byte) idempotency.Config {
	mac := hmac.New(sha256.New, masterKey)
	mac.Write([]byte("strata idempotency fingerprints v1"))
	cfg.HashKey = mac.Sum(nil)
	return cfg
}

// registerDBMetrics exports each SQLite database's group commits (the
// transactions committed over the commits that carried them is the mean
// batch size) and each PostgreSQL database's replicas and retries.
func registerDBMetrics(reg prometheus.Registerer, r *sqldb.Router) {
	for _, db := range r.DBs() {
		if db.Dialect() != sqldb.SQLite {
			registerPostgresMetrics(reg, r.NameOf(db), db)
			continue
		}
		labels := prometheus.Labels{"db": filepath.Base(db.Name())}
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "strata_db_commits_total", ConstLabels: labels,
			Help: "Write transactions SQLite committed (or tried to), each carrying a batch of Strata transactions.",
		}, func() float64 { n, _ := db.BatchStats(); return float64(n) }))
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "strata_db_transactions_total", ConstLabels: labels,
			Help: "Strata write transactions run by group commit on SQLite.",
		}, func() float64 { _, n := db.BatchStats(); return float64(n) }))
	}
}

// registerPostgresMetrics exports a PostgreSQL database's transaction
// retries and, per replica, its health, lag and reads.
func registerPostgresMetrics(reg prometheus.Registerer, name string, db *sqldb.DB) {
	labels := prometheus.Labels{"db": name}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "strata_db_tx_retries_total", ConstLabels: labels,
		Help: "PostgreSQL transactions run again after a serialization failure or a deadlock.",
	}, func() float64 { return float64(db.Retries()) }))
	replicas, _, _ := db.ReplicaStats()
	if len(replicas) == 0 {
		return
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "strata_db_replica_fallbacks_total", ConstLabels: labels,
		Help: "Reads that tolerate staleness served by the primary because no replica was healthy, within the lag bound and caught up with the caller's token.",
	}, func() float64 { _, _, n := db.ReplicaStats(); return float64(n) }))
	for i, rs := range replicas {
		rl := prometheus.Labels{"db": name, "replica": rs.Name} // the DSN without its password
		stat := func() sqldb.ReplicaStat { all, _, _ := db.ReplicaStats(); return all[i] }
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "strata_db_replica_healthy", ConstLabels: rl,
			Help: "1 while the replica answers, is a standby and lags within --replica-max-lag.",
		}, func() float64 {
			if stat().Healthy {
				return 1
			}
			return 0
		}))
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "strata_db_replica_lag_seconds", ConstLabels: rl,
			Help: "Replay lag at the last check: the time since the last replayed transaction while behind, 0 when caught up.",
		}, func() float64 { return stat().Lag.Seconds() }))
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "strata_db_replica_reads_total", ConstLabels: rl,
			Help: "Reads served by the replica.",
		}, func() float64 { return float64(stat().Reads) }))
	}
}
