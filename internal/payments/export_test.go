package payments

import (
	"context"

	"github.com/stratadev/strata"
)

// TopUpForTest credits user's wallet with m as a top-up of intent would.
func (s *Service) TopUpForTest(ctx context.Context, user, intent strata.ID, m strata.Money) error {
	shard, err := shardOf(user)
	if err != nil {
		return err
	}
	return s.store.Tx(ctx, shard, func(tx Tx) error {
		_, err := creditTopUp(ctx, tx, user, intent, m, s.clock.Now())
		return err
	})
}

// Fee exposes the fee rule.
func Fee(amount int64, bps int) int64 { return fee(amount, bps) }
