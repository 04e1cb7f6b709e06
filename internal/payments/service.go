package payments

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/spf13/pflag"
	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/payments/provider"
)

// Defaults of Config.
const (
	DefaultFeeBasisPoints = 1000 // 10 %
)

// Config holds the module's settings.
type Config struct {
	// FeeBasisPoints is the platform's fee on a purchase, in 1/100 of a
	// percent of the price (1000 is 10 %), rounded down.
	FeeBasisPoints int
	// TopUpMax is the largest top-up, in minor units of any currency.
	TopUpMax int64
	// RefundWindow is how long after a purchase its creator may refund it
	// (admins may at any time).
	RefundWindow time.Duration
}

// RegisterFlags registers every setting with its default on fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.IntVar(&c.FeeBasisPoints, "fee-basis-points", DefaultFeeBasisPoints, "platform fee on purchases, in 1/100 of a percent of the price (1000 = 10%)")
	fs.Int64Var(&c.TopUpMax, "topup-max", DefaultTopUpMax, "largest top-up, in minor units")
	fs.DurationVar(&c.RefundWindow, "refund-window", DefaultRefundWindow, "how long after a purchase its creator may refund it (admins may at any time)")
}

// Validate checks the settings.
func (c *Config) Validate() error {
	if c.FeeBasisPoints < 0 || c.FeeBasisPoints > 10000 {
		return fmt.Errorf("fee-basis-points must be between 0 and 10000, got %d", c.FeeBasisPoints)
	}
	if c.RefundWindow <= 0 {
		return fmt.Errorf("refund-window must be positive, got %s", c.RefundWindow)
	}
	if c.TopUpMax <= 0 {
		return fmt.Errorf("topup-max must be positive, got %d", c.TopUpMax)
	}
	return nil
}

// CatalogItem is what payments needs to know of an item to sell it.
type CatalogItem struct {
	ID        strata.ID
	CreatorID strata.ID
	Price     strata.Money
	// Buyable reports whether the item is published and not deleted.
	Buyable bool
}

// Catalog answers what an item costs; the content module implements it
// (cmd/strata adapts it), so payments never reads content's tables.
type Catalog interface {
	// Item returns the item; not_found when it does not exist.
	Item(ctx context.Context, id strata.ID) (CatalogItem, error)
}

// Service implements the ledger's operations. It is safe for concurrent
// use; all state lives in the Store.
type Service struct {
	store    Store
	catalog  Catalog
	provider provider.Provider
	clock    strata.Clock
	log      *slog.Logger
	notify   func()
	cfg      Config
}

// Deps are the collaborators of a Service.
type Deps struct {
	Store   Store
	Catalog Catalog
	// Provider charges cards for top-ups.
	Provider provider.Provider
	Clock    strata.Clock
	Logger   *slog.Logger
	// NotifyOutbox, when set, is called after a commit that wrote outbox
	// events.
	NotifyOutbox func()
	Config       Config
}

// NewService returns a Service.
func NewService(d Deps) *Service {
	s := &Service{store: d.Store, catalog: d.Catalog, provider: d.Provider, clock: d.Clock, log: d.Logger, notify: d.NotifyOutbox, cfg: d.Config}
	if s.clock == nil {
		s.clock = strata.SystemClock{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.notify == nil {
		s.notify = func() {}
	}
	return s
}

// Ping checks the module's databases.
func (s *Service) Ping(ctx context.Context) error { return s.store.Ping(ctx) }

// Has reports whether user holds item: content's Entitlements. It reads
// the primary of the user's database, so a purchase is visible to the
// next request.
func (s *Service) Has(ctx context.Context, user, item strata.ID) (bool, error) {
	if _, ok := user.Shard(); !ok {
		return false, nil
	}
	return s.store.Entitled(ctx, user, item)
}

var errNoPrincipal = &strata.Error{Code: strata.CodeUnauthenticated, Reason: "token_missing", Message: "a bearer access token is required"}

// shardOf returns the logical shard an id carries.
func shardOf(id strata.ID) (int, error) {
	sh, ok := id.Shard()
	if !ok {
		return 0, fmt.Errorf("id %q carries no shard", id)
	}
	return sh, nil
}
