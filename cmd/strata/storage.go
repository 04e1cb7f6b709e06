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
// databases and the master key.
type storage struct {
	router    *sqldb.Router
	masterKey []byte
}

// openStorage prepares the data directory, checks the deployment's shard
// count, opens the databases and applies every module's migrations.
func openStorage(ctx context.Context, s *settings) (*storage, error) {
	if err := os.MkdirAll(s.dataDir, 0o700); err != nil {
		return nil, fmt.Errorf("data-dir: %w", err)
	}
	if err := checkDeployment(s); err != nil {
		return nil, err
	}
	key, err := loadMasterKey(s)
	if err != nil {
		return nil, err
	}
	db, err := sqldb.OpenSQLite(ctx, s.sqlitePath(), sqldb.SQLiteOptions{BusyTimeout: s.sqliteBusyTimeout})
	if err != nil {
		return nil, err
	}
	router, err := sqldb.NewRouter(s.shards, db)
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := queue.MigrateOutbox(ctx, router); err != nil {
		router.Close()
		return nil, err
	}
	if err := authsql.Migrate(ctx, router); err != nil {
		router.Close()
		return nil, err
	}
	if err := idempotency.Migrate(ctx, router); err != nil {
		router.Close()
		return nil, fmt.Errorf("migrate idempotency keys: %w", err)
	}
	if err := paymentssql.Migrate(ctx, router); err != nil {
		router.Close()
		return nil, fmt.Errorf("migrate payments: %w", err)
	}
	if err := contentsql.Migrate(ctx, router); err != nil {
		router.Close()
		return nil, err
	}
	return &storage{router: router, masterKey: key}, nil
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
func (st *storage) paymentsService(cfg payments.Config, network provider.TestConfig, catalog *content.Service, logger *slog.Logger, notify func()) (*payments.Service, error) {
	clock := strata.SystemClock{}
	// The only provider so far is the built-in test card network.
	cards, err := provider.NewTestProvider(network, clock)
	if err != nil {
		return nil, err
	}
	return payments.NewService(payments.Deps{Store: paymentssql.New(st.router, clock), Catalog: contentCatalog{catalog},
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
	it, err := c.svc.Lookup(ctx, id)
	if err != nil {
		return payments.CatalogItem{}, err
	}
	return payments.CatalogItem{ID: it.ID, CreatorID: it.CreatorID, Price: it.Price,
		Buyable: it.Status == content.StatusPublished && !it.Deleted()}, nil
}

// contentService builds the content module on this storage; blobs may be
// nil (no uploads or downloads). Download URLs are signed with the
// configured keys, or else with one derived from the master key, which
// every instance shares. Entitlements come from payments (ents).
func (st *storage) contentService(cfg content.Config, delivery content.DeliveryConfig, blobs *blob.Store, ents content.Entitlements, logger *slog.Logger, notify func()) (*content.Service, error) {
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
		Config: cfg, Delivery: delivery, Signer: signer, Clock: clock, Logger: logger, NotifyOutbox: notify,
	}
	if blobs != nil {
		d.Blobs, d.Previews = blobs, blobs.Namespace(previewsNamespace)
	}
	return content.NewService(d), nil
}

// previewsNamespace is the blob namespace of public previews.
const previewsNamespace = "previews"
