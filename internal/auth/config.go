package auth

import (
	"fmt"
	"net/url"
	"time"

	"github.com/spf13/pflag"
)

// Config holds the auth module's settings. Defaults are set by
// RegisterFlags; Validate names the setting at fault.
type Config struct {
	Issuer            string
	Audience          string
	AccessTTL         time.Duration
	RefreshTTL        time.Duration
	SessionTTL        time.Duration
	RefreshReuseGrace time.Duration
	KeyRotation       time.Duration
	KeyPublishAhead   time.Duration
	KeyRefresh        time.Duration
	VerifyEmailTTL    time.Duration
	PasswordResetTTL  time.Duration
	PublicURL         string
	TokenCacheSize    int
	UserCacheTTL      time.Duration

	Argon2Memory  uint32 // KiB
	Argon2Time    uint32
	Argon2Threads uint8
	PasswordMin   int

	ThrottleWindow          time.Duration
	ThrottleAccountFailures int
	ThrottleIPFailures      int
	ThrottleLockout         time.Duration
	ThrottleLockoutMax      time.Duration
	MailInterval            time.Duration
}

// RegisterFlags registers every setting with its default on fs.
func (c *Config) RegisterFlags(fs *pflag.FlagSet) {
	fs.StringVar(&c.Issuer, "auth-issuer", "strata", "the iss claim of access tokens")
	fs.StringVar(&c.Audience, "auth-audience", "strata-api", "the aud claim of access tokens")
	fs.DurationVar(&c.AccessTTL, "auth-access-ttl", 15*time.Minute, "lifetime of access tokens")
	fs.DurationVar(&c.RefreshTTL, "auth-refresh-ttl", 30*24*time.Hour, "lifetime of an unused refresh token")
	fs.DurationVar(&c.SessionTTL, "auth-session-ttl", 90*24*time.Hour, "absolute lifetime of a login session; refreshing never extends it")
	fs.DurationVar(&c.RefreshReuseGrace, "auth-refresh-reuse-grace", 10*time.Second, "a rotated refresh token presented again within this window gets the same successor back instead of revoking the session (concurrent refreshes from one client)")
	fs.DurationVar(&c.KeyRotation, "auth-key-rotation", 24*time.Hour, "how long one signing key signs before the next takes over")
	fs.DurationVar(&c.KeyPublishAhead, "auth-key-publish-ahead", time.Hour, "how long before it signs a new key is published in the JWKS")
	fs.DurationVar(&c.KeyRefresh, "auth-key-refresh", time.Minute, "how often each instance reloads the signing keys")
	fs.DurationVar(&c.VerifyEmailTTL, "auth-verify-email-ttl", 24*time.Hour, "lifetime of an email verification token")
	fs.DurationVar(&c.PasswordResetTTL, "auth-password-reset-ttl", time.Hour, "lifetime of a password reset token")
	fs.StringVar(&c.PublicURL, "public-url", "http://localhost:8080", "the address users reach Strata at, used in mailed links")
	fs.IntVar(&c.TokenCacheSize, "auth-token-cache", 10000, "verified access tokens kept in memory per instance (0 disables)")
	fs.DurationVar(&c.UserCacheTTL, "auth-user-cache-ttl", 5*time.Second, "how long an instance serves a user's profile (GET /v1/auth/me) from memory; another instance's change shows after at most this long (0 disables)")
	fs.Uint32Var(&c.Argon2Memory, "argon2-memory", 19*1024, "argon2id memory per hash in KiB (OWASP minimum 19456)")
	fs.Uint32Var(&c.Argon2Time, "argon2-time", 2, "argon2id iterations (OWASP minimum 2 at 19 MiB)")
	fs.Uint8Var(&c.Argon2Threads, "argon2-threads", 1, "argon2id parallelism")
	fs.IntVar(&c.PasswordMin, "password-min-length", 10, "minimum password length in characters")
	fs.DurationVar(&c.ThrottleWindow, "login-throttle-window", 15*time.Minute, "window in which failed logins are counted")
	fs.IntVar(&c.ThrottleAccountFailures, "login-throttle-account", 5, "failed logins per account within the window before the account is locked")
	fs.IntVar(&c.ThrottleIPFailures, "login-throttle-ip", 50, "failed logins per client address within the window before the address is locked")
	fs.DurationVar(&c.ThrottleLockout, "login-throttle-lockout", time.Minute, "first lockout; each further failure doubles it")
	fs.DurationVar(&c.ThrottleLockoutMax, "login-throttle-lockout-max", 15*time.Minute, "longest lockout")
	fs.DurationVar(&c.MailInterval, "auth-mail-interval", time.Minute, "at most one password-reset mail per address in this interval")
}

// Validate checks the settings.
func (c *Config) Validate() error {
	positive := []struct {
		name string
		v    time.Duration
	}{
		{"auth-access-ttl", c.AccessTTL}, {"auth-refresh-ttl", c.RefreshTTL}, {"auth-session-ttl", c.SessionTTL},
		{"auth-key-rotation", c.KeyRotation}, {"auth-key-refresh", c.KeyRefresh},
		{"auth-verify-email-ttl", c.VerifyEmailTTL}, {"auth-password-reset-ttl", c.PasswordResetTTL},
		{"login-throttle-window", c.ThrottleWindow}, {"login-throttle-lockout", c.ThrottleLockout},
	}
	for _, p := range positive {
		if p.v <= 0 {
			return fmt.Errorf("%s: must be positive, got %s", p.name, p.v)
		}
	}
	switch {
	case c.Issuer == "":
		return fmt.Errorf("auth-issuer: must not be empty")
	case c.Audience == "":
		return fmt.Errorf("auth-audience: must not be empty")
	case c.AccessTTL > 24*time.Hour:
		return fmt.Errorf("auth-access-ttl: at most 24h, got %s (access tokens cannot be revoked)", c.AccessTTL)
	case c.KeyRotation < c.AccessTTL:
		return fmt.Errorf("auth-key-rotation: must be at least auth-access-ttl (%s), got %s", c.AccessTTL, c.KeyRotation)
	case c.KeyPublishAhead < c.KeyRefresh:
		return fmt.Errorf("auth-key-publish-ahead: must be at least auth-key-refresh (%s) so every instance sees a key before it signs, got %s", c.KeyRefresh, c.KeyPublishAhead)
	case c.KeyPublishAhead >= c.KeyRotation:
		return fmt.Errorf("auth-key-publish-ahead: must be shorter than auth-key-rotation")
	case c.RefreshReuseGrace < 0 || c.RefreshReuseGrace > time.Minute:
		return fmt.Errorf("auth-refresh-reuse-grace: must be between 0 and 1m, got %s", c.RefreshReuseGrace)
	case c.TokenCacheSize < 0:
		return fmt.Errorf("auth-token-cache: must not be negative")
	case c.UserCacheTTL < 0 || c.UserCacheTTL > time.Minute:
		return fmt.Errorf("auth-user-cache-ttl: must be between 0 and 1m, got %s", c.UserCacheTTL)
	case c.PasswordMin < 8:
		return fmt.Errorf("password-min-length: must be at least 8, got %d", c.PasswordMin)
	case c.ThrottleAccountFailures < 1:
		return fmt.Errorf("login-throttle-account: must be at least 1")
	case c.ThrottleIPFailures < 1:
		return fmt.Errorf("login-throttle-ip: must be at least 1")
	case c.ThrottleLockoutMax < c.ThrottleLockout:
		return fmt.Errorf("login-throttle-lockout-max: must be at least login-throttle-lockout")
	}
	u, err := url.Parse(c.PublicURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("public-url: must be an absolute http(s) URL, got %q", c.PublicURL)
	}
	return nil
}
