package auth

import (
	"context"
	"fmt"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/auth/token"
)

// Signing-key lifecycle. Key n signs during [NotBefore, RetireAt), a window
// of auth-key-rotation. Key n+1 is created auth-key-publish-ahead before
// key n retires, with NotBefore = key n's RetireAt, so every instance has
// it in its ring (refreshed every auth-key-refresh) before any token it
// signs appears. A key stays in the JWKS until ExpiresAt = RetireAt +
// access-token lifetime + leeway, when no token it signed can still be
// valid. Keys are stored on logical shard 0 with the private half sealed
// by the master key (AES-256-GCM, the kid as additional data).
//
// Any instance may rotate: the unique generation column makes exactly one
// of several racing instances win; the others reload and use its key.

const keyLeeway = time.Minute

// KeysShard is the logical shard holding the signing keys.
const KeysShard = 0

// Start makes sure a key can sign now and the next is published on time,
// and loads the key ring.
func (s *Service) Start(ctx context.Context) error {
	if err := s.RotateKeys(ctx); err != nil {
		return err
	}
	return s.ring.Refresh(ctx)
}

// purgeEvery is how often an instance deletes expired sessions, tokens
// and idle throttle rows; revokedKept is how long a revoked session is
// kept, so its tokens answer "revoked" rather than "invalid".
const (
	purgeEvery  = 10 * time.Minute
	revokedKept = 30 * 24 * time.Hour
)

// Run does the module's periodic work until ctx ends: it rotates keys when
// due and reloads the key ring every auth-key-refresh (a failed reload
// keeps the keys it has), and purges what has expired every purgeEvery.
func (s *Service) Run(ctx context.Context) {
	keys := time.NewTicker(s.cfg.KeyRefresh)
	defer keys.Stop()
	purge := time.NewTicker(purgeEvery)
	defer purge.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-keys.C:
			if err := s.RotateKeys(ctx); err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "rotate signing keys", "error", err)
			}
			if err := s.ring.Refresh(ctx); err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "reload signing keys", "error", err)
			}
		case <-purge.C:
			if _, err := s.Purge(ctx); err != nil && ctx.Err() == nil {
				s.log.ErrorContext(ctx, "purge expired auth data", "error", err)
			}
		}
	}
}

// Purge deletes expired sessions and tokens and idle throttle rows, and
// reports how many rows went.
func (s *Service) Purge(ctx context.Context) (int64, error) {
	now := s.clock.Now()
	idle := now.Add(-max(s.cfg.ThrottleWindow, s.cfg.MailInterval))
	return s.store.Purge(ctx, now, idle, now.Add(-revokedKept))
}

// RotateKeys creates the next signing key when the newest one retires
// within auth-key-publish-ahead, or when no key can sign now.
func (s *Service) RotateKeys(ctx context.Context) error {
	keys, err := s.store.SigningKeys(ctx)
	if err != nil {
		return err
	}
	now := s.clock.Now()
	var gen int64
	notBefore := now
	if len(keys) > 0 {
		newest := keys[0]
		gen = newest.Generation
		if newest.RetireAt.Sub(now) > s.cfg.KeyPublishAhead {
			return nil
		}
		if newest.RetireAt.After(now) {
			notBefore = newest.RetireAt
		}
	}
	k, err := token.GenerateKey(string(strata.NewID("key", KeysShard, now)), notBefore, s.cfg.KeyRotation, s.cfg.AccessTTL+keyLeeway)
	if err != nil {
		return fmt.Errorf("generate signing key: %w", err)
	}
	sealed, err := s.sealer.Seal(k.Private, []byte(k.ID))
	if err != nil {
		return fmt.Errorf("seal signing key: %w", err)
	}
	stored := &StoredKey{
		ID: k.ID, Generation: gen + 1, Public: k.Public, Sealed: sealed,
		NotBefore: k.NotBefore, RetireAt: k.RetireAt, ExpiresAt: k.ExpiresAt, CreatedAt: now,
	}
	err = s.store.Tx(ctx, KeysShard, func(tx Tx) error { return tx.InsertSigningKey(ctx, stored) })
	if strata.ErrorCode(err) == strata.CodeConflict {
		return nil // another instance rotated first
	}
	if err != nil {
		return err
	}
	s.log.InfoContext(ctx, "created signing key", "kid", k.ID, "generation", gen+1, "not_before", k.NotBefore, "retire_at", k.RetireAt)
	return s.ring.Refresh(ctx)
}

// loadKeys reads the keys that can still verify a token and unseals them;
// it is the key ring's loader.
func (s *Service) loadKeys(ctx context.Context) ([]token.Key, error) {
	stored, err := s.store.SigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	now := s.clock.Now()
	var keys []token.Key
	for _, sk := range stored {
		if !now.Before(sk.ExpiresAt) {
			continue
		}
		priv, err := s.sealer.Open(sk.Sealed, []byte(sk.ID))
		if err != nil {
			return nil, fmt.Errorf("unseal signing key %s (is the master key right?): %w", sk.ID, err)
		}
		keys = append(keys, token.Key{
			ID: sk.ID, Private: priv, Public: sk.Public,
			NotBefore: sk.NotBefore, RetireAt: sk.RetireAt, ExpiresAt: sk.ExpiresAt,
		})
	}
	return keys, nil
}
