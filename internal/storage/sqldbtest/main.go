package sqldbtest

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"syscall"
	"testing"

	"github.com/stratadev/strata/internal/storage/sqldb"
)

// RequirePostgresEnv set to "1" makes a missing PostgreSQL a failure: Main
// fails instead of running the suite on SQLite only, and PostgresDSN fails
// its test instead of skipping it. .ci/run sets it.
const RequirePostgresEnv = "STRATA_REQUIRE_POSTGRES"

// Main runs a store package's tests on both dialects; a package whose tests
// open their databases with Open or OpenShards calls it from its TestMain:
//
//	func TestMain(m *testing.M) { sqldbtest.Main(m) }
//
// It runs the tests on SQLite, then runs the same test binary again, with
// the same flags (-run, -count, -v, ...), as a child process with
// STRATA_TEST_DIALECT=postgres, whose output it passes through; it exits
// non-zero if either run failed. Where PostgreSQL is not installed (see
// PostgresAvailable) it says so and runs on SQLite only, or fails when
// STRATA_REQUIRE_POSTGRES=1.
//
// With STRATA_TEST_DIALECT set (as in the child) the tests run once, on that
// dialect. So do runs that measure or list rather than test — benchmarks,
// fuzzing, -list, profiles — and runs with -failfast whose SQLite run failed.
func Main(m *testing.M) {
	os.Exit(runBoth(m))
}

func runBoth(m *testing.M) int {
	if os.Getenv(DialectEnv) != "" {
		return m.Run()
	}
	code := m.Run() // SQLite
	if runOnce() || code != 0 && flagSet("test.failfast") {
		return code
	}
	if ok, reason := PostgresAvailable(); !ok {
		fmt.Printf("sqldbtest: PostgreSQL not found (%s): the store suite ran on SQLite only\n", reason)
		if postgresRequired() {
			fmt.Printf("sqldbtest: %s=1: failing\n", RequirePostgresEnv)
			return 1
		}
		return code
	}
	fmt.Printf("sqldbtest: the same tests on PostgreSQL (%s=%s)\n", DialectEnv, sqldb.Postgres)
	child := exec.Command(os.Args[0], os.Args[1:]...)
	child.Env = append(os.Environ(), DialectEnv+"="+string(sqldb.Postgres))
	child.Stdout, child.Stderr = os.Stdout, os.Stderr
	// Killed with this process, as when go test's timeout kills it.
	child.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := child.Run(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			fmt.Printf("sqldbtest: run the tests on PostgreSQL: %v\n", err)
		}
		return 1
	}
	return code
}

func postgresRequired() bool { return os.Getenv(RequirePostgresEnv) == "1" }

// runOnce reports whether this test binary was asked to measure or list
// rather than test: a second run would repeat benchmark lines under the
// same names, overwrite profiles, or fuzz twice (a fuzzing worker is this
// binary too).
func runOnce() bool {
	for _, name := range []string{"test.bench", "test.fuzz", "test.fuzzworker", "test.list",
		"test.cpuprofile", "test.memprofile", "test.blockprofile", "test.mutexprofile", "test.trace", "test.coverprofile"} {
		if flagSet(name) {
			return true
		}
	}
	return false
}

// flagSet reports whether the testing flag name is set to something other
// than empty or false (m.Run has parsed the flags).
func flagSet(name string) bool {
	f := flag.Lookup(name)
	return f != nil && f.Value.String() != "" && f.Value.String() != "false"
}
