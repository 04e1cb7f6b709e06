package queue

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/storage/sqldb"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrations returns the outbox's goose migrations, for tools that migrate
// databases themselves.
func Migrations() fs.FS { return sqldb.MigrationsDir(migrationFiles) }

// MigrateOutbox creates or upgrades the outbox_events table on every
// physical database of r (goose version table goose_outbox).
func MigrateOutbox(ctx context.Context, r *sqldb.Router) error {
	return sqldb.MigrateAll(ctx, r, "outbox", Migrations())
}

// Event is a fact a module publishes after a state change.
type Event struct {
	// Subject is where it is published, such as "payments.purchase.completed".
	Subject string
	// Payload is the JSON document the module built.
	Payload []byte
}

// WriteOutbox records ev in the outbox and returns its id, which becomes
// the message's Nats-Msg-Id. Call it with the *sql.Tx of the state change
// the event reports, on the database of that change's shard: the event is
// then published if and only if the transaction commits. Call the relay's
// Notify after the commit to publish it at once.
func WriteOutbox(ctx context.Context, q sqldb.Querier, shard int, ev Event, now time.Time) (strata.ID, error) {
	if ev.Subject == "" {
		return "", errors.New("write outbox: subject is required")
	}
	if !json.Valid(ev.Payload) {
		return "", fmt.Errorf("write outbox %s: payload is not valid JSON", ev.Subject)
	}
	id := strata.NewID("evt", shard, now)
	_, err := q.ExecContext(ctx,
		"INSERT INTO outbox_events (id, subject, payload, created_at) VALUES ($1, $2, $3, $4)",
		string(id), ev.Subject, string(ev.Payload), now.UnixMilli())
	if err != nil {
		return "", sqldb.Translate(fmt.Errorf("write outbox %s: %w", ev.Subject, err))
	}
	return id, nil
}

// Publisher publishes one message with a de-duplication id. *Client
// satisfies it.
type Publisher interface {
	Publish(ctx context.Context, subject, msgID string, data []byte) error
}

var _ Publisher = (*Client)(nil)
