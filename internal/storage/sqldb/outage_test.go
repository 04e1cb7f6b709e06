package sqldb_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/storage/sqldb"
	"github.com/stretchr/testify/assert"
)

func TestOutage(t *testing.T) {
	t.Parallel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	for err, want := range map[error]bool{
		fmt.Errorf("begin: %w", refused):                      true,
		&pgconn.PgError{Code: "57P01"}:                        true, // admin shutdown
		&pgconn.PgError{Code: "08006"}:                        true,
		&pgconn.PgError{Code: "23505"}:                        false, // unique violation: an answer
		errors.New("purchase spans databases"):                false, // a caller's sentinel
		strata.Errorf(strata.CodeNotFound, "not_found", "no"): false,
		context.Canceled:                                      false,
	} {
		assert.Equal(t, want, sqldb.Outage(err), "%v", err)
	}
}
