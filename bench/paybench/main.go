// Command paybench is the load driver of bench/payments.sh (issue 4): it
// measures purchases/s and top-ups/s of a running strata over HTTP, and the
// bare SQLite transfer transaction that bounds them.
//
//	paybench -mode ceiling  [-clients 1] [-duration 10s] [-dir DIR]
//	paybench -mode topup    -url http://127.0.0.1:PORT [-clients 32] [-duration 10s]
//	paybench -mode purchase -url http://127.0.0.1:PORT [-clients 32] [-duration 10s] [-items 0]
//
// Every mode runs an untimed warm-up (-warmup, 2s) first. -prepared makes
// the ceiling prepare its three statements once (Strata's stores do not;
// for information), -cpuprofile profiles paybench itself, and -pprof with
// -profile fetch a CPU profile of strata during the timed phase.
//
// ceiling opens a fresh SQLite database with sqldb.OpenSQLite (Strata's
// pragmas: WAL, synchronous=NORMAL, foreign keys, BEGIN IMMEDIATE, one
// writer connection), applies the real payments migrations on a one-shard
// router, seeds -accounts wallets and then runs, from -clients goroutines,
// the bare transfer: BEGIN; a guarded debit (balance >= x) of one account;
// a credit of another; one payments_transfers row; COMMIT.
//
// topup and purchase sign up -clients buyers (and, for purchase, -creators
// creators), untimed, then run -clients goroutines, each one buyer with its
// own keep-alive connection, for a warm-up and then -duration:
//
//   - topup: POST /v1/topups of 1.00 USD with card 4242424242424242 and a
//     fresh Idempotency-Key; a success is a 201 whose intent succeeded.
//   - purchase: buyers are topped up first; creators create items priced
//     1.00 USD, upload one tiny PNG to each, wait for the worker to mark the
//     asset ready and publish them. Every buyer then buys the items in order
//     (all buyers share the items; no buyer buys one twice), POST
//     /v1/purchases with a fresh Idempotency-Key; a success is a 201. With
//     -items 0 the number of items is sized from the warm-up's rate. A buyer
//     who runs out of items ends the timed phase for everyone (ran_out=1).
//     Items go to the creators in turn and every purchase credits its
//     creator's earnings (a row each), so buyers walking the items in step
//     credit few creators at a time, whatever -creators says; -stagger
//     starts buyer i at item i, so that with as many creators as clients
//     concurrent purchases credit different creators.
//
// Each measurement prints one line on standard output:
//
//	RESULT mode=purchase clients=32 n=12345 seconds=10.00 rps=1234.5 p50_ms=20.1 p99_ms=80.3 errors=0 ...
//
// with errors broken down by HTTP status (err_402=3, err_net=1). Latency is
// per request (or per transaction) from the client's side, failures
// included. With -pid, server_cpu_us is that process's CPU time per success
// (from /proc); with -db-pid, db_cpu_us is the CPU time per success of that
// process and its children (PostgreSQL's postmaster and its backends);
// driver_cpu_us is this process's own. Progress goes to standard error.
package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"io"
	"log"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/payments/paymentssql"
	"github.com/stratadev/strata/internal/storage/sqldb"
)

const password = "correct horse battery staple"

type config struct {
	mode        string
	url         string
	clients     int
	duration    time.Duration
	warmup      time.Duration
	dir         string
	accounts    int
	creators    int
	items       int
	setupConc   int
	signupConc  int
	pid         int
	dbPID       int
	label       string
	pprofURL    string
	profileFile string
	cpuProfile  string
	prepared    bool
	stagger     bool
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("paybench: ")
	var c config
	flag.StringVar(&c.mode, "mode", "", "ceiling, topup or purchase")
	flag.StringVar(&c.url, "url", "", "strata's base URL (topup, purchase)")
	flag.IntVar(&c.clients, "clients", 32, "concurrent clients: goroutines, and buyers for topup and purchase")
	flag.DurationVar(&c.duration, "duration", 10*time.Second, "length of the timed phase")
	flag.DurationVar(&c.warmup, "warmup", 2*time.Second, "untimed load before the timed phase")
	flag.StringVar(&c.dir, "dir", "", "ceiling: where the fresh database goes (a new temporary folder inside it; default $TMPDIR)")
	flag.IntVar(&c.accounts, "accounts", 1000, "ceiling: accounts seeded")
	flag.IntVar(&c.creators, "creators", 2, "purchase: creators selling the items, in turn (1-64)")
	flag.IntVar(&c.items, "items", 0, "purchase: items to create, the warm-up's purchases included; 0 sizes them from the warm-up's rate")
	flag.IntVar(&c.setupConc, "setup-concurrency", 16, "purchase: concurrent item pipelines during setup")
	flag.IntVar(&c.signupConc, "signup-concurrency", 2, "concurrent signups during setup (each is one argon2id hash)")
	flag.IntVar(&c.pid, "pid", 0, "the server's process id, to report its CPU time per operation")
	flag.IntVar(&c.dbPID, "db-pid", 0, "a database server's process id (PostgreSQL's postmaster), to report the CPU time per operation of it and its children (db_cpu_us)")
	flag.StringVar(&c.label, "label", "", "an extra word appended to the RESULT line (like round=1)")
	flag.StringVar(&c.pprofURL, "pprof", "", "strata's pprof base URL (http://HOST:PORT); with -profile, a CPU profile of the timed phase")
	flag.StringVar(&c.profileFile, "profile", "", "where to write the CPU profile taken through -pprof")
	flag.BoolVar(&noKeys, "no-keys", false, "topup, purchase: send no Idempotency-Key on the measured requests (to measure what the keys cost)")
	flag.BoolVar(&c.stagger, "stagger", false, "purchase: buyer i starts at item i instead of 0, so buyers do not walk the items (and their creators) in step")
	flag.BoolVar(&c.prepared, "prepared", false, "ceiling: prepare the three statements once (Strata's stores do not; reported as mode=ceiling-prepared)")
	flag.StringVar(&c.cpuProfile, "cpuprofile", "", "write a CPU profile of paybench itself (the ceiling's SQLite work) to this file")
	flag.Parse()
	if c.clients < 1 || c.duration <= 0 {
		log.Fatal("-clients must be positive and -duration longer than 0")
	}
	ctx := context.Background()
	if c.cpuProfile != "" {
		f, err := os.Create(c.cpuProfile)
		if err != nil {
			log.Fatal(err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			log.Fatal(err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
		}()
	}
	var err error
	switch c.mode {
	case "ceiling":
		err = runCeiling(ctx, c)
	case "topup", "purchase":
		if c.url == "" {
			log.Fatal("-url is required for -mode " + c.mode)
		}
		c.url = strings.TrimRight(c.url, "/")
		if c.creators < 1 || c.creators > 64 {
			log.Fatal("-creators must be between 1 and 64")
		}
		err = runHTTP(ctx, c)
	default:
		log.Fatal("-mode must be ceiling, topup or purchase")
	}
	if err != nil {
		log.Fatal(err)
	}
}

// ---- measurement -----------------------------------------------------------

// recorder collects one client's outcomes.
type recorder struct {
	lat    []time.Duration
	ok     int
	errors map[string]int
}

func newRecorder() *recorder {
	return &recorder{lat: make([]time.Duration, 0, 4096), errors: map[string]int{}}
}

func (r *recorder) add(d time.Duration, errKey string) {
	r.lat = append(r.lat, d)
	if errKey == "" {
		r.ok++
	} else {
		r.errors[errKey]++
	}
}

// result is a finished measurement.
type result struct {
	mode, extra   string
	clients       int
	elapsed       time.Duration
	ok            int
	lat           []time.Duration
	errors        map[string]int
	serverCPU     time.Duration // -1 when unknown
	dbCPU         time.Duration // -1 when unknown
	driverCPU     time.Duration
	firstErrorMsg string
}

func merge(recs []*recorder) (ok int, lat []time.Duration, errs map[string]int) {
	errs = map[string]int{}
	for _, r := range recs {
		ok += r.ok
		lat = append(lat, r.lat...)
		for k, v := range r.errors {
			errs[k] += v
		}
	}
	slices.Sort(lat)
	return ok, lat, errs
}

// quantile is the nearest-rank quantile q of sorted latencies.
func quantile(sorted []time.Duration, q float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(q*float64(len(sorted)))) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 2, 64) }

func (r result) print(c config) {
	nErr := 0
	keys := make([]string, 0, len(r.errors))
	for k, v := range r.errors {
		nErr += v
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	secs := max(r.elapsed.Seconds(), 1e-9)
	fmt.Fprintf(&b, "RESULT mode=%s clients=%d n=%d seconds=%.2f rps=%.1f p50_ms=%s p99_ms=%s errors=%d",
		r.mode, r.clients, r.ok, secs, float64(r.ok)/secs, ms(quantile(r.lat, 0.50)), ms(quantile(r.lat, 0.99)), nErr)
	for _, k := range keys {
		fmt.Fprintf(&b, " err_%s=%d", k, r.errors[k])
	}
	if r.ok > 0 {
		if r.serverCPU >= 0 {
			fmt.Fprintf(&b, " server_cpu_us=%.1f", float64(r.serverCPU.Microseconds())/float64(r.ok))
		}
		if r.dbCPU >= 0 {
			fmt.Fprintf(&b, " db_cpu_us=%.1f", float64(r.dbCPU.Microseconds())/float64(r.ok))
		}
		fmt.Fprintf(&b, " driver_cpu_us=%.1f", float64(r.driverCPU.Microseconds())/float64(r.ok))
	}
	if r.extra != "" {
		b.WriteString(" " + r.extra)
	}
	if c.label != "" {
		b.WriteString(" " + c.label)
	}
	fmt.Println(b.String())
	if r.firstErrorMsg != "" {
		log.Printf("first error of %s: %s", r.mode, r.firstErrorMsg)
	}
}

// selfCPU is this process's user + system CPU time.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procCPU is the CPU time (user + system, all threads) of process pid from
// /proc/PID/stat, or -1. The kernel reports it in USER_HZ, which is 100 on
// Linux.
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return -1
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return -1
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')') // the command name may hold spaces
	if i < 0 {
		return -1
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return -1
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64) // field 14 of stat
	stime, err2 := strconv.ParseInt(f[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return -1
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// procTreeCPU is the CPU time of process pid and of all its children, the
// live ones and those it has reaped (PostgreSQL's postmaster forks a
// backend per connection), or -1: the process's own time and its
// cumulative children's time from its /proc/PID/stat, plus the time of
// its live children.
func procTreeCPU(pid int) time.Duration {
	f := procStat(pid)
	if len(f) < 15 {
		return -1
	}
	total := ticks(f[11:15]) // utime, stime, cutime, cstime
	dirs, _ := os.ReadDir("/proc")
	for _, d := range dirs {
		child, err := strconv.Atoi(d.Name())
		if err != nil || child == pid {
			continue
		}
		if cf := procStat(child); len(cf) >= 13 && cf[1] == strconv.Itoa(pid) {
			total += ticks(cf[11:13]) // a child reaped between the two reads is missed
		}
	}
	return time.Duration(total) * 10 * time.Millisecond
}

// procStat is the fields of /proc/PID/stat after the command name (the
// state first), or nil.
func procStat(pid int) []string {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

func ticks(fields []string) int64 {
	var n int64
	for _, f := range fields {
		v, _ := strconv.ParseInt(f, 10, 64)
		n += v
	}
	return n
}

// op does one operation for client i and answers how long it took and,
// when it failed, a key (an HTTP status, "net") and a message; more is false
// when client i has nothing left to do.
type op func(ctx context.Context, i int) (d time.Duration, errKey, errMsg string, more bool)

// phase runs op on c.clients goroutines for length, or until one of them
// runs out of work, and returns what they recorded, how long the measured
// window lasted, and whether a client ran out. The phase ends gracefully:
// no new operation starts after the deadline, those in flight finish (no
// request is aborted), and only operations that completed inside the
// window are counted.
func phase(ctx context.Context, c config, length time.Duration, work op, firstErr *atomic.Value) ([]*recorder, time.Duration, bool) {
	recs := make([]*recorder, c.clients)
	var cutoff atomic.Int64 // the end of the window, from start
	cutoff.Store(int64(length))
	var ranOut atomic.Bool
	var wg sync.WaitGroup
	start := time.Now()
	for i := range c.clients {
		recs[i] = newRecorder()
		wg.Go(func() {
			for time.Since(start) < time.Duration(cutoff.Load()) {
				d, key, msg, more := work(ctx, i)
				at := time.Since(start)
				if !more {
					if !ranOut.Swap(true) {
						cutoff.Store(int64(at))
					}
					return
				}
				if at > time.Duration(cutoff.Load()) {
					return // completed after the window
				}
				if key != "" && firstErr != nil {
					firstErr.CompareAndSwap(nil, msg)
				}
				recs[i].add(d, key)
			}
		})
	}
	wg.Wait()
	return recs, time.Duration(cutoff.Load()), ranOut.Load()
}

// profile fetches a CPU profile of the given length through pprof into
// c.profileFile; the returned function waits for it.
func profile(c config, length time.Duration) func() {
	if c.pprofURL == "" || c.profileFile == "" {
		return func() {}
	}
	secs := max(1, int(length.Seconds())-1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		resp, err := http.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", strings.TrimRight(c.pprofURL, "/"), secs))
		if err != nil {
			log.Printf("profile: %v", err)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			log.Printf("profile: HTTP %d", resp.StatusCode)
			return
		}
		f, err := os.Create(c.profileFile)
		if err == nil {
			_, err = io.Copy(f, resp.Body)
			err = errors.Join(err, f.Close())
		}
		if err != nil {
			log.Printf("profile: %v", err)
			return
		}
		log.Printf("CPU profile of strata (%ds of the timed phase) in %s", secs, c.profileFile)
	}()
	return func() { <-done }
}

// timed runs the warm-up (unless skipped) and then the measured phase.
func timed(ctx context.Context, c config, mode string, warmup bool, work op) result {
	if warmup && c.warmup > 0 {
		recs, el, _ := phase(ctx, c, c.warmup, work, nil)
		ok, _, errs := merge(recs)
		log.Printf("%s warm-up: %d in %.2fs (%.0f/s), errors %v", mode, ok, el.Seconds(), float64(ok)/el.Seconds(), errs)
	}
	var firstErr atomic.Value
	s0, db0, d0 := procCPU(c.pid), procTreeCPU(c.dbPID), selfCPU()
	wait := profile(c, c.duration)
	recs, elapsed, ranOut := phase(ctx, c, c.duration, work, &firstErr)
	s1, db1, d1 := procCPU(c.pid), procTreeCPU(c.dbPID), selfCPU()
	wait()
	ok, lat, errs := merge(recs)
	r := result{mode: mode, clients: c.clients, elapsed: elapsed, ok: ok, lat: lat, errors: errs,
		serverCPU: -1, dbCPU: -1, driverCPU: d1 - d0}
	if s0 >= 0 && s1 >= 0 {
		r.serverCPU = s1 - s0
	}
	if db0 >= 0 && db1 >= 0 {
		r.dbCPU = db1 - db0
	}
	if ranOut {
		r.extra = "ran_out=1"
	}
	if v := firstErr.Load(); v != nil {
		r.firstErrorMsg = v.(string)
	}
	return r
}

// ---- ceiling ---------------------------------------------------------------

func runCeiling(ctx context.Context, c config) error {
	dir, err := os.MkdirTemp(c.dir, "paybench-ceiling-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := sqldb.OpenSQLite(ctx, filepath.Join(dir, "strata.db"), sqldb.SQLiteOptions{})
	if err != nil {
		return err
	}
	defer db.Close()
	router, err := sqldb.NewRouter(1, db)
	if err != nil {
		return err
	}
	if err := paymentssql.Migrate(ctx, router); err != nil {
		return err
	}
	w := db.Writer()

	// Seed the wallets in one transaction.
	now := time.Now().UTC()
	ids := make([]strata.ID, c.accounts)
	err = db.Tx(ctx, func(tx *sql.Tx) error {
		for i := range ids {
			ids[i] = strata.NewID("acc", 0, now)
			if _, err := tx.ExecContext(ctx,
				`INSERT INTO payments_accounts (id, shard, kind, owner_id, currency, balance, version, created_at, updated_at)
				 VALUES ($1, 0, 'wallet', $2, 'USD', $3, 0, $4, $4)`,
				ids[i], "usr_bench"+strconv.Itoa(i), int64(1)<<50, sqldb.Millis(now)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("seed accounts: %w", err)
	}

	var stmts transferStmts
	mode := "ceiling"
	if c.prepared {
		mode = "ceiling-prepared"
		for _, p := range []struct {
			st **sql.Stmt
			q  string
		}{{&stmts.debit, debitSQL}, {&stmts.credit, creditSQL}, {&stmts.insert, transferSQL}} {
			if *p.st, err = w.PrepareContext(ctx, p.q); err != nil {
				return err
			}
			defer (*p.st).Close()
		}
	}
	transfer := func(ctx context.Context, i int) (time.Duration, string, string, bool) {
		a := ids[rand.IntN(len(ids))]
		b := ids[rand.IntN(len(ids))]
		for b == a {
			b = ids[rand.IntN(len(ids))]
		}
		start := time.Now()
		err := bareTransfer(ctx, w, &stmts, a, b, 100)
		if err != nil {
			return time.Since(start), "tx", err.Error(), true
		}
		return time.Since(start), "", "", true
	}
	log.Printf("%s: %d accounts in %s; %d clients", mode, c.accounts, dir, c.clients)
	r := timed(ctx, c, mode, true, transfer)
	r.print(c)
	return nil
}

// The statements of the bare transfer.
const (
	debitSQL = "UPDATE payments_accounts SET balance = balance - $1, version = version + 1, updated_at = $2 " +
		"WHERE id = $3 AND balance >= $1"
	creditSQL   = "UPDATE payments_accounts SET balance = balance + $1, version = version + 1, updated_at = $2 WHERE id = $3"
	transferSQL = "INSERT INTO payments_transfers (id, shard, type, currency, amount, created_at) " +
		"VALUES ($1, 0, 'purchase', 'USD', $2, $3)"
)

// transferStmts are the statements prepared once (-prepared); nil
// members mean the SQL text is sent with every execution, as Strata's
// stores do.
type transferStmts struct{ debit, credit, insert *sql.Stmt }

func (p *transferStmts) exec(ctx context.Context, tx *sql.Tx, st *sql.Stmt, q string, args ...any) (sql.Result, error) {
	if st != nil {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.ExecContext(ctx, q, args...)
}

// bareTransfer is the ceiling: one debit guarded by the balance, one
// credit, one transfer row, in one write transaction on the writer.
func bareTransfer(ctx context.Context, w *sql.DB, p *transferStmts, from, to strata.ID, x int64) error {
	now := time.Now().UTC()
	ms := sqldb.Millis(now)
	tx, err := w.BeginTx(ctx, nil) // BEGIN IMMEDIATE (the DSN's _txlock)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	res, err := p.exec(ctx, tx, p.debit, debitSQL, x, ms, from)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("debit: %d rows, %v", n, err)
	}
	if _, err := p.exec(ctx, tx, p.credit, creditSQL, x, ms, to); err != nil {
		return err
	}
	if _, err := p.exec(ctx, tx, p.insert, transferSQL, strata.NewID("trf", 0, now), x, ms); err != nil {
		return err
	}
	return tx.Commit()
}

// ---- HTTP ------------------------------------------------------------------

// client is one simulated user: an account and its own keep-alive
// connection.
type client struct {
	http  *http.Client
	token string
	id    string
}

func newHTTPClient() *http.Client {
	return &http.Client{
		Timeout: 60 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns:        4,
			MaxIdleConnsPerHost: 4,
			IdleConnTimeout:     5 * time.Minute,
			DisableCompression:  true,
		},
	}
}

// call sends one request and answers the status and body.
func (cl *client) call(ctx context.Context, method, url string, body []byte, hdr ...string) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, nil, err
	}
	if cl.token != "" {
		req.Header.Set("Authorization", "Bearer "+cl.token)
	}
	if body != nil && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := cl.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// must calls and demands status want.
func (cl *client) must(ctx context.Context, want int, method, url string, body []byte, hdr ...string) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		status, b, err := cl.call(ctx, method, url, body, hdr...)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, url, err)
		}
		if status == want {
			return b, nil
		}
		// 429 and 503 ask to come back later (throttles, a busy database).
		if (status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable) && attempt < 20 {
			time.Sleep(time.Duration(200*(attempt+1)) * time.Millisecond)
			continue
		}
		return nil, fmt.Errorf("%s %s: HTTP %d (want %d): %s", method, url, status, want, bytes.TrimSpace(b))
	}
}

// parallel runs fn(i) for i in [0, n) on conc goroutines and returns the
// first error.
func parallel(n, conc int, fn func(i int) error) error {
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range max(1, min(conc, n)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				mu.Lock()
				stop := first != nil
				mu.Unlock()
				if stop {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// signupAll creates n accounts of role in parallel.
func signupAll(ctx context.Context, c config, run, role string, n int) ([]*client, error) {
	out := make([]*client, n)
	err := parallel(n, c.signupConc, func(i int) error {
		cl := &client{http: newHTTPClient()}
		body, _ := json.Marshal(map[string]string{"email": fmt.Sprintf("%s-%s%d@example.com", run, role, i),
			"password": password, "name": "Bench " + role, "role": role})
		b, err := cl.must(ctx, http.StatusCreated, "POST", c.url+"/v1/auth/signup", body)
		if err != nil {
			return err
		}
		var tr struct {
			AccessToken string `json:"access_token"`
			User        struct {
				ID string `json:"id"`
			} `json:"user"`
		}
		if err := json.Unmarshal(b, &tr); err != nil || tr.AccessToken == "" {
			return fmt.Errorf("signup answered no access_token: %s", b)
		}
		cl.token, cl.id = tr.AccessToken, tr.User.ID
		out[i] = cl
		return nil
	})
	return out, err
}

func topUpBody(amount int64) []byte {
	b, _ := json.Marshal(map[string]any{
		"amount": map[string]any{"amount": amount, "currency": "USD"},
		"card":   map[string]any{"number": "4242424242424242", "exp_month": 12, "exp_year": 2099, "cvc": "123"},
	})
	return b
}

var succeeded = []byte(`"status":"succeeded"`)

func runHTTP(ctx context.Context, c config) error {
	run := fmt.Sprintf("pb%d", time.Now().UnixNano())
	t0 := time.Now()
	buyers, err := signupAll(ctx, c, run, "buyer", c.clients)
	if err != nil {
		return fmt.Errorf("sign up buyers: %w", err)
	}
	log.Printf("%s: %d buyers signed up in %.1fs", c.mode, len(buyers), time.Since(t0).Seconds())

	var r result
	switch c.mode {
	case "topup":
		body := topUpBody(100)
		var seq atomic.Int64
		r = timed(ctx, c, "topup", true, func(ctx context.Context, i int) (time.Duration, string, string, bool) {
			key := run + "-t" + strconv.FormatInt(seq.Add(1), 10)
			d, errKey, msg := buyers[i].post(ctx, c.url+"/v1/topups", body, key, succeeded)
			return d, errKey, msg, true
		})
	case "purchase":
		r, err = runPurchases(ctx, c, run, buyers)
		if err != nil {
			return err
		}
	}
	r.print(c)
	return nil
}

// noKeys drops the Idempotency-Key from measured requests.
var noKeys bool

// post is one measured POST with a fresh Idempotency-Key: a success is a
// 201 whose body contains want (when want is not nil).
func (cl *client) post(ctx context.Context, url string, body []byte, key string, want []byte) (time.Duration, string, string) {
	start := time.Now()
	hdr := []string{"Idempotency-Key", key}
	if noKeys {
		hdr = nil
	}
	status, b, err := cl.call(ctx, "POST", url, body, hdr...)
	d := time.Since(start)
	switch {
	case err != nil:
		return d, "net", err.Error()
	case status != http.StatusCreated:
		return d, strconv.Itoa(status), fmt.Sprintf("HTTP %d: %s", status, b)
	case want != nil && !bytes.Contains(b, want):
		return d, "unexpected", string(b)
	}
	return d, "", ""
}

// tinyPNG is an 8×8 PNG: every item gets the same bytes (content-addressed,
// so stored once).
func tinyPNG() []byte {
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for x := range 8 {
		img.Set(x, x, color.RGBA{R: 200, A: 255})
	}
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// catalog is the items on sale, in creation order; buyers read it while
// setup appends to it.
type catalog struct {
	mu    sync.RWMutex
	items []string
}

func (k *catalog) get(i int) (string, bool) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	if i >= len(k.items) {
		return "", false
	}
	return k.items[i], true
}

func (k *catalog) add(ids []string) {
	k.mu.Lock()
	k.items = append(k.items, ids...)
	k.mu.Unlock()
}

func (k *catalog) len() int {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return len(k.items)
}

// makeItems creates n priced, published items, spread over the creators.
func makeItems(ctx context.Context, c config, creators []*client, file []byte, n, from int) ([]string, error) {
	ids := make([]string, n)
	err := parallel(n, c.setupConc, func(i int) error {
		cr := creators[(from+i)%len(creators)]
		body, _ := json.Marshal(map[string]any{"title": fmt.Sprintf("bench item %d", from+i),
			"price": map[string]any{"amount": 100, "currency": "USD"}})
		b, err := cr.must(ctx, http.StatusCreated, "POST", c.url+"/v1/items", body)
		if err != nil {
			return err
		}
		var it struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(b, &it); err != nil || it.ID == "" {
			return fmt.Errorf("POST /v1/items answered no id: %s", b)
		}
		if _, err := cr.must(ctx, http.StatusAccepted, "PUT", c.url+"/v1/items/"+it.ID+"/file?filename=bench.png", file,
			"Content-Type", "application/octet-stream"); err != nil {
			return err
		}
		deadline := time.Now().Add(60 * time.Second)
		for {
			b, err := cr.must(ctx, http.StatusOK, "GET", c.url+"/v1/items/"+it.ID, nil)
			if err != nil {
				return err
			}
			var got struct {
				Asset *struct {
					Status string `json:"status"`
				} `json:"asset"`
			}
			if err := json.Unmarshal(b, &got); err != nil {
				return fmt.Errorf("GET /v1/items/%s: %w", it.ID, err)
			}
			status := ""
			if got.Asset != nil {
				status = got.Asset.Status
			}
			if status == "ready" {
				break
			}
			if status != "processing" || time.Now().After(deadline) {
				return fmt.Errorf("item %s: asset %q, want ready (processing gets 60s): %s", it.ID, status, b)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if _, err := cr.must(ctx, http.StatusOK, "POST", c.url+"/v1/items/"+it.ID+"/publish", nil); err != nil {
			return err
		}
		ids[i] = it.ID
		return nil
	})
	return ids, err
}

// runPurchases sets up creators, items and wallets, then buys.
func runPurchases(ctx context.Context, c config, run string, buyers []*client) (result, error) {
	t0 := time.Now()
	creators, err := signupAll(ctx, c, run, "creator", c.creators)
	if err != nil {
		return result{}, fmt.Errorf("sign up creators: %w", err)
	}
	// $100,000 each: 100,000 purchases of 1.00 USD, more than any run makes.
	const wallet = 10_000_000
	err = parallel(len(buyers), 8, func(i int) error {
		b, err := buyers[i].must(ctx, http.StatusCreated, "POST", c.url+"/v1/topups", topUpBody(wallet),
			"Idempotency-Key", run+"-fund-"+strconv.Itoa(i))
		if err == nil && !bytes.Contains(b, succeeded) {
			err = fmt.Errorf("funding top-up did not succeed: %s", b)
		}
		return err
	})
	if err != nil {
		return result{}, fmt.Errorf("top up buyers: %w", err)
	}
	file := tinyPNG()
	var cat catalog
	first := c.items
	if first <= 0 {
		// Enough for the warm-up at up to ~5,000 purchases/s.
		first = max(64, int(5000*c.warmup.Seconds())/c.clients+16)
		if c.stagger {
			first += len(buyers) // the last buyer starts that far in
		}
	}
	t1 := time.Now()
	ids, err := makeItems(ctx, c, creators, file, first, 0)
	if err != nil {
		return result{}, fmt.Errorf("create items: %w", err)
	}
	cat.add(ids)
	log.Printf("purchase: %d creators, %d buyers funded, %d items published in %.1fs (%.0f items/s); setup %.1fs so far",
		len(creators), len(buyers), len(ids), time.Since(t1).Seconds(), float64(len(ids))/time.Since(t1).Seconds(), time.Since(t0).Seconds())

	next := make([]int, len(buyers)) // each buyer's next item
	if c.stagger {
		for i := range next {
			next[i] = i
		}
	}
	var seq atomic.Int64
	buy := func(ctx context.Context, i int) (time.Duration, string, string, bool) {
		item, ok := cat.get(next[i])
		if !ok {
			return 0, "", "", false
		}
		next[i]++
		key := run + "-p" + strconv.FormatInt(seq.Add(1), 10)
		d, errKey, msg := buyers[i].post(ctx, c.url+"/v1/purchases", []byte(`{"item_id":"`+item+`"}`), key, nil)
		return d, errKey, msg, true
	}

	if c.warmup > 0 {
		recs, el, ranOut := phase(ctx, c, c.warmup, buy, nil)
		ok, _, errs := merge(recs)
		rate := float64(ok) / el.Seconds()
		log.Printf("purchase warm-up: %d in %.2fs (%.0f/s), errors %v, ran out %v", ok, el.Seconds(), rate, errs, ranOut)
		if c.items <= 0 {
			// Items for the timed phase at 1.5× the warm-up's rate, plus slack.
			need := int(rate*1.5*c.duration.Seconds()/float64(c.clients)) + 32
			left := cat.len() - slices.Max(next)
			if more := need - left; more > 0 {
				t2 := time.Now()
				ids, err := makeItems(ctx, c, creators, file, more, cat.len())
				if err != nil {
					return result{}, fmt.Errorf("create items: %w", err)
				}
				cat.add(ids)
				log.Printf("purchase: %d more items in %.1fs (%d in all)", more, time.Since(t2).Seconds(), cat.len())
			}
		}
	}
	r := timed(ctx, c, "purchase", false, buy)
	r.extra = strings.TrimSpace(r.extra + fmt.Sprintf(" items=%d", cat.len()))
	return r, nil
}
