package main

import (
	"encoding/base64"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/auth"
	"github.com/stratadev/strata/internal/auth/password"
	"github.com/stratadev/strata/internal/content"
	"github.com/stratadev/strata/internal/gateway"
	"github.com/stratadev/strata/internal/idempotency"
	"github.com/stratadev/strata/internal/mail"
	"github.com/stratadev/strata/internal/observability"
	"github.com/stratadev/strata/internal/payments"
	"github.com/stratadev/strata/internal/payments/provider"
	"github.com/stratadev/strata/internal/payments/webhook"
	"github.com/stratadev/strata/internal/resilience"
	"github.com/stratadev/strata/internal/storage/blob"
)

// settings is every setting of strata serve and the admin commands. Each
// is a flag; config.Apply layers the environment and the config file
// under the flags.
type settings struct {
	configFile        string
	dataDir           string
	httpAddr          string
	debugAddr         string
	roles             []string
	logFormat         string
	logLevel          string
	logFlush          time.Duration
	shutdownGrace     time.Duration
	shutdownDelay     time.Duration
	shards            int
	sqliteBusyTimeout time.Duration
	sqliteShards      int
	postgres          []string
	postgresMaxConns  int
	postgresReplicas  []string
	replicaMaxLag     time.Duration
	replicaCheck      time.Duration
	shardMapRefresh   time.Duration
	masterKey         string
	masterKeyFile     string
	natsURL           string
	natsListen        string
	smtpURL           string
	mailFrom          string
	trustProxy        bool
	auth              auth.Config
	content           content.Config
	delivery          content.DeliveryConfig
	payments          payments.Config
	webhooks          webhook.Config
	reconcile         payments.ReconcileConfig
	cardNetwork       provider.TestConfig
	idempotency       idempotency.Config
	blob              blob.Config
	gateway           gateway.Config
	upstreams         map[string]*[]string // by pool: http://host:port or dns://name:port
	discovery         string
	discoveryRefresh  time.Duration
	announceURL       string
	dbGuard           resilience.Config
	natsGuard         resilience.Config
	blobGuard         resilience.Config
	cache             cacheSettings
	corsOrigins       []string
}

func (s *settings) registerFlags(fs *pflag.FlagSet) {
	fs.StringVar(&s.configFile, "config", "", "an optional YAML file of settings (keys are these flag names); flags and STRATA_* variables override it")
	fs.StringVar(&s.dataDir, "data-dir", "./strata-data", "where the embedded databases, the NATS store and the generated master key live")
	fs.StringVar(&s.httpAddr, "http-addr", ":8080", "the address of the HTTP API")
	fs.StringVar(&s.debugAddr, "debug-addr", "", "the address of the pprof debug listener; empty disables it (bind it to loopback)")
	fs.StringSliceVar(&s.roles, "roles", []string{"all"}, "the roles this instance runs: all (auth, content, payments and worker in one process), any of them, or gateway (alone)")
	fs.StringVar(&s.logFormat, "log-format", "json", "log format: json or text")
	fs.StringVar(&s.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.DurationVar(&s.logFlush, "log-flush-interval", 200*time.Millisecond, "serve buffers log lines and writes them out this often (and on exit); 0 writes each line at once")
	fs.DurationVar(&s.shutdownGrace, "shutdown-grace", 15*time.Second, "how long in-flight requests may take to finish after a stop signal, and then again how long consumers may take to finish their jobs")
	fs.DurationVar(&s.shutdownDelay, "shutdown-delay", time.Second, "how long /readyz answers 503 before the listener closes, so load balancers stop sending traffic")
	fs.IntVar(&s.shards, "shards", 256, "the number of logical shards; fixed when a deployment is created")
	fs.IntVar(&s.sqliteShards, "sqlite-shards", 1, "how many SQLite database files (strata.db, strata-1.db, ...) the logical shards spread over when no --postgres is given; a new deployment spreads them evenly, later additions start empty")
	fs.StringSliceVar(&s.postgres, "postgres", nil, "the deployment's PostgreSQL databases as name=DSN (postgres://user:password@host/db), comma-separated or repeated; when given they replace SQLite. The first holds the shard map; a new deployment spreads the logical shards evenly over them")
	fs.IntVar(&s.postgresMaxConns, "postgres-max-conns", 16, "the connection pool size of each PostgreSQL database")
	fs.StringSliceVar(&s.postgresReplicas, "postgres-replicas", nil, "streaming replicas as name=DSN, name being the --postgres database they replicate (several per database allowed); reads that tolerate staleness go to them")
	fs.DurationVar(&s.replicaMaxLag, "replica-max-lag", 5*time.Second, "a replica whose replay lag exceeds this is skipped until it catches up")
	fs.DurationVar(&s.replicaCheck, "replica-check-interval", time.Second, "how often each replica's health and lag are measured")
	fs.DurationVar(&s.shardMapRefresh, "shard-map-refresh", 5*time.Second, "how often an instance checks the shard map for changes (a moved shard)")
	fs.DurationVar(&s.sqliteBusyTimeout, "sqlite-busy-timeout", 5*time.Second, "how long SQLite waits for a lock held by another process")
	fs.StringVar(&s.masterKey, "master-key", "", "base64 of the 32-byte key that encrypts signing keys at rest (secret; prefer STRATA_MASTER_KEY or --master-key-file)")
	fs.StringVar(&s.masterKeyFile, "master-key-file", "", "a file holding the master key; default <data-dir>/master.key, generated on first start")
	fs.StringVar(&s.natsURL, "nats-url", "", "the NATS server to use; empty runs an embedded JetStream server")
	fs.StringVar(&s.natsListen, "nats-listen", "", "host:port where the embedded NATS server accepts connections; empty keeps it in-process only")
	fs.StringVar(&s.smtpURL, "smtp-url", "", "smtp://user:password@host:587 to send mail; empty writes mail to the log")
	fs.StringVar(&s.mailFrom, "mail-from", "Strata <no-reply@localhost>", "the From address of mail")
	fs.StringSliceVar(&s.corsOrigins, "cors-origins", nil, "origins (https://app.example) whose web pages may call the API, uploads included; * allows any; empty allows none (same-origin only)")
	fs.BoolVar(&s.trustProxy, "trust-proxy-headers", false, "take the client address from X-Forwarded-For (only behind a trusted proxy)")
	s.upstreams = map[string]*[]string{}
	for _, pool := range gateway.Pools {
		s.upstreams[pool] = fs.StringSlice("upstream-"+pool, nil, "the "+pool+" instances the gateway (and other modules' instances) send "+pool+" requests to: http://host:port, or dns://name:port for every address of a DNS name (a Kubernetes headless service), re-resolved every --discovery-refresh")
	}
	fs.StringVar(&s.discovery, "discovery", "static", "how instances are found besides the --upstream-* lists: static (only those) or nats (also instances announcing themselves on --nats-url)")
	fs.DurationVar(&s.discoveryRefresh, "discovery-refresh", 5*time.Second, "how often dns:// upstreams are resolved again")
	fs.StringVar(&s.announceURL, "announce-url", "", "the URL at which other instances reach this one (http://host:port); with --nats-url set, the instance announces itself and its roles on NATS for gateways using --discovery=nats")
	// The resilience policies of every dependency, in one place.
	s.dbGuard.RegisterFlags(fs, "db", "a PostgreSQL database (a transaction, a ping)", resilience.Defaults(30*time.Second, 0, 0))
	s.natsGuard.RegisterFlags(fs, "nats", "NATS (a publish)", resilience.Defaults(5*time.Second, 2, 0))
	s.blobGuard.RegisterFlags(fs, "blob", "blob storage (opening, stating or deleting an object; uploads stream without a time limit)", resilience.Defaults(30*time.Second, 2, 256))
	s.cache.registerFlags(fs)
	s.gateway.RegisterFlags(fs)
	s.auth.RegisterFlags(fs)
	s.content.RegisterFlags(fs)
	s.delivery.RegisterFlags(fs)
	s.payments.RegisterFlags(fs)
	s.webhooks.RegisterFlags(fs)
	s.reconcile.RegisterFlags(fs)
	s.cardNetwork.RegisterFlags(fs)
	s.idempotency.RegisterFlags(fs)
	s.blob.RegisterFlags(fs)
}

// knownRoles are the roles this build can run; all is every one of them
// but the gateway.
var knownRoles = []string{"auth", "content", "payments", "worker"}

// roleGateway is the front door of a split deployment; it runs alone.
const roleGateway = "gateway"

// roleSet expands --roles.
func (s *settings) roleSet() map[string]bool {
	set := map[string]bool{}
	for _, r := range s.roles {
		r = strings.TrimSpace(r)
		if r == "all" {
			for _, k := range knownRoles {
				set[k] = true
			}
			continue
		}
		set[r] = true
	}
	return set
}

func (s *settings) validate() error {
	if len(s.roles) == 0 {
		return fmt.Errorf("roles: must name at least one role")
	}
	for _, r := range s.roles {
		r = strings.TrimSpace(r)
		if r != "all" && r != roleGateway && !slices.Contains(knownRoles, r) {
			return fmt.Errorf("roles: unknown role %q (known: all, gateway, %s)", r, strings.Join(knownRoles, ", "))
		}
		if r == roleGateway && len(s.roles) > 1 {
			return fmt.Errorf("roles: gateway runs alone, in an instance of its own, in front of the module instances")
		}
	}
	for pool, list := range s.upstreams {
		for _, u := range *list {
			if err := validUpstream(u); err != nil {
				return fmt.Errorf("upstream-%s: %w", pool, err)
			}
		}
	}
	if s.discovery != "static" && s.discovery != "nats" {
		return fmt.Errorf("discovery: must be static or nats, got %q", s.discovery)
	}
	if s.discovery == "nats" && s.natsURL == "" {
		return fmt.Errorf("discovery: nats needs --nats-url")
	}
	if s.discoveryRefresh < 100*time.Millisecond {
		return fmt.Errorf("discovery-refresh: must be at least 100ms, got %s", s.discoveryRefresh)
	}
	if s.announceURL != "" {
		if err := validUpstream(s.announceURL); err != nil || strings.HasPrefix(s.announceURL, "dns://") {
			return fmt.Errorf("announce-url: must be http://host:port, got %q", s.announceURL)
		}
	}
	if err := s.gateway.Validate(); err != nil {
		return err
	}
	if err := s.cache.validate(); err != nil {
		return err
	}
	for _, o := range s.corsOrigins {
		if u, err := url.Parse(o); o != "*" && (err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Path != "") {
			return fmt.Errorf("cors-origins: %q is not an origin (scheme://host[:port]) or *", o)
		}
	}
	for dep, c := range map[string]resilience.Config{"db": s.dbGuard, "nats": s.natsGuard, "blob": s.blobGuard} {
		if err := c.Validate(dep); err != nil {
			return err
		}
	}
	if s.dataDir == "" {
		return fmt.Errorf("data-dir: must not be empty")
	}
	if _, _, err := net.SplitHostPort(s.httpAddr); err != nil {
		return fmt.Errorf("http-addr: %w", err)
	}
	if s.debugAddr != "" {
		if _, _, err := net.SplitHostPort(s.debugAddr); err != nil {
			return fmt.Errorf("debug-addr: %w", err)
		}
	}
	if s.natsListen != "" {
		if _, _, err := net.SplitHostPort(s.natsListen); err != nil {
			return fmt.Errorf("nats-listen: %w", err)
		}
	}
	if _, err := observability.NewLogger(nil, s.logFormat, s.logLevel); err != nil {
		return err
	}
	if s.logFlush < 0 || s.logFlush > 10*time.Second {
		return fmt.Errorf("log-flush-interval: must be between 0 and 10s, got %s", s.logFlush)
	}
	if s.shutdownGrace <= 0 {
		return fmt.Errorf("shutdown-grace: must be positive")
	}
	if s.shutdownDelay < 0 {
		return fmt.Errorf("shutdown-delay: must not be negative")
	}
	if s.shards < 1 || s.shards > strata.MaxShards {
		return fmt.Errorf("shards: must be between 1 and %d, got %d", strata.MaxShards, s.shards)
	}
	if s.sqliteShards < 1 || s.sqliteShards > s.shards {
		return fmt.Errorf("sqlite-shards: must be between 1 and the shard count %d, got %d", s.shards, s.sqliteShards)
	}
	seen := map[string]bool{}
	for _, entry := range s.postgres {
		name, dsn, ok := strings.Cut(entry, "=")
		if !ok || !validDBName(name) || strings.TrimSpace(dsn) == "" {
			return fmt.Errorf("postgres: each entry must be name=DSN with a name of letters, digits, - and _ (up to 63), got %q", redactEntry(entry))
		}
		if seen[name] {
			return fmt.Errorf("postgres: two databases named %q", name)
		}
		seen[name] = true
	}
	if len(s.postgres) > s.shards {
		return fmt.Errorf("postgres: %d databases for %d logical shards", len(s.postgres), s.shards)
	}
	for _, entry := range s.postgresReplicas {
		name, dsn, ok := strings.Cut(entry, "=")
		if !ok || strings.TrimSpace(dsn) == "" || !seen[name] {
			return fmt.Errorf("postgres-replicas: each entry must be name=DSN naming a --postgres database, got %q", redactEntry(entry))
		}
	}
	if s.replicaMaxLag <= 0 {
		return fmt.Errorf("replica-max-lag: must be positive, got %s", s.replicaMaxLag)
	}
	if s.replicaCheck < 10*time.Millisecond {
		return fmt.Errorf("replica-check-interval: must be at least 10ms, got %s", s.replicaCheck)
	}
	if s.postgresMaxConns < 1 || s.postgresMaxConns > 1000 {
		return fmt.Errorf("postgres-max-conns: must be between 1 and 1000, got %d", s.postgresMaxConns)
	}
	if s.shardMapRefresh < 100*time.Millisecond {
		return fmt.Errorf("shard-map-refresh: must be at least 100ms, got %s", s.shardMapRefresh)
	}
	if s.masterKey != "" {
		if k, err := base64.StdEncoding.DecodeString(s.masterKey); err != nil || len(k) != 32 {
			return fmt.Errorf("master-key: must be the base64 encoding of 32 bytes")
		}
	}
	if s.smtpURL != "" {
		if _, err := mail.NewSMTP(s.smtpURL, s.mailFrom); err != nil {
			return err
		}
	}
	if err := s.argon2Params().Validate(); err != nil {
		return err
	}
	if err := s.cardNetwork.Validate(); err != nil {
		return err
	}
	if err := s.idempotency.Validate(); err != nil {
		return err
	}
	if err := s.reconcile.Validate(); err != nil {
		return err
	}
	if err := s.webhooks.Validate(); err != nil {
		return err
	}
	if err := s.payments.Validate(); err != nil {
		return err
	}
	if err := s.delivery.Validate(); err != nil {
		return err
	}
	if err := s.content.Validate(); err != nil {
		return err
	}
	if err := s.blob.Validate(); err != nil {
		return err
	}
	return s.auth.Validate()
}

// blobURL is where blobs live: --blob-url, or a folder in the data directory.
func (s *settings) blobURL() string {
	if s.blob.URL != "" {
		return s.blob.URL
	}
	return filepath.Join(s.dataDir, "blobs")
}

func (s *settings) argon2Params() password.Params {
	p := password.DefaultParams()
	p.Memory, p.Time, p.Threads = s.auth.Argon2Memory, s.auth.Argon2Time, s.auth.Argon2Threads
	return p
}

// validUpstream checks one --upstream-* entry: http(s)://host:port, or
// dns://name:port.
func validUpstream(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return fmt.Errorf("%q is not scheme://host:port", raw)
	}
	switch u.Scheme {
	case "http", "https":
	case "dns":
		if u.Port() == "" {
			return fmt.Errorf("%q: dns:// needs a port", raw)
		}
	default:
		return fmt.Errorf("%q: the scheme must be http, https or dns", raw)
	}
	return nil
}

// validDBName reports whether name may name a database in the shard map.
func validDBName(name string) bool {
	if name == "" || len(name) > 63 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// redactEntry shows a --postgres entry without what may be a password.
func redactEntry(entry string) string {
	if len(entry) > 12 {
		return entry[:12] + "..."
	}
	return entry
}
