package payments_test

import (
	"testing"

	"github.com/stratadev/strata/internal/storage/sqldbtest"
)

// TestMain runs the suite on SQLite and again on PostgreSQL.
func TestMain(m *testing.M) { sqldbtest.Main(m) }
