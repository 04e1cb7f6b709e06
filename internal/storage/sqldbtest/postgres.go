package sqldbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stratadev/strata/internal/storage/sqldb"
)

// pgServer is this test process's PostgreSQL server: started on first use
// in a temporary folder, listening on loopback, killed with the process.
var pgServer struct {
	once sync.Once
	dsn  string // of the server's maintenance database
	err  error
}

// PostgresMissing is the skip message of a test that needs PostgreSQL
// where it is not installed (with STRATA_REQUIRE_POSTGRES=1, its failure
// message).
const PostgresMissing = "PostgreSQL not found: install it (Debian: apt-get install -y postgresql; initdb and postgres are looked up on the PATH and in /usr/lib/postgresql/*/bin)"

// PostgresDSN returns the URL of a fresh, empty database on a real
// PostgreSQL server, dropped when the test ends. The server is started
// once per test process (initdb in a temporary folder, postgres on a free
// loopback port, as the postgres user when the tests run as root, which
// PostgreSQL refuses); the test is skipped when PostgreSQL is not
// installed, or fails if STRATA_REQUIRE_POSTGRES=1.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	pgServer.once.Do(func() { pgServer.dsn, pgServer.err = startPostgres() })
	if errors.Is(pgServer.err, errNoPostgres) {
		if postgresRequired() {
			t.Fatalf("%s=1: %s", RequirePostgresEnv, PostgresMissing)
		}
		t.Skip(PostgresMissing)
	}
	if pgServer.err != nil {
		t.Fatalf("start postgres: %v", pgServer.err)
	}
	admin, err := sql.Open("pgx", pgServer.dsn)
	if err != nil {
		t.Fatalf("connect to postgres: %v", err)
	}
	defer admin.Close()
	var b [6]byte
	_, _ = rand.Read(b[:])
	name := "t_" + hex.EncodeToString(b[:])
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		t.Fatalf("create database: %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("pgx", pgServer.dsn)
		if err == nil {
			_, _ = admin.Exec("DROP DATABASE IF EXISTS " + name + " WITH (FORCE)")
			admin.Close()
		}
	})
	u := pgServer.dsn[:len(pgServer.dsn)-len("/postgres?sslmode=disable")]
	return u + "/" + name + "?sslmode=disable"
}

// OpenPostgresShards returns a router spreading numShards logical shards
// over dbs fresh PostgreSQL databases, closed when the test ends.
func OpenPostgresShards(t testing.TB, numShards, dbs int) *sqldb.Router {
	t.Helper()
	return router(t, numShards, dbs, func() (*sqldb.DB, error) {
		return sqldb.OpenPostgres(context.Background(), PostgresDSN(t), sqldb.PostgresOptions{MaxConns: 8})
	})
}

var errNoPostgres = errors.New("no initdb beside postgres on the PATH or in /usr/lib/postgresql/*/bin")

// PostgresAvailable reports whether PostgreSQL is installed where
// PostgresDSN looks for it and, when it is not, why. It starts nothing.
func PostgresAvailable() (ok bool, reason string) {
	if _, err := pgBinDir(); err != nil {
		return false, err.Error()
	}
	return true, ""
}

// pgBinDir finds the folder holding initdb and postgres.
func pgBinDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		dir := filepath.Dir(p)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	slices.SortFunc(matches, func(a, b string) int { return versionOf(b) - versionOf(a) }) // newest first
	for _, m := range matches {
		dir := filepath.Dir(m)
		if _, err := os.Stat(filepath.Join(dir, "postgres")); err == nil {
			return dir, nil
		}
	}
	return "", errNoPostgres
}

func versionOf(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

func startPostgres() (string, error) {
	bin, err := pgBinDir()
	if err != nil {
		return "", err
	}
	sweepStaleServers()
	dir, err := os.MkdirTemp("", "strata-pg-")
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return "", err
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// PostgreSQL refuses to run as root: run it as the postgres user.
		u, err := user.Lookup("postgres")
		if err != nil {
			return "", fmt.Errorf("running as root needs a postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return "", err
		}
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	data := filepath.Join(dir, "data")
	initdb := exec.Command(filepath.Join(bin, "initdb"), "-D", data, "-U", "strata", "--auth=trust", "--no-sync",
		"-E", "UTF8", "--locale=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return "", fmt.Errorf("initdb: %w: %s", err, out)
	}
	port, err := freePort()
	if err != nil {
		return "", err
	}
	server := exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-k", dir, "-h", "127.0.0.1", "-p", strconv.Itoa(port),
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=300")
	// Dies with this process, however it ends.
	server.SysProcAttr = &syscall.SysProcAttr{Credential: cred, Pdeathsig: syscall.SIGKILL}
	logf, err := os.Create(filepath.Join(dir, "server.log"))
	if err != nil {
		return "", err
	}
	server.Stdout, server.Stderr = logf, logf
	if err := server.Start(); err != nil {
		return "", fmt.Errorf("start postgres: %w", err)
	}
	dsn := fmt.Sprintf("postgres://strata@127.0.0.1:%d/postgres?sslmode=disable", port)
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return "", err
	}
	defer db.Close()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = db.PingContext(ctx)
		cancel()
		if err == nil {
			return dsn, nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			return "", fmt.Errorf("postgres did not start within 30s: %w; log: %s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sweepStaleServers removes the folders of servers whose test process is
// gone (the server died with it; its files stayed).
func sweepStaleServers() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "strata-pg-*"))
	for _, d := range dirs {
		b, err := os.ReadFile(filepath.Join(d, "owner.pid"))
		if err != nil {
			continue
		}
		pid, err := strconv.Atoi(string(b))
		if err != nil || !errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) {
			continue // alive (or not ours to judge)
		}
		os.RemoveAll(d)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
