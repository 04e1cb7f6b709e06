package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// Subjects of the NATS announcements (core NATS, not JetStream).
const (
	SubjectHeartbeat = "strata.discovery.heartbeat" // JSON Instance, every interval
	SubjectLeave     = "strata.discovery.leave"     // JSON Instance, once, on a clean stop
	SubjectQuery     = "strata.discovery.query"     // a watcher asks; every announcer answers with a heartbeat at once
)

// defaultInterval is the heartbeat period of an Announcer without one.
const defaultInterval = time.Second

// leaveFlushTimeout bounds the wait for the server to take the leave
// message: a stopping process must not hang on a NATS outage.
const leaveFlushTimeout = time.Second

// Announcer publishes this instance on NATS until ctx ends, then says it leaves.
type Announcer struct {
	Conn     *nats.Conn
	Instance Instance
	Interval time.Duration // heartbeat period; 0 means 1s
	Logger   *slog.Logger
}

// Run heartbeats at once and then every Interval, answers queries, and on
// ctx's end publishes a leave message and flushes it (with a short timeout)
// before returning nil. Publish errors are logged, not fatal (NATS reconnects).
//
// Run returns an error at once, announcing nothing, when Conn is nil or
// closed, or Instance.URL is not an absolute http or https URL without a
// trailing slash (watchers would drop it). Every message is published from
// Run's own goroutine, so the leave is the last: no answer to a late query
// can follow it and make watchers keep the instance until their TTL.
func (a *Announcer) Run(ctx context.Context) error {
	if a.Conn == nil {
		return errors.New("discovery announcer: no nats connection")
	}
	if err := checkURL(a.Instance.URL); err != nil {
		return fmt.Errorf("discovery announcer: %w", err)
	}
	data, err := json.Marshal(Instance{URL: a.Instance.URL, Roles: normalizeRoles(a.Instance.Roles)})
	if err != nil {
		return fmt.Errorf("discovery announcer: encode instance: %w", err)
	}
	interval := a.Interval
	if interval <= 0 {
		interval = defaultInterval
	}
	logger := a.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("url", a.Instance.URL)
	if ctx.Err() != nil {
		return nil
	}

	// Queries arriving while one is pending are answered by the same
	// heartbeat.
	queried := make(chan struct{}, 1)
	sub, err := a.Conn.Subscribe(SubjectQuery, func(*nats.Msg) {
		select {
		case queried <- struct{}{}:
		default:
		}
	})
	if err != nil {
		return fmt.Errorf("discovery announcer: subscribe %s: %w", SubjectQuery, err)
	}

	p := publisher{conn: a.Conn, logger: logger}
	p.publish(SubjectHeartbeat, data)
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			p.publish(SubjectHeartbeat, data)
		case <-queried:
			p.publish(SubjectHeartbeat, data)
		case <-ctx.Done():
			if err := sub.Unsubscribe(); err != nil {
				logger.Debug("discovery unsubscribe", "subject", SubjectQuery, "error", err)
			}
			p.publish(SubjectLeave, data)
			if err := a.Conn.FlushTimeout(leaveFlushTimeout); err != nil {
				logger.Warn("discovery flush leave", "error", err)
			}
			return nil
		}
	}
}

// publisher publishes announcements, logging the first failure of a run
// of them at warn and the rest at debug, so that an outage of NATS shows
// once in the log rather than on every heartbeat.
type publisher struct {
	conn    *nats.Conn
	logger  *slog.Logger
	failing bool
}

func (p *publisher) publish(subject string, data []byte) {
	err := p.conn.Publish(subject, data)
	switch {
	case err != nil && !p.failing:
		p.failing = true
		p.logger.Warn("discovery publish", "subject", subject, "error", err)
	case err != nil:
		p.logger.Debug("discovery publish", "subject", subject, "error", err)
	case p.failing:
		p.failing = false
		p.logger.Info("discovery publish recovered", "subject", subject)
	}
}
