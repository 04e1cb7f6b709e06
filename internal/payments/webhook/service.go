package webhook

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/storage/sqldb"
)

// HomeShard is the logical shard whose database holds every webhook row.
const HomeShard = 0

// Sealer encrypts signing secrets at rest under a key kept outside the
// database; auth's *token.Sealer satisfies it (cmd/strata passes it in).
type Sealer interface {
	Seal(plain, additionalData []byte) ([]byte, error)
	Open(sealed, additionalData []byte) ([]byte, error)
}

// Service manages webhook endpoints and delivers payments' events to them.
// It is safe for concurrent use; all state lives in the database of
// HomeShard, so any number of instances may run it.
//
// Its methods do not check the caller: Routes admits admins only.
type Service struct {
	store  *store
	sealer Sealer
	clock  strata.Clock
	log    *slog.Logger
	cfg    Config
	client *http.Client
	randN  func(int64) int64

	// wake tells the sender that the dispatcher queued deliveries.
	wake chan struct{}

	mu       sync.Mutex
	cached   []endpointRow // enabled endpoints, for the dispatcher
	cachedAt time.Time     // zero: nothing cached
	cacheGen uint64        // bumped by every change
}

// Deps are the collaborators of a Service.
type Deps struct {
	// Router locates the database of HomeShard. Payments' migrations
	// (paymentssql.Migrate) create the tables.
	Router *sqldb.Router
	// Sealer encrypts secrets at rest; nil stores them in plain text.
	Sealer Sealer
	Clock  strata.Clock
	Logger *slog.Logger
	Config Config
	// Resolver looks up receivers' host names; nil means
	// net.DefaultResolver. Tests map names to chosen addresses with it.
	Resolver Resolver
}

// NewService returns a Service.
func NewService(d Deps) *Service {
	cfg := d.Config.withDefaults()
	s := &Service{
		store:  &store{db: d.Router.Shard(HomeShard)},
		sealer: d.Sealer,
		clock:  d.Clock,
		log:    d.Logger,
		cfg:    cfg,
		client: NewClient(cfg, d.Resolver),
		randN:  rand.Int64N,
		wake:   make(chan struct{}, 1),
	}
	if s.clock == nil {
		s.clock = strata.SystemClock{}
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// sealedPrefix marks a secret stored sealed; a plain one starts with
// SecretPrefix.
const sealedPrefix = "sealed:"

// sealSecret returns the stored form of endpoint id's secret. The
// endpoint id is the additional data, so a sealed secret copied into
// another endpoint's row does not open.
func (s *Service) sealSecret(id strata.ID, secret string) (string, error) {
	if s.sealer == nil {
		return secret, nil
	}
	b, err := s.sealer.Seal([]byte(secret), []byte(id))
	if err != nil {
		return "", fmt.Errorf("seal secret of %s: %w", id, err)
	}
	return sealedPrefix + base64.StdEncoding.EncodeToString(b), nil
}

// openSecret reverses sealSecret; "" stays "".
func (s *Service) openSecret(id strata.ID, stored string) (string, error) {
	rest, sealed := strings.CutPrefix(stored, sealedPrefix)
	if !sealed {
		return stored, nil
	}
	if s.sealer == nil {
		return "", fmt.Errorf("open secret of %s: it is sealed and no sealer is configured", id)
	}
	b, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		return "", fmt.Errorf("open secret of %s: %w", id, err)
	}
	plain, err := s.sealer.Open(b, []byte(id))
	if err != nil {
		return "", fmt.Errorf("open secret of %s: %w", id, err)
	}
	return string(plain), nil
}

// signingSecrets returns the secrets that sign for row at now: the current
// one, then the previous one while its overlap lasts.
func (s *Service) signingSecrets(row *endpointRow, now time.Time) ([][]byte, error) {
	cur, err := s.openSecret(row.ID, row.Secret)
	if err != nil {
		return nil, err
	}
	out := [][]byte{[]byte(cur)}
	if row.PreviousSecret != "" && now.Before(row.PreviousExpiresAt) {
		prev, err := s.openSecret(row.ID, row.PreviousSecret)
		if err != nil {
			return nil, err
		}
		out = append(out, []byte(prev))
	}
	return out, nil
}

// notifySender wakes RunSender without blocking.
func (s *Service) notifySender() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// formatTime is the API's time format, as payments'.
func formatTime(t time.Time) string { return t.UTC().Format("2006-01-02T15:04:05.000Z07:00") }
