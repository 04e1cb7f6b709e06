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
		if real, err := filepath.EvalSymlinks(p); err == nil {
			p = real // a link on the PATH: its siblings (pg_basebackup...) are where it points
		}
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
	srv, err := newPGServer()
	if err != nil {
		return "", err
	}
	if err := srv.initdb(); err != nil {
		return "", err
	}
	return srv.start()
}

// pgCluster is one PostgreSQL server in a temporary folder of its own.
type pgCluster struct {
	bin, dir, data string
	cred           *syscall.Credential
	port           int
	cmd            *exec.Cmd
}

// newPGServer prepares a folder for a server, owned by the postgres user
// when the tests run as root (PostgreSQL refuses root).
func newPGServer() (*pgCluster, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	sweepStaleServers()
	dir, err := os.MkdirTemp("", "strata-pg-")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "owner.pid"), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		return nil, err
	}
	c := &pgCluster{bin: bin, dir: dir, data: filepath.Join(dir, "data")}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root needs a postgres user: %w", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			return nil, err
		}
		c.cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	if c.port, err = freePort(); err != nil {
		return nil, err
	}
	return c, nil
}

// run runs one of PostgreSQL's programs as the server's user.
func (c *pgCluster) run(program string, args ...string) error {
	cmd := exec.Command(filepath.Join(c.bin, program), args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%s: %w: %s", program, err, out)
	}
	return nil
}

func (c *pgCluster) initdb() error {
	return c.run("initdb", "-D", c.data, "-U", "strata", "--auth=trust", "--no-sync", "-E", "UTF8", "--locale=C")
}

// start starts the server on loopback and waits until it answers; it
// returns the URL of its maintenance database.
func (c *pgCluster) start() (string, error) {
	server := exec.Command(filepath.Join(c.bin, "postgres"), "-D", c.data, "-k", c.dir, "-h", "127.0.0.1", "-p", strconv.Itoa(c.port),
		"-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off", "-c", "max_connections=300")
	// Dies with this process, however it ends.
	server.SysProcAttr = &syscall.SysProcAttr{Credential: c.cred, Pdeathsig: syscall.SIGKILL}
	logf, err := os.Create(filepath.Join(c.dir, "server.log"))
	if err != nil {
		return "", err
	}
	server.Stdout, server.Stderr = logf, logf
	if err := server.Start(); err != nil {
		return "", fmt.Errorf("start postgres: %w", err)
	}
	c.cmd = server
	dsn := c.dsn("postgres")
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
			log, _ := os.ReadFile(filepath.Join(c.dir, "server.log"))
			return "", fmt.Errorf("postgres did not start within 30s: %w; log: %s", err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *pgCluster) dsn(database string) string {
	return fmt.Sprintf("postgres://strata@127.0.0.1:%d/%s?sslmode=disable", c.port, database)
}

// stop kills the server and removes its folder.
func (c *pgCluster) stop() {
	if c.cmd != nil && c.cmd.Process != nil {
		_ = c.cmd.Process.Kill()
		_, _ = c.cmd.Process.Wait()
		c.cmd = nil
	}
	_ = os.RemoveAll(c.dir)
}

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
