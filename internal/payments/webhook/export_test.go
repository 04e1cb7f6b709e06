package webhook

import (
	"context"
	"net/netip"
	"time"

	"github.com/stratadev/strata"
)

// ClaimForTest takes the lease of a due delivery as a sender would before
// sending, and returns without sending or recording: a sender killed
// mid-delivery.
func (s *Service) ClaimForTest(ctx context.Context, id strata.ID) (bool, error) {
	now := s.clock.Now()
	return s.store.claim(ctx, id, newLeaseToken(), now, now.Add(s.lease()))
}

// SetRandForTest replaces the jitter's source of randomness.
func (s *Service) SetRandForTest(randN func(int64) int64) { s.randN = randN }

// Lease is how long a claim holds a delivery.
func (s *Service) Lease() time.Duration { return s.lease() }

// RetryCeiling exposes the back-off's ceiling after failure n.
func RetryCeiling(n int) time.Duration { return retryCeiling(n) }

// Forbidden reports why an address is refused, "" when it is not.
func Forbidden(a netip.Addr) string { return forbidden(a) }

// CheckURL exposes the URL validation.
func CheckURL(raw string, allowPrivate bool) (string, error) { return checkURL(raw, allowPrivate) }
