package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/mail"
	"slices"
	"strings"
	"sync/atomic"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/maypok86/otter/v2"
	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/auth/password"
	"github.com/stratadev/strata/internal/auth/token"
)

// Service implements the auth module's operations. It is safe for
// concurrent use; all state lives in the Store and the key ring.
type Service struct {
	cfg     Config
	store   Store
	shards  int
	hasher  *password.Hasher
	policy  password.Policy
	ring    *token.Ring
	signer  *token.Signer
	sealer  *token.Sealer
	clock   strata.Clock
	log     *slog.Logger
	notify  func() // wakes the outbox relay after a commit that wrote events
	verifyr *token.Verifier
	users   *otter.Cache[strata.ID, *profile] // profiles for Me; nil when disabled
	// userGens counts committed changes per bucket of users: a profile
	// read from the database is cached only if no change to its bucket
	// committed while it was read, so a slow read cannot put back what
	// forgetUser just dropped.
	userGens [256]atomic.Uint64
}

// userCacheSize bounds the profiles an instance keeps for Me.
const userCacheSize = 10000

// Deps are the collaborators of a Service.
type Deps struct {
	Store  Store
	Shards int // the deployment's logical shard count
	Hasher *password.Hasher
	Sealer *token.Sealer
	Clock  strata.Clock
	Logger *slog.Logger
	// NotifyOutbox, when set, is called after a commit that wrote outbox
	// events, so the relay publishes them at once instead of at its next poll.
	NotifyOutbox func()
}

// NewService returns a Service. Call Start before serving so that a
// signing key exists and the key ring is loaded.
func NewService(cfg Config, d Deps) *Service {
	s := &Service{
		cfg:    cfg,
		store:  d.Store,
		shards: d.Shards,
		hasher: d.Hasher,
		policy: password.Policy{MinLength: cfg.PasswordMin, MaxLength: password.DefaultPolicy().MaxLength},
		sealer: d.Sealer,
		clock:  d.Clock,
		log:    d.Logger,
		notify: d.NotifyOutbox,
	}
	if s.notify == nil {
		s.notify = func() {}
	}
	s.ring = token.NewRing(s.loadKeys, d.Clock, cfg.KeyRefresh)
	s.signer = token.NewSigner(cfg.Issuer, cfg.Audience, cfg.AccessTTL, d.Clock)
	s.verifyr = token.NewVerifier(s.ring, cfg.Issuer, cfg.Audience, 30*time.Second, d.Clock, cfg.TokenCacheSize)
	if cfg.UserCacheTTL > 0 {
		s.users = otter.Must(&otter.Options[strata.ID, *profile]{
			MaximumSize:      userCacheSize,
			ExpiryCalculator: otter.ExpiryWriting[strata.ID, *profile](cfg.UserCacheTTL),
		})
	}
	return s
}

// forgetUser drops a cached profile after this instance changed the user.
// Other instances see the change within auth-user-cache-ttl.
func (s *Service) forgetUser(id strata.ID) {
	if s.users != nil {
		s.userGen(id).Add(1)
		s.users.Invalidate(id)
	}
}

func (s *Service) userGen(id strata.ID) *atomic.Uint64 {
	return &s.userGens[strata.ShardOfKey(string(id), len(s.userGens))]
}

// Verifier returns the access-token verifier other modules authenticate
// requests with; it never touches the database on a known key.
func (s *Service) Verifier() *token.Verifier { return s.verifyr }

// Ring returns the key ring, for the JWKS document.
func (s *Service) Ring() *token.Ring { return s.ring }

// Ping checks the module's databases.
func (s *Service) Ping(ctx context.Context) error { return s.store.Ping(ctx) }

// TokenPair is what signup, login and refresh answer.
type TokenPair struct {
	AccessToken  string
	ExpiresAt    time.Time
	RefreshToken string
	User         *User
}

// SignupRequest is the input of Signup.
type SignupRequest struct {
	Email    string
	Password string
	Name     string
	Role     strata.Role
}

// validateEmail accepts a bare addr-spec (RFC 5322, no display name, no
// quoted local part) with a dotted domain, at most 254 bytes, without
// control characters.
func validateEmail(field, email string) error {
	if email == "" {
		return strata.Invalid(field, "is required")
	}
	bad := strata.Invalid(field, "must be a valid email address")
	if len(email) > 254 || !utf8.ValidString(email) || strings.ContainsFunc(email, unicode.IsControl) ||
		strings.ContainsAny(email, " \"") || strings.Count(email, "@") != 1 {
		return bad
	}
	addr, err := mail.ParseAddress(email)
	if err != nil || addr.Address != email || addr.Name != "" {
		return bad
	}
	domain := email[strings.IndexByte(email, '@')+1:]
	if !strings.Contains(domain, ".") || strings.HasSuffix(domain, ".") {
		return bad
	}
	return nil
}

func validateName(name string) error {
	n := len([]rune(name))
	switch {
	case n == 0:
		return strata.Invalid("name", "is required")
	case n > 100:
		return strata.Invalid("name", "must be at most 100 characters")
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return strata.Invalid("name", "must not contain control characters")
	}
	return nil
}

// Signup creates an account with role buyer (default) or creator, starts a
// session and mails an email-verification link. Errors: invalid (with the
// field), conflict "email_taken".
func (s *Service) Signup(ctx context.Context, req SignupRequest) (*TokenPair, error) {
	req.Email = NormalizeEmail(req.Email)
	req.Name = strings.TrimSpace(req.Name)
	if req.Role == "" {
		req.Role = strata.RoleBuyer
	}
	var errs []string
	for _, e := range []error{validateEmail("email", req.Email), validateName(req.Name)} {
		var se *strata.Error
		if errors.As(e, &se) {
			errs = append(errs, se.Fields[0].Field, se.Fields[0].Message)
		}
	}
	if req.Role != strata.RoleBuyer && req.Role != strata.RoleCreator {
		errs = append(errs, "role", "must be buyer or creator")
	}
	if req.Password == "" {
		errs = append(errs, "password", "is required")
	}
	if len(errs) > 0 {
		return nil, strata.Invalid(errs...)
	}
	if err := s.policy.Check(req.Password, req.Email, req.Name); err != nil {
		return nil, err
	}
	return s.createUser(ctx, req.Email, req.Name, req.Password, []strata.Role{req.Role}, false, EventSignup)
}

// CreateUser creates an account with any roles and a verified email, for
// operators (strata users create). The password policy still applies.
func (s *Service) CreateUser(ctx context.Context, email, name, plain string, roles []strata.Role) (*User, error) {
	email, name = NormalizeEmail(email), strings.TrimSpace(name)
	if name == "" {
		name = email[:max(0, strings.IndexByte(email, '@'))]
	}
	if err := validateEmail("email", email); err != nil {
		return nil, err
	}
	if err := validateName(name); err != nil {
		return nil, err
	}
	if len(roles) == 0 {
		return nil, strata.Invalid("role", "is required")
	}
	for _, r := range roles {
		if !r.Valid() {
			return nil, strata.Invalid("role", "must be buyer, creator or admin")
		}
	}
	if err := s.policy.Check(plain, email, name); err != nil {
		return nil, err
	}
	pair, err := s.createUser(ctx, email, name, plain, roles, true, EventUserCreatedByTool)
	if err != nil {
		return nil, err
	}
	return pair.User, nil
}

func (s *Service) createUser(ctx context.Context, email, name, plain string, roles []strata.Role, verified bool, event string) (*TokenPair, error) {
	hash, err := s.hasher.Hash(ctx, plain)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	u := &User{
		ID: strata.NewID(PrefixUser, strata.RandomShard(s.shards), now), Email: email, Name: name,
		Roles: roles, EmailVerified: verified, PasswordHash: hash, CreatedAt: now, UpdatedAt: now,
	}
	if err := s.claimEmail(ctx, email, u.ID, now); err != nil {
		return nil, err
	}
	var pair *TokenPair
	err = s.store.Tx(ctx, userShard(u.ID), func(tx Tx) error {
		if err := tx.InsertUser(ctx, u); err != nil {
			return err
		}
		if !verified {
			if err := s.issueOneTimeToken(ctx, tx, u, PurposeVerifyEmail, s.cfg.VerifyEmailTTL, now); err != nil {
				return err
			}
		}
		if err := s.audit(ctx, tx, u.ID, event, now, map[string]string{"roles": joinRoles(roles)}); err != nil {
			return err
		}
		if event == EventUserCreatedByTool {
			pair = &TokenPair{User: u}
			return nil
		}
		var err error
		pair, err = s.startSession(ctx, tx, u, now)
		return err
	})
	if err != nil {
		// Release the email so the address is not lost to a failed signup.
		if uerr := s.store.Tx(ctx, strata.ShardOfKey(email, s.shards), func(tx Tx) error {
			return tx.DeleteEmailIndex(ctx, email, u.ID)
		}); uerr != nil {
			s.log.ErrorContext(ctx, "release email index", "user_id", u.ID, "error", uerr)
		}
		return nil, err
	}
	s.notify()
	return pair, nil
}

// claimEmail indexes email for user on the email's shard. An index entry
// left by a signup that died before creating its user (older than a
// minute, pointing at no user) is reclaimed.
func (s *Service) claimEmail(ctx context.Context, email string, user strata.ID, now time.Time) error {
	shard := strata.ShardOfKey(email, s.shards)
	insert := func() error {
		return s.store.Tx(ctx, shard, func(tx Tx) error { return tx.InsertEmailIndex(ctx, email, user, now) })
	}
	err := insert()
	if strata.ErrorCode(err) != strata.CodeConflict {
		return err
	}
	taken := &strata.Error{Code: strata.CodeConflict, Reason: "email_taken", Message: "an account with this email already exists"}
	owner, err := s.store.LookupEmail(ctx, email)
	if err != nil {
		return taken
	}
	if _, err := s.store.UserByID(ctx, owner); strata.ErrorCode(err) != strata.CodeNotFound || now.Sub(owner.Time()) < time.Minute {
		return taken
	}
	if err := s.store.Tx(ctx, shard, func(tx Tx) error { return tx.DeleteEmailIndex(ctx, email, owner) }); err != nil {
		return err
	}
	s.log.WarnContext(ctx, "reclaimed orphaned email index entry", "orphan_user_id", owner)
	if err := insert(); err != nil {
		if strata.ErrorCode(err) == strata.CodeConflict {
			return taken
		}
		return err
	}
	return nil
}

// startSession creates a session with its first refresh token and signs an
// access token, inside tx.
func (s *Service) startSession(ctx context.Context, tx Tx, u *User, now time.Time) (*TokenPair, error) {
	c := clientFrom(ctx)
	sess := &Session{
		ID: strata.NewID(PrefixSession, userShard(u.ID), now), UserID: u.ID, CreatedAt: now,
		ExpiresAt: now.Add(s.cfg.SessionTTL), UserAgent: truncate(c.UserAgent, 256), IP: c.IP,
	}
	if err := tx.InsertSession(ctx, sess); err != nil {
		return nil, err
	}
	return s.mint(ctx, tx, u, sess, now)
}

// mint creates the next refresh token of sess and an access token.
func (s *Service) mint(ctx context.Context, tx Tx, u *User, sess *Session, now time.Time) (*TokenPair, error) {
	id := strata.NewID(PrefixRefreshToken, userShard(u.ID), now)
	raw := string(id) + "." + randomSecret()
	exp := now.Add(s.cfg.RefreshTTL)
	if exp.After(sess.ExpiresAt) {
		exp = sess.ExpiresAt
	}
	rt := &RefreshToken{ID: id, SessionID: sess.ID, UserID: u.ID, Hash: hashToken(raw), CreatedAt: now, ExpiresAt: exp}
	if err := tx.InsertRefreshToken(ctx, rt); err != nil {
		return nil, err
	}
	pair, err := s.accessToken(u, sess.ID)
	if err != nil {
		return nil, err
	}
	pair.RefreshToken = raw
	return pair, nil
}

// accessToken signs an access token for u in session sess.
func (s *Service) accessToken(u *User, sess strata.ID) (*TokenPair, error) {
	access, exp, err := s.signer.Sign(s.ring.Current(), token.Claims{UserID: u.ID, SessionID: sess, Roles: u.Roles})
	if err != nil {
		return nil, err // the signer's errors are *strata.Error already
	}
	return &TokenPair{AccessToken: access, ExpiresAt: exp, User: u}, nil
}

// profile is a user's account as GET /v1/auth/me shows it, with its JSON
// encoding, so a cached profile is served without encoding it again.
type profile struct {
	user User // without the password hash
	body []byte
}

// Me returns the caller's account, without its password hash.
func (s *Service) Me(ctx context.Context) (*User, error) {
	p, err := s.profile(ctx)
	if err != nil {
		return nil, err
	}
	u := p.user
	u.Roles = slices.Clone(u.Roles)
	return &u, nil
}

func (s *Service) profile(ctx context.Context) (*profile, error) {
	pr := strata.PrincipalFrom(ctx)
	if pr == nil {
		return nil, errUnauthenticated
	}
	var gen uint64
	if s.users != nil {
		if p, ok := s.users.GetIfPresent(pr.UserID); ok {
			return p, nil
		}
		gen = s.userGen(pr.UserID).Load()
	}
	u, err := s.store.UserByID(ctx, pr.UserID)
	if strata.ErrorCode(err) == strata.CodeNotFound {
		return nil, &strata.Error{Code: strata.CodeUnauthenticated, Reason: "user_not_found", Message: "the account of this token no longer exists"}
	}
	if err != nil {
		return nil, err
	}
	u.PasswordHash = ""
	body, err := json.Marshal(toUserJSON(u))
	if err != nil {
		return nil, strata.Internal(err)
	}
	p := &profile{user: *u, body: body}
	if s.users != nil && s.userGen(u.ID).Load() == gen {
		s.users.Set(u.ID, p)
		if s.userGen(u.ID).Load() != gen { // a change committed meanwhile
			s.users.Invalidate(u.ID)
		}
	}
	return p, nil
}

var errUnauthenticated = &strata.Error{Code: strata.CodeUnauthenticated, Reason: "token_missing", Message: "a bearer access token is required"}

// audit records an event of user (on the user's shard) inside tx.
func (s *Service) audit(ctx context.Context, tx Tx, user strata.ID, event string, now time.Time, detail map[string]string) error {
	return s.auditOn(ctx, tx, userShard(user), user, event, now, detail)
}

// auditOn records an event inside tx, which runs on logical shard shard.
func (s *Service) auditOn(ctx context.Context, tx Tx, shard int, user strata.ID, event string, now time.Time, detail map[string]string) error {
	c := clientFrom(ctx)
	return tx.InsertAudit(ctx, &AuditEvent{
		ID: strata.NewID(PrefixAudit, shard, now), UserID: user, Event: event,
		IP: c.IP, UserAgent: truncate(c.UserAgent, 256), Detail: detail, CreatedAt: now,
	})
}

// ListAudit returns audit events for admins, newest first.
func (s *Service) ListAudit(ctx context.Context, f AuditFilter) ([]AuditEvent, error) {
	if f.Limit <= 0 || f.Limit > 100 {
		return nil, strata.Invalid("limit", "must be between 1 and 100")
	}
	return s.store.ListAudit(ctx, f)
}

func userShard(id strata.ID) int {
	s, _ := id.Shard()
	return s
}

func randomSecret() string {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("crypto/rand: " + err.Error())
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func hashToken(raw string) string {
	sum := sha256.Sum256([]byte(raw))
	return hex.EncodeToString(sum[:])
}

func hashEqual(a, b string) bool { return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1 }

// splitToken parses "<id>.<secret>" with the given id prefix.
func splitToken(raw, prefix string) (strata.ID, bool) {
	i := strings.IndexByte(raw, '.')
	if i < 0 || len(raw)-i-1 != 43 {
		return "", false
	}
	id, err := strata.ParseID(raw[:i], prefix)
	return id, err == nil
}

func joinRoles(rs []strata.Role) string {
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = string(r)
	}
	return strings.Join(s, ",")
}

// truncate makes client-supplied text safe to store: valid UTF-8 without
// control characters, at most n bytes, cut at a character boundary.
func truncate(s string, n int) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, strings.ToValidUTF8(s, ""))
	for len(s) > n {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}
