package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/auth"
	"github.com/stratadev/strata/internal/auth/authsql"
	"github.com/stratadev/strata/internal/auth/password"
	"github.com/stratadev/strata/internal/auth/token"
	"github.com/stratadev/strata/internal/content"
	"github.com/stratadev/strata/internal/content/contentsql"
	"github.com/stratadev/strata/internal/idempotency"
	"github.com/stratadev/strata/internal/payments"
	"github.com/stratadev/strata/internal/payments/paymentssql"
	"github.com/stratadev/strata/internal/payments/provider"
	"github.com/stratadev/strata/internal/queue"
	"github.com/stratadev/strata/internal/storage/blob"
	"github.com/stratadev/strata/internal/storage/sqldb"
)

// storage is the data tier of this process: the shard router over its
// databases, the metadata database holding the shard map, and the master
// key.
type storage struct {
	router    *sqldb.Router
	meta      *sqldb.DB
	masterKey []byte
	describe  string // for the start-up banner
}

// openStorage prepares the data directory, opens the deployment's
// databases, loads (or, for a new deployment, creates) the shard map,
// checks the deployment's shard count and applies every module's
// migrations.
func openStorage(ctx context.Context, s *settings, logger *slog.Logger) (*storage, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data-dir: %w", err)
	}
	if len(s.postgres) == 0 {
		if err := checkDeployment(s); err != nil {
			return nil, err
		}
	}
	key, err := loadMasterKey(s)
	if err != nil {
		return nil, err
	}
	names, dbs, err := openDatabases(ctx, s, logger)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			for _, db := range dbs {
				db.Close()
			}
		}
	}()
	m, err := openShardMap(ctx, s, names, dbs)
	if err != nil {
		return nil, err
	}
	router, err := sqldb.NewMappedRouter(m, names, dbs)
	if err != nil {
		return nil, err
	}
	migrations := []struct {
		what    string
		migrate func(context.Context, *sqldb.Router) error
	}{
		{"outbox", queue.MigrateOutbox},
		{"auth", authsql.Migrate},
		{"idempotency keys", idempotency.Migrate},
		{"payments", paymentssql.Migrate},
		{"content", contentsql.Migrate},
	}
	for _, mg := range migrations {
		if err := mg.migrate(ctx, router); err != nil {
			return nil, fmt.Errorf("migrate %s: %w", mg.what, err)
		}
	}
	ok = true
	return &storage{router: router, meta: dbs[0], masterKey: key, describe: describeDatabases(s, names, m)}, nil
}

// openDatabases opens the deployment's physical databases in
// configuration order: the --postgres list, or --sqlite-shards files in
// the data directory (strata.db, strata-1.db, ...).
func openDatabases(ctx context.Context, s *settings, logger *slog.Logger) ([]string, []*sqldb.DB, error) {
	var names []string
	var dbs []*sqldb.DB
	fail := func(err error) ([]string, []*sqldb.DB, error) {
		for _, db := range dbs {
			db.Close()
		}
		return nil, nil, err
	}
	if len(s.postgres) > 0 {
		for _, entry := range s.postgres {
			name, dsn, _ := strings.Cut(entry, "=")
			db, err := sqldb.OpenPostgres(ctx, dsn, sqldb.PostgresOptions{MaxConns: s.postgresMaxConns})
			if err != nil {
				return fail(fmt.Errorf("postgres %s: %w", name, err))
			}
			names, dbs = append(names, name), append(dbs, db)
		}
		for i, name := range names {
			var replicas []string
			for _, entry := range s.postgresReplicas {
				if rn, dsn, _ := strings.Cut(entry, "="); rn == name {
					replicas = append(replicas, dsn)
				}
			}
			if len(replicas) == 0 {
				continue
			}
			err := dbs[i].AddReplicas(ctx, replicas, sqldb.PostgresOptions{MaxConns: s.postgresMaxConns},
				sqldb.ReplicaOptions{MaxLag: s.replicaMaxLag, CheckInterval: s.replicaCheck}, logger.With("db", name))
			if err != nil {
				return fail(fmt.Errorf("postgres-replicas of %s: %w", name, err))
			}
		}
		return names, dbs, nil
	}
	for i := range s.sqliteShards {
		name := sqliteName(i)
		db, err := sqldb.OpenSQLite(ctx, filepath.Join(s.dataDir, name+".db"), sqldb.SQLiteOptions{BusyTimeout: s.sqliteBusyTimeout})
		if err != nil {
			return fail(err)
		}
		names, dbs = append(names, name), append(dbs, db)
	}
	return names, dbs, nil
}

// sqliteName names the i-th SQLite database of the data directory (and
// its file, with ".db").
func sqliteName(i int) string {
	if i == 0 {
		return "strata"
	}
	return fmt.Sprintf("strata-%d", i)
}

// openShardMap loads the shard map from the first database, creating it
// for a new deployment: the logical shards spread evenly over the
// configured databases — or all on the first, for a deployment that
// predates shard maps. A new map is refused when another configured
// database already belongs to a deployment.
func openShardMap(ctx context.Context, s *settings, names []string, dbs []*sqldb.DB) (sqldb.ShardMap, error) {
	meta := dbs[0]
	has, err := sqldb.HasShardMap(ctx, meta)
	if err != nil {
		return sqldb.ShardMap{}, fmt.Errorf("shard map: %w", err)
	}
	initial := sqldb.EvenShardMap(s.shards, names)
	if !has {
		for i, db := range dbs[1:] {
			other, err := sqldb.HasShardMap(ctx, db)
			if err != nil {
				return sqldb.ShardMap{}, fmt.Errorf("shard map: %w", err)
			}
			if other {
				return sqldb.ShardMap{}, fmt.Errorf("shard map: database %q holds the shard map of a deployment but %q does not: "+
					"list the deployment's first database first", names[i+1], names[0])
			}
		}
		legacy, err := sqldb.HasTable(ctx, meta, "goose_auth") // a deployment from before shard maps
		if err != nil {
			return sqldb.ShardMap{}, fmt.Errorf("shard map: %w", err)
		}
		if legacy {
			initial = sqldb.EvenShardMap(s.shards, names[:1])
		}
	}
	m, _, err := sqldb.OpenShardMap(ctx, meta, initial, time.Now())
	if err != nil {
		return sqldb.ShardMap{}, err
	}
	if len(m.Shards) != s.shards {
		return sqldb.ShardMap{}, fmt.Errorf("shards: this deployment was created with %d logical shards; it cannot run with %d", len(m.Shards), s.shards)
	}
	return m, nil
}

// describeDatabases says where the data lives, for the start-up banner.
func describeDatabases(s *settings, names []string, m sqldb.ShardMap) string {
	engine := "SQLite in " + s.dataDir
	if len(s.postgres) > 0 {
		engine = "PostgreSQL"
	}
	replicas := ""
	if n := len(s.postgresReplicas); n > 0 {
		replicas = fmt.Sprintf(", %d replica(s)", n)
	}
	return fmt.Sprintf("%s, %d database(s) (%s)%s, %d logical shards, shard map version %d",
		engine, len(names), strings.Join(names, ", "), replicas, len(m.Shards), m.Version)
}

func (st *storage) close() error { return st.router.Close() }

// authService builds the auth module on this storage. notify, when set,
// wakes the in-process outbox relay.
func (st *storage) authService(s *settings, logger *slog.Logger, notify func()) (*auth.Service, *token.Sealer, error) {
	sealer, err := token.NewSealer(st.masterKey)
	if err != nil {
		return nil, nil, fmt.Errorf("master-key: %w", err)
	}
	clock := strata.SystemClock{}
	svc := auth.NewService(s.auth, auth.Deps{
		Store: authsql.New(st.router, clock), Shards: st.router.NumShards(), Sealer: sealer, Clock: clock,
		Logger: logger, Hasher: password.NewHasher(s.argon2Params(), 0), NotifyOutbox: notify,
	})
	return svc, sealer, nil
}

// deployment is written once, when a data directory is first used: the
// logical shard count can never change afterwards, because every stored
// ID names its shard.
type deployment struct {
	Shards    int       `json:"shards"`
	CreatedAt time.Time `json:"created_at"`
}

func checkDeployment(s *settings) error {
	path := filepath.Join(s.dataDir, "deployment.json")
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		b, _ := json.MarshalIndent(deployment{Shards: s.shards, CreatedAt: time.Now().UTC()}, "", "  ")
		return writeNew(path, append(b, '\n'))
	}
	if err != nil {
		return fmt.Errorf("data-dir: %w", err)
	}
	var d deployment
	if err := json.Unmarshal(b, &d); err != nil {
		return fmt.Errorf("data-dir: %s is corrupt: %w", path, err)
	}
	if d.Shards != s.shards {
		return fmt.Errorf("shards: this deployment was created with %d logical shards; it cannot run with %d", d.Shards, s.shards)
	}
	return nil
}

// loadMasterKey returns the key from --master-key, or from the key file,
// generating <data-dir>/master.key on first start when no file was named.
func loadMasterKey(s *settings) ([]byte, error) {
	if s.masterKey != "" {
		return base64.StdEncoding.DecodeString(s.masterKey)
	}
	path, generate := s.masterKeyFile, false
	if path == "" {
		path, generate = filepath.Join(s.dataDir, "master.key"), true
	}
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) && generate {
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return nil, err
		}
		if err := writeNew(path, []byte(base64.StdEncoding.EncodeToString(key)+"\n")); err != nil {
			return nil, fmt.Errorf("master-key-file: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("master-key-file: %w", err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) != 32 {
		return nil, fmt.Errorf("master-key-file: %s must hold the base64 encoding of 32 bytes", path)
	}
	return key, nil
}

// writeNew creates path with mode 0600, failing if it exists, and syncs it.
func writeNew(path string, b []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// paymentsService builds the payments module on this storage, pricing
// items through content.
func (st *storage) paymentsService(cfg payments.Config, network provider.TestConfig, catalog payments.Catalog, logger *slog.Logger, notify func()) (*payments.Service, error) {
	clock := strata.SystemClock{}
	// The only provider so far is the built-in test card network.
	cards, err := provider.NewTestProvider(network, clock)
	if err != nil {
		return nil, err
	}
	return payments.NewService(payments.Deps{Store: paymentssql.New(st.router, clock), Catalog: catalog,
		Provider: cards, Clock: clock, Logger: logger, NotifyOutbox: notify, Config: cfg}), nil
}

// entitlementsOf is content's Entitlements over a payments service that
// is made after content (each module needs the other's interface).
type entitlementsOf struct{ svc **payments.Service }

func (e entitlementsOf) Has(ctx context.Context, user, item strata.ID) (bool, error) {
	return (*e.svc).Has(ctx, user, item)
}

// contentCatalog is payments' Catalog over the content module.
type contentCatalog struct{ svc *content.Service }

func (c contentCatalog) Item(ctx context.Context, id strata.ID) (payments.CatalogItem, error) {
	e, err := c.svc.Entry(ctx, id)
	return payments.CatalogItem(e), err
}

// contentService builds the content module on this storage; blobs may be
// nil (no uploads or downloads). Download URLs are signed with the
// configured keys, or else with one derived from the master key, which
// every instance shares. Entitlements come from payments (ents).
func (st *storage) contentService(cfg content.Config, delivery content.DeliveryConfig, blobs *blob.Store, ents content.Entitlements, caches content.Caches, logger *slog.Logger, notify func()) (*content.Service, error) {
	clock := strata.SystemClock{}
	keys, err := content.ParseSigningKeys(delivery.SigningKeys) // validated with the other settings
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		keys = []content.SigningKey{content.DeriveSigningKey(st.masterKey)}
	}
	signer, err := content.NewURLSigner(keys, delivery.URLLifetime)
	if err != nil {
		return nil, err
	}
	d := content.Deps{
		Store: contentsql.New(st.router, clock), Entitlements: ents,
		Config: cfg, Delivery: delivery, Signer: signer, Clock: clock, Logger: logger, NotifyOutbox: notify, Caches: caches,
	}
	if blobs != nil {
		d.Blobs, d.Previews = blobs, blobs.Namespace(previewsNamespace)
	}
	return content.NewService(d), nil
}

// previewsNamespace is the blob namespace of public previews.
const previewsNamespace = "previews"
