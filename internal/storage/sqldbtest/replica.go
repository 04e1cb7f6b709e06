package sqldbtest

import (
	"database/sql"
	"strconv"
	"testing"
	"time"
)

// PostgresPair is a PostgreSQL primary with one streaming replica, private
// to a test (pausing replay or stopping the replica must not disturb other
// tests), each holding the database "strata".
type PostgresPair struct {
	// Primary and Replica are the URLs of the database on each server.
	Primary, Replica string
	primary, replica *pgCluster
}

// StartPostgresPair starts a primary, creates the database "strata" on it,
// clones it into a streaming replica with pg_basebackup and starts that,
// waiting until the replica serves the database; both stop when the test
// ends. Skipped (or failed, under STRATA_REQUIRE_POSTGRES=1) without
// PostgreSQL.
func StartPostgresPair(t testing.TB) *PostgresPair {
	t.Helper()
	if ok, reason := PostgresAvailable(); !ok {
		if postgresRequired() {
			t.Fatalf("%s=1: %s (%s)", RequirePostgresEnv, PostgresMissing, reason)
		}
		t.Skipf("%s (%s)", PostgresMissing, reason)
	}
	primary, err := newPGServer()
	if err != nil {
		t.Fatalf("postgres primary: %v", err)
	}
	t.Cleanup(primary.stop)
	if err := primary.initdb(); err != nil {
		t.Fatalf("postgres primary: %v", err)
	}
	admin, err := primary.start()
	if err != nil {
		t.Fatalf("postgres primary: %v", err)
	}
	db, err := sql.Open("pgx", admin)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE DATABASE strata"); err != nil {
		t.Fatalf("create database: %v", err)
	}
	replica, err := newPGServer()
	if err != nil {
		t.Fatalf("postgres replica: %v", err)
	}
	t.Cleanup(replica.stop)
	// -R writes standby.signal and primary_conninfo: a streaming standby.
	if err := replica.run("pg_basebackup", "-h", "127.0.0.1", "-p", itoa(primary.port), "-U", "strata",
		"-D", replica.data, "-R", "-X", "stream", "-c", "fast"); err != nil {
		t.Fatalf("postgres replica: %v", err)
	}
	if _, err := replica.start(); err != nil {
		t.Fatalf("postgres replica: %v", err)
	}
	p := &PostgresPair{Primary: primary.dsn("strata"), Replica: replica.dsn("strata"), primary: primary, replica: replica}
	return p
}

// StopReplica kills the replica server, as a crash would.
func (p *PostgresPair) StopReplica() {
	if p.replica.cmd != nil && p.replica.cmd.Process != nil {
		_ = p.replica.cmd.Process.Kill()
		_, _ = p.replica.cmd.Process.Wait()
		p.replica.cmd = nil
	}
}

// WaitReplayed waits until the replica has replayed everything the
// primary wrote so far.
func (p *PostgresPair) WaitReplayed(t testing.TB) {
	t.Helper()
	pdb, err := sql.Open("pgx", p.Primary)
	if err != nil {
		t.Fatal(err)
	}
	defer pdb.Close()
	rdb, err := sql.Open("pgx", p.Replica)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	var head string
	if err := pdb.QueryRow("SELECT pg_current_wal_insert_lsn()::text").Scan(&head); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var caught bool
		err := rdb.QueryRow("SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn", head).Scan(&caught)
		if err == nil && caught {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the replica did not replay %s within 30s (last error: %v)", head, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
