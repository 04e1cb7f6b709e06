package cache

import (
	"fmt"

	"github.com/nats-io/nats.go"
)

// Subscribe calls fn with every event published on subject (a NATS
// wildcard allowed) until the subscription is drained. It is a core NATS
// subscription: every instance receives every event, unlike the
// JetStream consumers, where one worker handles each — which is what
// invalidation needs. Events are published by the outbox relay after
// their transaction committed, so a value loaded after the event is
// current.
func Subscribe(nc *nats.Conn, subject string, fn func(subject string, data []byte)) (*nats.Subscription, error) {
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) { fn(m.Subject, m.Data) })
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s for cache invalidation: %w", subject, err)
	}
	// Invalidations must not be dropped for a slow handler: allow a deep
	// backlog (the default pending limits drop messages past 64 MiB).
	_ = sub.SetPendingLimits(-1, -1)
	return sub, nil
}
