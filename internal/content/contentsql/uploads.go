package contentsql

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/content"
	"github.com/stratadev/strata/internal/storage/sqldb"
)

// Uploads are read and written on the writer pool of their shard: the
// lease logic needs every read to see the latest write, which a replica
// behind the reader pool may not.

const uploadColumns = `id, item_id, user_id, length, received, metadata, filename, status, next_part,
	created_at, updated_at, expires_at`

func scanUpload(row interface{ Scan(...any) error }) (*content.Upload, error) {
	var u content.Upload
	var status string
	var created, updated, expires int64
	if err := row.Scan(&u.ID, &u.ItemID, &u.UserID, &u.Length, &u.Offset, &u.Metadata, &u.Filename, &status, &u.NextPart,
		&created, &updated, &expires); err != nil {
		return nil, sqldb.Translate(err)
	}
	u.Status = content.UploadStatus(status)
	u.CreatedAt, u.UpdatedAt, u.ExpiresAt = sqldb.FromMillis(created), sqldb.FromMillis(updated), sqldb.FromMillis(expires)
	return &u, nil
}

// uploadDB returns the writer pool of the upload's shard; not_found for an
// id that names no shard of ours.
func (s *Store) uploadDB(id strata.ID) (*sql.DB, error) {
	db, err := s.router.ForID(id)
	if err != nil {
		return nil, err
	}
	return db.Writer(), nil
}

// execUpload runs one statement on the upload's shard and tells whether it
// changed a row.
func (s *Store) execUpload(ctx context.Context, action string, id strata.ID, q string, args ...any) (bool, error) {
	db, err := s.uploadDB(id)
	if err != nil {
		return false, err
	}
	res, err := db.ExecContext(ctx, q, args...)
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", action, id, sqldb.Translate(err))
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("%s %s: %w", action, id, err)
	}
	return n > 0, nil
}

// InsertUpload creates an upload.
func (s *Store) InsertUpload(ctx context.Context, u *content.Upload) error {
	_, err := s.execUpload(ctx, "insert upload", u.ID,
		`INSERT INTO content_uploads (id, item_id, user_id, length, received, metadata, filename, status, next_part,
		   created_at, updated_at, expires_at)
		 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		u.ID, u.ItemID, u.UserID, u.Length, u.Offset, u.Metadata, u.Filename, string(u.Status), u.NextPart,
		sqldb.Millis(u.CreatedAt), sqldb.Millis(u.UpdatedAt), sqldb.Millis(u.ExpiresAt))
	return err
}

// UploadByID reads an upload.
func (s *Store) UploadByID(ctx context.Context, id strata.ID) (*content.Upload, error) {
	db, err := s.uploadDB(id)
	if err != nil {
		return nil, err
	}
	u, err := scanUpload(db.QueryRowContext(ctx, "SELECT "+uploadColumns+" FROM content_uploads WHERE id = $1", id))
	if err != nil {
		return nil, fmt.Errorf("read upload %s: %w", id, err)
	}
	return u, nil
}

// LockUpload takes the lease of an upload.
func (s *Store) LockUpload(ctx context.Context, id strata.ID, token string, now, until time.Time) (bool, error) {
	ok, err := s.execUpload(ctx, "lock upload", id,
		`UPDATE content_uploads SET lock_token = $2, lock_until = $3, next_part = next_part + 1
		 WHERE id = $1 AND (lock_token = '' OR lock_until < $4)`,
		id, token, sqldb.Millis(until), sqldb.Millis(now))
	if err != nil || ok {
		return ok, err
	}
	// Held by another lease, or absent: tell which.
	_, err = s.UploadByID(ctx, id)
	return false, err
}

// RenewUploadLock extends a lease.
func (s *Store) RenewUploadLock(ctx context.Context, id strata.ID, token string, until time.Time) (bool, error) {
	return s.execUpload(ctx, "renew upload lock", id,
		"UPDATE content_uploads SET lock_until = $3 WHERE id = $1 AND lock_token = $2", id, token, sqldb.Millis(until))
}

// UnlockUpload releases a lease.
func (s *Store) UnlockUpload(ctx context.Context, id strata.ID, token string) error {
	_, err := s.execUpload(ctx, "unlock upload", id,
		"UPDATE content_uploads SET lock_token = '', lock_until = 0 WHERE id = $1 AND lock_token = $2", id, token)
	return err
}

// AddUploadPart records a part and moves the offset, fenced by the lease
// and the offset the part was written at.
func (s *Store) AddUploadPart(ctx context.Context, id strata.ID, token string, from int64, p content.UploadPart, now time.Time) (bool, error) {
	db, err := s.router.ForID(id)
	if err != nil {
		return false, err
	}
	ok := false
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE content_uploads SET received = received + $4, updated_at = $5
			 WHERE id = $1 AND lock_token = $2 AND received = $3 AND status = 'open'`,
			id, token, from, p.Size, sqldb.Millis(now))
		if err != nil {
			return fmt.Errorf("advance upload %s: %w", id, sqldb.Translate(err))
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err // lease lost: nothing recorded
		}
		if _, err := tx.ExecContext(ctx,
			"INSERT INTO content_upload_parts (upload_id, part_number, size) VALUES ($1, $2, $3)",
			id, p.Number, p.Size); err != nil {
			return fmt.Errorf("record part %d of upload %s: %w", p.Number, id, sqldb.Translate(err))
		}
		ok = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return ok, nil
}

// UploadParts returns the recorded parts in order.
func (s *Store) UploadParts(ctx context.Context, id strata.ID) ([]content.UploadPart, error) {
	db, err := s.uploadDB(id)
	if err != nil {
		return nil, err
	}
	rows, err := db.QueryContext(ctx,
		"SELECT part_number, size FROM content_upload_parts WHERE upload_id = $1 ORDER BY part_number", id)
	if err != nil {
		return nil, fmt.Errorf("read parts of upload %s: %w", id, sqldb.Translate(err))
	}
	defer rows.Close()
	var out []content.UploadPart
	for rows.Next() {
		var p content.UploadPart
		if err := rows.Scan(&p.Number, &p.Size); err != nil {
			return nil, fmt.Errorf("read parts of upload %s: %w", id, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// CompleteUpload marks an upload completed and forgets its parts.
func (s *Store) CompleteUpload(ctx context.Context, id strata.ID, token string, now time.Time) (bool, error) {
	db, err := s.router.ForID(id)
	if err != nil {
		return false, err
	}
	ok := false
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx,
			`UPDATE content_uploads SET status = 'completed', updated_at = $3
			 WHERE id = $1 AND lock_token = $2 AND status = 'open'`, id, token, sqldb.Millis(now))
		if err != nil {
			return fmt.Errorf("complete upload %s: %w", id, sqldb.Translate(err))
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			return err
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM content_upload_parts WHERE upload_id = $1", id); err != nil {
			return fmt.Errorf("forget parts of upload %s: %w", id, sqldb.Translate(err))
		}
		ok = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return ok, nil
}

// TerminateUpload marks an upload terminated, expiring at now.
func (s *Store) TerminateUpload(ctx context.Context, id strata.ID, token string, now time.Time) (bool, error) {
	return s.execUpload(ctx, "terminate upload", id,
		`UPDATE content_uploads SET status = 'terminated', expires_at = $3, updated_at = $3
		 WHERE id = $1 AND lock_token = $2`, id, token, sqldb.Millis(now))
}

// DeleteUpload deletes an upload and the record of its parts.
func (s *Store) DeleteUpload(ctx context.Context, id strata.ID, token string) (bool, error) {
	db, err := s.router.ForID(id)
	if err != nil {
		return false, err
	}
	ok := false
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		var one int
		err := tx.QueryRowContext(ctx, "SELECT 1 FROM content_uploads WHERE id = $1 AND lock_token = $2"+db.ForUpdate(),
			id, token).Scan(&one)
		if err != nil {
			if strata.ErrorCode(sqldb.Translate(err)) == strata.CodeNotFound {
				return nil // lease lost, or deleted already
			}
			return fmt.Errorf("read upload %s: %w", id, sqldb.Translate(err))
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM content_upload_parts WHERE upload_id = $1", id); err != nil {
			return fmt.Errorf("delete parts of upload %s: %w", id, sqldb.Translate(err))
		}
		if _, err := tx.ExecContext(ctx, "DELETE FROM content_uploads WHERE id = $1", id); err != nil {
			return fmt.Errorf("delete upload %s: %w", id, sqldb.Translate(err))
		}
		ok = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return ok, nil
}

// ExpiredUploads gathers expired uploads without a live lease from every
// database, oldest expiry first on each.
func (s *Store) ExpiredUploads(ctx context.Context, now time.Time, limit int) ([]strata.ID, error) {
	return sqldb.Gather(ctx, s.router.DBs(), func(ctx context.Context, db *sqldb.DB) ([]strata.ID, error) {
		// A stale read is harmless: removing an upload takes its lease first.
		rows, err := db.Read().QueryContext(ctx,
			`SELECT id FROM content_uploads WHERE expires_at <= $1 AND (lock_token = '' OR lock_until < $1)
			 ORDER BY expires_at LIMIT $2`, sqldb.Millis(now), limit)
		if err != nil {
			return nil, fmt.Errorf("list expired uploads on %s: %w", db.Name(), sqldb.Translate(err))
		}
		defer rows.Close()
		var ids []strata.ID
		for rows.Next() {
			var id strata.ID
			if err := rows.Scan(&id); err != nil {
				return nil, fmt.Errorf("list expired uploads on %s: %w", db.Name(), err)
			}
			ids = append(ids, id)
		}
		return ids, rows.Err()
	})
}
