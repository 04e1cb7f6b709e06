package discovery

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
)

// defaultTTL is how long a Watcher without a TTL keeps an instance it no
// longer hears from.
const defaultTTL = 3 * time.Second

// gatherWait is how long a Watcher collects answers to its query before
// its first update.
const gatherWait = 100 * time.Millisecond

// subjectAnnouncements matches every discovery subject. A Watcher takes
// heartbeats and leaves through this one subscription, because NATS keeps
// a publisher's order only within a subscription: with one per subject, an
// announcer's last heartbeat could be handled after its leave and bring
// the instance back until the TTL.
const subjectAnnouncements = "strata.discovery.*"

// Watcher is a Source over NATS announcements.
type Watcher struct {
	Conn   *nats.Conn
	TTL    time.Duration // an instance not heard from for TTL is dropped; 0 means 3s
	Roles  []string      // keep only instances serving at least one of these; empty keeps all
	Logger *slog.Logger
}

var _ Source = (*Watcher)(nil)

// Run subscribes to heartbeats and leaves, publishes a query so it learns the
// current set within a round trip, reports the set on every change (join, leave,
// expiry — check expiry at least every TTL/4), and unsubscribes when ctx ends.
// It may wait up to ~100 ms after the query before the first update so that
// answers are gathered into one update; if nothing answers, the first update
// is an empty set.
//
// An instance is dropped between TTL and 1.25 TTL after its last
// heartbeat; TTL should cover several of the announcers' Interval, so that
// one lost heartbeat does not drop a live instance. Run returns an error at
// once when Conn is nil or closed.
func (w *Watcher) Run(ctx context.Context, update func([]Instance)) error {
	if w.Conn == nil {
		return errors.New("discovery watcher: no nats connection")
	}
	ttl := w.TTL
	if ttl <= 0 {
		ttl = defaultTTL
	}
	logger := w.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}

	// The subscription's goroutine decodes; this one keeps the set, so
	// update is called from here only.
	events := make(chan announcement)
	sub, err := w.Conn.Subscribe(subjectAnnouncements, func(m *nats.Msg) {
		var leave bool
		switch m.Subject {
		case SubjectHeartbeat:
		case SubjectLeave:
			leave = true
		default: // another watcher's query
			return
		}
		inst, err := decodeInstance(m.Data)
		if err != nil {
			logger.Debug("discovery malformed announcement", "subject", m.Subject, "error", err)
			return
		}
		select {
		case events <- announcement{inst: inst, leave: leave}:
		case <-ctx.Done():
		}
	})
	if err != nil {
		return fmt.Errorf("discovery watcher: subscribe %s: %w", subjectAnnouncements, err)
	}
	defer func() {
		if err := sub.Unsubscribe(); err != nil {
			logger.Debug("discovery unsubscribe", "subject", subjectAnnouncements, "error", err)
		}
	}()
	// The query follows the subscription on the same connection, so the
	// server knows of the subscription before any answer comes.
	if err := w.Conn.Publish(SubjectQuery, nil); err != nil {
		// Heartbeats still come, just not at once.
		logger.Warn("discovery publish", "subject", SubjectQuery, "error", err)
	}

	set := &watchSet{roles: slices.Clone(w.Roles), ttl: ttl, known: map[string]watched{}, logger: logger}
	gather := time.NewTimer(gatherWait)
	defer gather.Stop()
	gathering := true
	expiry := time.NewTicker(max(ttl/4, time.Millisecond))
	defer expiry.Stop()
	// While NATS is unreachable no heartbeat can arrive, whatever the
	// instances' health: nothing expires then, nor for a TTL after the
	// connection is back (time for a heartbeat), so that a NATS outage
	// does not empty the pools of healthy instances.
	var quietUntil time.Time
	for {
		var changed bool
		select {
		case <-ctx.Done():
			return nil
		case a := <-events:
			changed = set.apply(a, time.Now())
		case <-expiry.C:
			now := time.Now()
			if !w.Conn.IsConnected() {
				quietUntil = now.Add(ttl)
			} else if now.After(quietUntil) {
				changed = set.expire(now)
			}
		case <-gather.C:
			gathering = false
			changed = true
		}
		if changed && !gathering {
			update(set.snapshot())
		}
	}
}

// announcement is a decoded heartbeat or leave.
type announcement struct {
	inst  Instance
	leave bool
}

type watched struct {
	inst Instance
	seen time.Time
}

// watchSet is the set of instances a Watcher knows, by URL.
type watchSet struct {
	roles  []string
	ttl    time.Duration
	known  map[string]watched
	logger *slog.Logger
}

// apply records an announcement and reports whether the set changed.
func (s *watchSet) apply(a announcement, now time.Time) bool {
	old, ok := s.known[a.inst.URL]
	if a.leave || !servesAny(a.inst, s.roles) {
		if !ok {
			return false
		}
		delete(s.known, a.inst.URL)
		if a.leave {
			s.logger.Info("discovery instance left", "url", a.inst.URL)
		} else {
			s.logger.Info("discovery instance dropped its roles", "url", a.inst.URL, "roles", a.inst.Roles)
		}
		return true
	}
	s.known[a.inst.URL] = watched{inst: a.inst, seen: now}
	switch {
	case !ok:
		s.logger.Info("discovery instance joined", "url", a.inst.URL, "roles", a.inst.Roles)
		return true
	case !slices.Equal(old.inst.Roles, a.inst.Roles):
		s.logger.Info("discovery instance changed roles", "url", a.inst.URL, "roles", a.inst.Roles)
		return true
	}
	return false
}

// expire drops the instances not heard from for the TTL and reports
// whether there were any.
func (s *watchSet) expire(now time.Time) bool {
	var changed bool
	for u, w := range s.known {
		if now.Sub(w.seen) >= s.ttl {
			delete(s.known, u)
			s.logger.Warn("discovery instance expired", "url", u, "silent_for", now.Sub(w.seen))
			changed = true
		}
	}
	return changed
}

func (s *watchSet) snapshot() []Instance {
	out := make([]Instance, 0, len(s.known))
	for _, w := range s.known {
		out = append(out, Instance{URL: w.inst.URL, Roles: slices.Clone(w.inst.Roles)})
	}
	sortSet(out)
	return out
}
