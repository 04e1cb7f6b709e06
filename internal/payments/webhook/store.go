package webhook

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/storage/sqldb"
)

// store reads and writes the webhook tables on the database of HomeShard,
// in portable SQL. The tables come with payments' migrations
// (internal/payments/paymentssql/migrations/00003_webhooks.sql).
type store struct {
	db *sqldb.DB
}

// endpointRow is an endpoint as stored: Secret and PreviousSecret in their
// stored form (sealed, or plain).
type endpointRow struct {
	Endpoint
	PreviousSecret string
}

// public returns the endpoint without secrets.
func (r *endpointRow) public() Endpoint {
	e := r.Endpoint
	e.Secret = ""
	e.Events = slices.Clone(r.Events)
	if r.PreviousSecret == "" {
		e.PreviousExpiresAt = time.Time{}
	}
	return e
}

const endpointColumns = "id, url, events, secret, previous_secret, previous_expires_at, enabled, created_at, updated_at"

func scanEndpoint(row interface{ Scan(...any) error }) (*endpointRow, error) {
	var r endpointRow
	var events string
	var prevExp, created, updated int64
	if err := row.Scan(&r.ID, &r.URL, &events, &r.Secret, &r.PreviousSecret, &prevExp, &r.Enabled, &created, &updated); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(events), &r.Events); err != nil {
		return nil, fmt.Errorf("decode events of endpoint %s: %w", r.ID, err)
	}
	r.PreviousExpiresAt, r.CreatedAt, r.UpdatedAt = sqldb.FromMillis(prevExp), sqldb.FromMillis(created), sqldb.FromMillis(updated)
	return &r, nil
}

func encodeEvents(events []string) string {
	b, _ := json.Marshal(events) // a []string always encodes
	return string(b)
}

// insertEndpoint adds r unless there are max endpoints already.
func (st *store) insertEndpoint(ctx context.Context, r *endpointRow, max int) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM payments_webhook_endpoints").Scan(&n); err != nil {
			return fmt.Errorf("count endpoints: %w", sqldb.Translate(err))
		}
		if n >= max {
			return errTooManyEndpoints
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO payments_webhook_endpoints ("+endpointColumns+
			") VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
			r.ID, r.URL, encodeEvents(r.Events), r.Secret, r.PreviousSecret, sqldb.Millis(r.PreviousExpiresAt), r.Enabled,
			sqldb.Millis(r.CreatedAt), sqldb.Millis(r.UpdatedAt))
		if err != nil {
			return fmt.Errorf("insert endpoint: %w", sqldb.Translate(err))
		}
		return nil
	})
}

// endpoint reads one endpoint from the primary.
func (st *store) endpoint(ctx context.Context, id strata.ID) (*endpointRow, error) {
	r, err := scanEndpoint(st.db.Primary().QueryRowContext(ctx,
		"SELECT "+endpointColumns+" FROM payments_webhook_endpoints WHERE id = $1", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errEndpointNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read endpoint %s: %w", id, sqldb.Translate(err))
	}
	return r, nil
}

// endpoints reads every endpoint (only the enabled ones when
// enabledOnly), oldest first, from the primary.
func (st *store) endpoints(ctx context.Context, enabledOnly bool) ([]endpointRow, error) {
	q := "SELECT " + endpointColumns + " FROM payments_webhook_endpoints"
	if enabledOnly {
		q += " WHERE enabled"
	}
	rows, err := st.db.Primary().QueryContext(ctx, q+" ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("read endpoints: %w", sqldb.Translate(err))
	}
	defer rows.Close()
	out := []endpointRow{}
	for rows.Next() {
		r, err := scanEndpoint(rows)
		if err != nil {
			return nil, fmt.Errorf("read endpoints: %w", sqldb.Translate(err))
		}
		out = append(out, *r)
	}
	return out, sqldb.Translate(rows.Err())
}

// updateEndpoint reads endpoint id locked, lets change modify it and
// writes it back.
func (st *store) updateEndpoint(ctx context.Context, id strata.ID, change func(*endpointRow) error) (*endpointRow, error) {
	var r *endpointRow
	err := st.db.Tx(ctx, func(tx *sql.Tx) error {
		var err error
		r, err = scanEndpoint(tx.QueryRowContext(ctx,
			"SELECT "+endpointColumns+" FROM payments_webhook_endpoints WHERE id = $1"+st.db.ForUpdate(), id))
		if errors.Is(err, sql.ErrNoRows) {
			return errEndpointNotFound
		}
		if err != nil {
			return fmt.Errorf("read endpoint %s: %w", id, sqldb.Translate(err))
		}
		if err := change(r); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE payments_webhook_endpoints SET url = $1, events = $2, secret = $3,
			previous_secret = $4, previous_expires_at = $5, enabled = $6, updated_at = $7 WHERE id = $8`,
			r.URL, encodeEvents(r.Events), r.Secret, r.PreviousSecret, sqldb.Millis(r.PreviousExpiresAt), r.Enabled,
			sqldb.Millis(r.UpdatedAt), id)
		if err != nil {
			return fmt.Errorf("update endpoint %s: %w", id, sqldb.Translate(err))
		}
		return nil
	})
	return r, err
}

// deleteEndpoint removes an endpoint, its deliveries and their attempts.
func (st *store) deleteEndpoint(ctx context.Context, id strata.ID) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM payments_webhook_attempts WHERE delivery_id IN
			(SELECT id FROM payments_webhook_deliveries WHERE endpoint_id = $1)`, id); err != nil {
			return fmt.Errorf("delete attempts of endpoint %s: %w", id, sqldb.Translate(err))
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM payments_webhook_deliveries WHERE endpoint_id = $1", id); err != nil {
			return fmt.Errorf("delete deliveries of endpoint %s: %w", id, sqldb.Translate(err))
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM payments_webhook_endpoints WHERE id = $1", id)
		if err != nil {
			return fmt.Errorf("delete endpoint %s: %w", id, sqldb.Translate(err))
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return errEndpointNotFound
		}
		return nil
	})
}

// eventRow is an event as it is sent.
type eventRow struct {
	ID        string
	Type      string
	Body      []byte
	CreatedAt time.Time
}

// enqueue records ev and a pending delivery of it to each of endpoints
// that still exists, due at now. Both inserts do nothing when the row is
// there already, so a redelivered message changes nothing. It returns the
// number of deliveries created.
func (st *store) enqueue(ctx context.Context, ev eventRow, endpoints []strata.ID, now time.Time) (int, error) {
	created := 0
	err := st.db.Tx(ctx, func(tx *sql.Tx) error {
		created = 0
		if _, err := tx.ExecContext(ctx, `INSERT INTO payments_webhook_events (id, type, body, created_at)
			VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING`,
			ev.ID, ev.Type, string(ev.Body), sqldb.Millis(ev.CreatedAt)); err != nil {
			return fmt.Errorf("insert event %s: %w", ev.ID, sqldb.Translate(err))
		}
		for _, ep := range endpoints {
			var one int
			err := tx.QueryRowContext(ctx, "SELECT 1 FROM payments_webhook_endpoints WHERE id = $1", ep).Scan(&one)
			if errors.Is(err, sql.ErrNoRows) {
				continue // deleted since the list was read
			}
			if err != nil {
				return fmt.Errorf("read endpoint %s: %w", ep, sqldb.Translate(err))
			}
			res, err := tx.ExecContext(ctx, `INSERT INTO payments_webhook_deliveries
				(id, event_id, endpoint_id, status, next_attempt_at, created_at, updated_at)
				VALUES ($1, $2, $3, $4, $5, $5, $5) ON CONFLICT (event_id, endpoint_id) DO NOTHING`,
				strata.NewID("whd", HomeShard, now), ev.ID, ep, string(StatusPending), sqldb.Millis(now))
			if err != nil {
				return fmt.Errorf("insert delivery of %s to %s: %w", ev.ID, ep, sqldb.Translate(err))
			}
			if n, _ := res.RowsAffected(); n == 1 {
				created++
			}
		}
		return nil
	})
	return created, err
}

// due returns up to limit pending deliveries to enabled endpoints whose
// time has come and that no sender holds, the most overdue first.
func (st *store) due(ctx context.Context, now time.Time, limit int) ([]strata.ID, error) {
	rows, err := st.db.Primary().QueryContext(ctx, `SELECT d.id FROM payments_webhook_deliveries d
		JOIN payments_webhook_endpoints e ON e.id = d.endpoint_id
		WHERE d.status = 'pending' AND d.next_attempt_at <= $1 AND d.lease_until < $1 AND e.enabled
		ORDER BY d.next_attempt_at LIMIT $2`, sqldb.Millis(now), limit)
	if err != nil {
		return nil, fmt.Errorf("read due deliveries: %w", sqldb.Translate(err))
	}
	defer rows.Close()
	var out []strata.ID
	for rows.Next() {
		var id strata.ID
		if err := rows.Scan(&id); err != nil {
			return nil, fmt.Errorf("read due deliveries: %w", sqldb.Translate(err))
		}
		out = append(out, id)
	}
	return out, sqldb.Translate(rows.Err())
}

// claim takes the lease of a due delivery for token until until. It
// reports false when the delivery is no longer due or another sender
// holds a lease that has not expired: one conditional UPDATE, so two
// senders never both win.
func (st *store) claim(ctx context.Context, id strata.ID, token string, now, until time.Time) (bool, error) {
	res, err := st.db.Writer().ExecContext(ctx, `UPDATE payments_webhook_deliveries SET lease_token = $1, lease_until = $2
		WHERE id = $3 AND status = 'pending' AND next_attempt_at <= $4 AND lease_until < $4`,
		token, sqldb.Millis(until), id, sqldb.Millis(now))
	if err != nil {
		return false, fmt.Errorf("claim delivery %s: %w", id, sqldb.Translate(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("claim delivery %s: %w", id, err)
	}
	return n == 1, nil
}

// job is a claimed delivery with what sending it needs.
type job struct {
	id             strata.ID
	eventID        string
	failures       int
	firstAttemptAt time.Time
	body           []byte
	endpoint       endpointRow
}

// job reads the delivery id held under token; not_found when the lease
// was lost.
func (st *store) job(ctx context.Context, id strata.ID, token string) (*job, error) {
	var j job
	var first, prevExp, created, updated int64
	var body, events string
	e := &j.endpoint
	err := st.db.Primary().QueryRowContext(ctx, `SELECT d.id, d.event_id, d.failures, d.first_attempt_at, ev.body,
		e.id, e.url, e.events, e.secret, e.previous_secret, e.previous_expires_at, e.enabled, e.created_at, e.updated_at
		FROM payments_webhook_deliveries d
		JOIN payments_webhook_events ev ON ev.id = d.event_id
		JOIN payments_webhook_endpoints e ON e.id = d.endpoint_id
		WHERE d.id = $1 AND d.lease_token = $2`, id, token).Scan(
		&j.id, &j.eventID, &j.failures, &first, &body,
		&e.ID, &e.URL, &events, &e.Secret, &e.PreviousSecret, &prevExp, &e.Enabled, &created, &updated)
	if err != nil {
		return nil, fmt.Errorf("read delivery %s: %w", id, sqldb.Translate(err))
	}
	j.firstAttemptAt, j.body = sqldb.FromMillis(first), []byte(body)
	e.PreviousExpiresAt, e.CreatedAt, e.UpdatedAt = sqldb.FromMillis(prevExp), sqldb.FromMillis(created), sqldb.FromMillis(updated)
	return &j, nil
}

// outcome is the result of one attempt and the delivery's state after it.
type outcome struct {
	status         DeliveryStatus
	failures       int
	firstAttemptAt time.Time
	nextAttemptAt  time.Time
	attempt        Attempt
}

// errLeaseLost: the delivery changed hands (its lease expired and another
// sender took it, or it was replayed or deleted) before the outcome was
// recorded.
var errLeaseLost = errors.New("delivery lease lost")

// maxAttemptLog is how many attempts the log keeps per delivery.
const maxAttemptLog = 50

// record writes the outcome of the attempt made under token, releases the
// lease and logs the attempt, keeping the last maxAttemptLog.
func (st *store) record(ctx context.Context, id strata.ID, token string, o outcome) error {
	a := o.attempt
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE payments_webhook_deliveries SET status = $1, attempts = attempts + 1,
			failures = $2, first_attempt_at = $3, next_attempt_at = $4, last_status_code = $5, last_error = $6,
			lease_token = '', lease_until = 0, updated_at = $7
			WHERE id = $8 AND lease_token = $9`,
			string(o.status), o.failures, sqldb.Millis(o.firstAttemptAt), sqldb.Millis(o.nextAttemptAt), a.StatusCode, a.Error,
			sqldb.Millis(a.At), id, token)
		if err != nil {
			return fmt.Errorf("record delivery %s: %w", id, sqldb.Translate(err))
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			return errLeaseLost
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO payments_webhook_attempts (id, delivery_id, attempted_at, status_code, duration_ms, error)
			VALUES ($1, $2, $3, $4, $5, $6)`,
			strata.NewID("wha", HomeShard, a.At), id, sqldb.Millis(a.At), a.StatusCode, a.Duration.Milliseconds(), a.Error); err != nil {
			return fmt.Errorf("log attempt of %s: %w", id, sqldb.Translate(err))
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`DELETE FROM payments_webhook_attempts WHERE delivery_id = $1 AND id NOT IN
			(SELECT id FROM payments_webhook_attempts WHERE delivery_id = $1 ORDER BY attempted_at DESC, id DESC LIMIT %d)`, maxAttemptLog),
			id); err != nil {
			return fmt.Errorf("trim attempts of %s: %w", id, sqldb.Translate(err))
		}
		return nil
	})
}

const deliveryColumns = `d.id, d.event_id, d.endpoint_id, ev.type, d.status, d.attempts, d.next_attempt_at,
	d.last_status_code, d.last_error, d.created_at, d.updated_at`

func scanDelivery(row interface{ Scan(...any) error }) (*Delivery, error) {
	var d Delivery
	var status string
	var next, created, updated int64
	if err := row.Scan(&d.ID, &d.EventID, &d.EndpointID, &d.EventType, &status, &d.Attempts, &next,
		&d.LastStatusCode, &d.LastError, &created, &updated); err != nil {
		return nil, err
	}
	d.Status = DeliveryStatus(status)
	if d.Status == StatusPending {
		d.NextAttemptAt = sqldb.FromMillis(next)
	}
	d.CreatedAt, d.UpdatedAt = sqldb.FromMillis(created), sqldb.FromMillis(updated)
	return &d, nil
}

// delivery reads one delivery, without its log.
func (st *store) delivery(ctx context.Context, id strata.ID) (*Delivery, error) {
	d, err := scanDelivery(st.db.Primary().QueryRowContext(ctx, "SELECT "+deliveryColumns+
		" FROM payments_webhook_deliveries d JOIN payments_webhook_events ev ON ev.id = d.event_id WHERE d.id = $1", id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errDeliveryNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read delivery %s: %w", id, sqldb.Translate(err))
	}
	return d, nil
}

// deliveries reads an endpoint's deliveries older than before ("" for the
// newest), of status when set, newest first, at most limit.
func (st *store) deliveries(ctx context.Context, endpoint, before strata.ID, status DeliveryStatus, limit int) ([]Delivery, error) {
	q := "SELECT " + deliveryColumns + ` FROM payments_webhook_deliveries d
		JOIN payments_webhook_events ev ON ev.id = d.event_id WHERE d.endpoint_id = $1`
	args := []any{endpoint}
	if before != "" {
		args = append(args, before)
		q += fmt.Sprintf(" AND d.id < $%d", len(args))
	}
	if status != "" {
		args = append(args, string(status))
		q += fmt.Sprintf(" AND d.status = $%d", len(args))
	}
	q += fmt.Sprintf(" ORDER BY d.id DESC LIMIT %d", limit)
	rows, err := st.db.Primary().QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("read deliveries: %w", sqldb.Translate(err))
	}
	defer rows.Close()
	out := []Delivery{}
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("read deliveries: %w", sqldb.Translate(err))
		}
		out = append(out, *d)
	}
	return out, sqldb.Translate(rows.Err())
}

// attempts reads the logs of deliveries, newest attempt first.
func (st *store) attempts(ctx context.Context, deliveries []strata.ID) (map[strata.ID][]Attempt, error) {
	out := map[strata.ID][]Attempt{}
	if len(deliveries) == 0 {
		return out, nil
	}
	ph := make([]string, len(deliveries))
	args := make([]any, len(deliveries))
	for i, id := range deliveries {
		ph[i], args[i] = fmt.Sprintf("$%d", i+1), id
	}
	rows, err := st.db.Primary().QueryContext(ctx, `SELECT delivery_id, attempted_at, status_code, duration_ms, error
		FROM payments_webhook_attempts WHERE delivery_id IN (`+strings.Join(ph, ", ")+`)
		ORDER BY delivery_id, attempted_at DESC, id DESC`, args...)
	if err != nil {
		return nil, fmt.Errorf("read attempts: %w", sqldb.Translate(err))
	}
	defer rows.Close()
	for rows.Next() {
		var id strata.ID
		var a Attempt
		var at, ms int64
		if err := rows.Scan(&id, &at, &a.StatusCode, &ms, &a.Error); err != nil {
			return nil, fmt.Errorf("read attempts: %w", sqldb.Translate(err))
		}
		a.At, a.Duration = sqldb.FromMillis(at), time.Duration(ms)*time.Millisecond
		out[id] = append(out[id], a)
	}
	return out, sqldb.Translate(rows.Err())
}

// replay makes a delivery pending and due at now, with a fresh retry
// window; the attempt count goes on. It refuses a delivery a sender holds
// and one whose endpoint is disabled.
func (st *store) replay(ctx context.Context, id strata.ID, now time.Time) error {
	return st.db.Tx(ctx, func(tx *sql.Tx) error {
		var lease int64
		var enabled bool
		err := tx.QueryRowContext(ctx, `SELECT d.lease_until, e.enabled FROM payments_webhook_deliveries d
			JOIN payments_webhook_endpoints e ON e.id = d.endpoint_id WHERE d.id = $1`+st.db.ForUpdate(), id).Scan(&lease, &enabled)
		if errors.Is(err, sql.ErrNoRows) {
			return errDeliveryNotFound
		}
		if err != nil {
			return fmt.Errorf("read delivery %s: %w", id, sqldb.Translate(err))
		}
		if !enabled {
			return errEndpointDisabled
		}
		if lease >= sqldb.Millis(now) {
			return errDeliveryInFlight
		}
		_, err = tx.ExecContext(ctx, `UPDATE payments_webhook_deliveries SET status = 'pending', failures = 0,
			first_attempt_at = 0, next_attempt_at = $1, lease_token = '', lease_until = 0, updated_at = $1 WHERE id = $2`,
			sqldb.Millis(now), id)
		if err != nil {
			return fmt.Errorf("replay delivery %s: %w", id, sqldb.Translate(err))
		}
		return nil
	})
}

// sweep deletes up to limit deliveries finished before cutoff, with their
// logs, then up to limit events older than cutoff that no delivery
// references. It returns the number of rows of both kinds deleted.
func (st *store) sweep(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	n := 0
	err := st.db.Tx(ctx, func(tx *sql.Tx) error {
		n = 0
		sel := fmt.Sprintf(`SELECT id FROM payments_webhook_deliveries
			WHERE status <> 'pending' AND updated_at < $1 ORDER BY updated_at LIMIT %d`, limit)
		if _, err := tx.ExecContext(ctx, "DELETE FROM payments_webhook_attempts WHERE delivery_id IN ("+sel+")",
			sqldb.Millis(cutoff)); err != nil {
			return fmt.Errorf("sweep attempts: %w", sqldb.Translate(err))
		}
		res, err := tx.ExecContext(ctx, "DELETE FROM payments_webhook_deliveries WHERE id IN ("+sel+")", sqldb.Millis(cutoff))
		if err != nil {
			return fmt.Errorf("sweep deliveries: %w", sqldb.Translate(err))
		}
		d, _ := res.RowsAffected()
		res, err = tx.ExecContext(ctx, fmt.Sprintf(`DELETE FROM payments_webhook_events WHERE id IN
			(SELECT ev.id FROM payments_webhook_events ev WHERE ev.created_at < $1 AND NOT EXISTS
				(SELECT 1 FROM payments_webhook_deliveries d WHERE d.event_id = ev.id) ORDER BY ev.created_at LIMIT %d)`, limit),
			sqldb.Millis(cutoff))
		if err != nil {
			return fmt.Errorf("sweep events: %w", sqldb.Translate(err))
		}
		e, _ := res.RowsAffected()
		n = int(d + e)
		return nil
	})
	return n, err
}
