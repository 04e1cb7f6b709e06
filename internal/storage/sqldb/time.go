package sqldb

import (
	"database/sql"
	"time"
)

// Timestamps are stored as BIGINT Unix milliseconds, the same on every
// dialect; the zero time is 0 (or NULL in nullable columns).

// Millis returns t as Unix milliseconds, 0 for the zero time.
func Millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

// NullMillis returns t for a nullable column: NULL for the zero time.
func NullMillis(t time.Time) sql.NullInt64 {
	return sql.NullInt64{Int64: t.UnixMilli(), Valid: !t.IsZero()}
}

// FromMillis is the inverse of Millis, in UTC.
func FromMillis(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v).UTC()
}

// FromNullMillis is the inverse of NullMillis.
func FromNullMillis(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return FromMillis(v.Int64)
}
