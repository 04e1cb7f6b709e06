package queue

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stratadev/strata/internal/resilience"
)

// DefaultDuplicates is the de-duplication window of a stream whose config
// leaves it unset.
const DefaultDuplicates = 10 * time.Minute

// closeTimeout bounds how long Close waits for the connection to drain.
const closeTimeout = 30 * time.Second

// Client is a connection to NATS with its JetStream context. It is safe for
// concurrent use.
type Client struct {
	nc     *nats.Conn
	js     jetstream.JetStream
	closed chan struct{}

	// Metrics, when set before first use, counts publishes.
	Metrics *Metrics
	// Guard, when set before first use, runs publishes through the NATS
	// resilience policies: a timeout, retries of de-duplicated publishes
	// (their replays are dropped by the server), a breaker, a bulkhead.
	Guard *resilience.Guard
}

// Connect dials the NATS server at url (a comma-separated list for a
// cluster). opts are passed to nats.Connect after Strata's defaults.
func Connect(url string, opts ...nats.Option) (*Client, error) {
	defaults := []nats.Option{
		nats.Name("strata"),
		nats.MaxReconnects(-1), // a queue outage is waited out, not fatal
	}
	nc, err := nats.Connect(url, append(defaults, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to nats %s: %w", url, err)
	}
	return newClient(nc)
}

// ConnectInProcess connects to an embedded server without a socket.
func ConnectInProcess(srv *server.Server) (*Client, error) {
	return Connect(srv.ClientURL(), nats.InProcessServer(srv))
}

func newClient(nc *nats.Conn) (*Client, error) {
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	c := &Client{nc: nc, js: js, closed: make(chan struct{})}
	prev := nc.Opts.ClosedCB
	nc.SetClosedHandler(func(nc *nats.Conn) {
		close(c.closed)
		if prev != nil {
			prev(nc)
		}
	})
	return c, nil
}

// Conn returns the underlying NATS connection.
func (c *Client) Conn() *nats.Conn { return c.nc }

// JetStream returns the JetStream context, for inspection and operations
// this package does not wrap (reading the dead-letter stream, say).
func (c *Client) JetStream() jetstream.JetStream { return c.js }

// Close drains the connection: subscriptions stop, buffered publishes are
// flushed, then the connection closes. Stop consumers first.
func (c *Client) Close() {
	if err := c.nc.Drain(); err != nil {
		c.nc.Close()
		return
	}
	select {
	case <-c.closed:
	case <-time.After(closeTimeout):
		c.nc.Close()
	}
}

// Ping round-trips to JetStream, for readiness probes: it fails when the
// server is unreachable or JetStream is not answering.
func (c *Client) Ping(ctx context.Context) error {
	if _, err := c.js.AccountInfo(ctx); err != nil {
		return fmt.Errorf("ping jetstream: %w", err)
	}
	return nil
}

// StreamConfig describes a stream. Streams always use file storage.
type StreamConfig struct {
	Name     string
	Subjects []string
	// MaxAge is how long messages are kept; 0 keeps them until removed by
	// other limits (none are set: forever).
	MaxAge time.Duration
	// Duplicates is the de-duplication window: a publish carrying a message
	// id seen within it is acknowledged and dropped. Default
	// DefaultDuplicates, or MaxAge when that is shorter. It must exceed the
	// outbox relay's worst-case restart time (see Relay).
	Duplicates time.Duration
	// Replicas is the number of copies in a cluster; default 1.
	Replicas int
}

// EnsureStream creates the stream, or updates it to cfg when it exists.
func (c *Client) EnsureStream(ctx context.Context, cfg StreamConfig) error {
	if cfg.Name == "" || len(cfg.Subjects) == 0 {
		return errors.New("ensure stream: name and subjects are required")
	}
	if cfg.Duplicates <= 0 {
		cfg.Duplicates = DefaultDuplicates
		if cfg.MaxAge > 0 && cfg.MaxAge < cfg.Duplicates {
			cfg.Duplicates = cfg.MaxAge
		}
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	_, err := c.js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:       cfg.Name,
		Subjects:   cfg.Subjects,
		Storage:    jetstream.FileStorage,
		MaxAge:     cfg.MaxAge,
		Duplicates: cfg.Duplicates,
		Replicas:   cfg.Replicas,
	})
	if err != nil {
		return fmt.Errorf("ensure stream %s: %w", cfg.Name, err)
	}
	return nil
}

// Publish stores data on subject and waits for the server's acknowledgement.
// msgID becomes the Nats-Msg-Id header: a second publish with the same id
// inside the stream's Duplicates window is acknowledged but dropped, so a
// replayed publish is harmless. An empty msgID disables de-duplication.
// The error is non-nil only when the server did not acknowledge the message.
func (c *Client) Publish(ctx context.Context, subject, msgID string, data []byte) error {
	return c.publishMsg(ctx, &nats.Msg{Subject: subject, Data: data, Header: nats.Header{}}, msgID)
}

func (c *Client) publishMsg(ctx context.Context, m *nats.Msg, msgID string) error {
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	kind := resilience.Once
	if msgID != "" {
		kind = resilience.Idempotent
	}
	var ack *jetstream.PubAck
	err := c.Guard.Do(ctx, kind, func(ctx context.Context) (err error) {
		ack, err = c.js.PublishMsg(ctx, m, opts...)
		return err
	})
	if err != nil {
		c.Metrics.published("unknown", "error")
		return fmt.Errorf("publish %s: %w", m.Subject, err)
	}
	result := "ok"
	if ack.Duplicate {
		result = "duplicate"
	}
	c.Metrics.published(ack.Stream, result)
	return nil
}
