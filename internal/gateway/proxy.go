package gateway

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/failsafe-go/failsafe-go/adaptivelimiter"
	"github.com/failsafe-go/failsafe-go/circuitbreaker"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/httpx"
	"github.com/stratadev/strata/internal/resilience"
)

// maxReplayBody is the largest request body buffered so that a retryable
// request can be sent again; a larger one is retried only when nothing of
// it was sent (a refused connection).
const maxReplayBody = 64 << 10

// Gateway is the reverse proxy. Make one with New, feed it instances with
// SetInstances (or a discovery.Source through Run), and serve it.
type Gateway struct {
	cfg       Config
	pools     map[string]*pool
	breakers  map[string]circuitbreaker.CircuitBreaker[any]
	transport *http.Transport
	dial      func(ctx context.Context, network, addr string) (net.Conn, error)
	limiter   Limiter
	adaptive  adaptivelimiter.AdaptiveLimiter[any]
	budget    retryBudget
	trust     bool
	metrics   *Metrics
	shed      [numShedReasons]*child[prometheus.Counter]
	log       *slog.Logger
	stop      context.CancelFunc
}

// Deps are a Gateway's collaborators. Limiter nil means the settings'
// LocalLimiter (or none when RateLimit is 0); Metrics nil records nothing.
type Deps struct {
	Config  Config
	Limiter Limiter
	Metrics *Metrics
	Logger  *slog.Logger
	// Pools are the pools to keep (nil: all of Pools): a module instance
	// calling one peer module checks that one's instances only.
	Pools []string
	// TrustProxyHeaders takes the client's address from X-Forwarded-For
	// (only behind a trusted proxy): it keys the rate limit and is passed on.
	TrustProxyHeaders bool
}

// New returns a gateway with empty pools. Close stops its health checks.
func New(d Deps) *Gateway {
	cfg := d.Config.withDefaults()
	if d.Metrics == nil {
		d.Metrics = NewMetrics(prometheus.NewRegistry())
	}
	ctx, stop := context.WithCancel(context.Background())
	dialer := &net.Dialer{Timeout: cfg.DialTimeout, KeepAlive: 30 * time.Second}
	g := &Gateway{
		cfg: cfg, pools: map[string]*pool{}, breakers: map[string]circuitbreaker.CircuitBreaker[any]{},
		transport: &http.Transport{
			DialContext:           dialer.DialContext,
			MaxIdleConns:          0, // bounded per instance
			MaxIdleConnsPerHost:   cfg.MaxIdlePerInstance,
			IdleConnTimeout:       idleConnTimeout,
			ResponseHeaderTimeout: cfg.HeaderTimeout,
			ExpectContinueTimeout: time.Second,
			DisableCompression:    true, // pass the client's Accept-Encoding and the instance's encoding through
			WriteBufferSize:       32 << 10,
			ReadBufferSize:        32 << 10,
		},
		dial:    dialer.DialContext,
		limiter: d.Limiter, trust: d.TrustProxyHeaders, metrics: d.Metrics, log: d.Logger, stop: stop,
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	if g.limiter == nil && cfg.RateLimit > 0 {
		g.limiter = NewLocalLimiter(cfg.RateLimit, cfg.RateBurst)
	}
	if cfg.AdaptiveLimit {
		g.adaptive = adaptivelimiter.NewBuilder[any]().
			WithLimits(uint(cfg.MinLimit), uint(cfg.MaxLimit), uint(min(max(cfg.MinLimit, 256), cfg.MaxLimit))).
			Build()
	}
	g.shed = g.metrics.sheds()
	g.budget = retryBudget{ratio: cfg.RetryBudget, min: int64(cfg.MinRetries)}
	checker := &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext, MaxIdleConnsPerHost: 2,
		IdleConnTimeout: 2 * cfg.HealthInterval}}
	pools := d.Pools
	if len(pools) == 0 {
		pools = Pools
	}
	for _, name := range pools {
		g.pools[name] = newPool(ctx, name, cfg, checker, g.metrics, g.log)
		g.pools[name].stats = g.metrics.forPool(name)
		g.breakers[name] = g.newBreaker(name)
	}
	return g
}

// newBreaker is a pool's circuit breaker: it opens when at least
// BreakerFailureRate of the last BreakerMinRequests or more requests in a
// BreakerWindow failed after their retries, answers 503 at once while
// open, and after BreakerDelay lets a few trial requests through.
func (g *Gateway) newBreaker(pool string) circuitbreaker.CircuitBreaker[any] {
	return resilience.NewBreaker(g.cfg.BreakerFailureRate, g.cfg.BreakerMinRequests, g.cfg.BreakerWindow, g.cfg.BreakerDelay,
		nil, g.metrics.breaker.WithLabelValues(pool), g.log, "pool", pool)
}

// Close stops the health checks and closes idle upstream connections.
func (g *Gateway) Close() {
	g.stop()
	g.transport.CloseIdleConnections()
	for _, p := range g.pools {
		p.closeConns()
	}
}

// SetInstances replaces the instances of pool (one of Pools).
func (g *Gateway) SetInstances(pool string, urls []string) {
	if p, ok := g.pools[pool]; ok {
		p.set(urls)
	}
}

// Status describes every pool's instances.
func (g *Gateway) Status() map[string][]InstanceStatus {
	out := map[string][]InstanceStatus{}
	for name, p := range g.pools {
		out[name] = p.snapshot()
	}
	return out
}

// ServeHTTP routes r to its pool and proxies it.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	poolName, key, ok := Route(r.URL.Path)
	if !ok {
		g.shed[shedNoRoute].get().Inc()
		httpx.WriteError(w, r, strata.Errorf(strata.CodeNotFound, "route_not_found", "no route for %s", r.URL.Path))
		return
	}
	if g.limiter != nil {
		client := httpx.ClientIP(r, g.trust)
		allowed, wait, err := g.limiter.Allow(r.Context(), client)
		switch {
		case err != nil:
			g.log.Warn("gateway: rate limiter unavailable; letting the request through", "error", err)
		case !allowed:
			g.shed[shedRateLimited].get().Inc()
			e := strata.Errorf(strata.CodeRateLimited, "rate_limited", "too many requests; retry later")
			e.RetryAfter = wait
			httpx.WriteError(w, r, e)
			return
		}
	}
	var permit limitPermit
	if g.adaptive != nil {
		var ok bool
		if permit.permit, ok = g.adaptive.TryAcquirePermit(); !ok {
			g.shed[shedOverloaded].get().Inc()
			httpx.WriteError(w, r, strata.Errorf(strata.CodeUnavailable, "overloaded", "the service is overloaded; retry shortly"))
			return
		}
		defer permit.drop() // a no-op once recorded
	}
	p, breaker := g.pools[poolName], g.breakers[poolName]
	if p == nil { // a gateway made for some pools only (a module's peer client)
		g.shed[shedNoInstance].get().Inc()
		httpx.WriteError(w, r, strata.Errorf(strata.CodeUnavailable, "no_instance", "no %s instance is available", poolName))
		return
	}
	if !breaker.TryAcquirePermit() {
		g.shed[shedBreakerOpen].get().Inc()
		e := strata.Errorf(strata.CodeUnavailable, "upstream_unavailable", "the %s service is failing; retry shortly", poolName)
		e.RetryAfter = breaker.RemainingDelay()
		httpx.WriteError(w, r, e)
		return
	}
	st := settle{breaker: breaker, stats: p.stats, start: time.Now()}
	status := g.proxy(w, r, p, key, &permit, &st)
	if !st.done { // the request ended before any answer (the client left, or none came)
		st.settle(status, r.Context().Err() != nil)
	}
	p.stats.requests[statusClass(status)].get().Inc()
}

// settle records, once, how the upstream answered a request: in the
// pool's breaker and latency histogram as soon as the status is known —
// before a long body streams, so that a download holds no half-open
// breaker permit and the histogram measures time to the response headers.
type settle struct {
	breaker circuitbreaker.CircuitBreaker[any]
	stats   *poolMetrics
	start   time.Time
	done    bool
}

func (s *settle) settle(status int, clientLeft bool) {
	if s.done {
		return
	}
	s.done = true
	switch {
	case clientLeft:
		// Says nothing about the upstream: a client that went away must
		// not open the breaker. A half-open breaker's trial permit is
		// given back as a success (failsafe-go has no neutral release).
		if s.breaker.IsHalfOpen() {
			s.breaker.RecordSuccess()
		}
		return
	case status >= 500 || status == 0:
		s.breaker.RecordFailure()
	default:
		s.breaker.RecordSuccess()
	}
	s.stats.duration.get().Observe(time.Since(s.start).Seconds())
}

// limitPermit is a request's permit of the adaptive limiter (none when the
// limiter is off), given back exactly once: recorded when the response
// headers arrive, dropped if the request ends otherwise. The limiter's
// Record and Drop each release the permit, so calling both would release
// another request's.
type limitPermit struct {
	permit adaptivelimiter.Permit
	done   bool
}

func (p *limitPermit) record() {
	if p.permit != nil && !p.done {
		p.done = true
		p.permit.Record()
	}
}

func (p *limitPermit) drop() {
	if p.permit != nil && !p.done {
		p.done = true
		p.permit.Drop()
	}
}

// proxy sends r to instances of p until one answers or the tries run out,
// and streams the answer back. It returns the status sent (0 when the
// client went away before one was).
func (g *Gateway) proxy(w http.ResponseWriter, r *http.Request, p *pool, key string, permit *limitPermit, st *settle) int {
	body, replay, err := replayableBody(r)
	if err != nil {
		httpx.WriteError(w, r, strata.Errorf(strata.CodeInvalid, "body_unreadable", "the request body could not be read"))
		return http.StatusBadRequest
	}
	defer body.close()
	resp, err := g.roundTrip(r, g.outHeader(r), p, key, body, replay, true)
	switch {
	case r.Context().Err() != nil:
		if resp != nil {
			resp.Body.Close()
		}
		return 0 // the client left: no one to answer
	case errors.Is(err, errNoInstance):
		g.shed[shedNoInstance].get().Inc()
		httpx.WriteError(w, r, strata.Errorf(strata.CodeUnavailable, "no_instance", "no %s instance is available; retry shortly", p.name))
		return http.StatusServiceUnavailable
	case err != nil:
		g.log.Warn("gateway: upstream request failed", "pool", p.name, "path", r.URL.Path, "error", err)
		httpx.WriteError(w, r, strata.Errorf(strata.CodeUnavailable, "upstream_failed", "the %s service did not answer; retry shortly", p.name))
		return http.StatusServiceUnavailable
	}
	st.settle(resp.StatusCode, false)
	return g.respond(w, r, resp, permit)
}

var errNoInstance = errors.New("no instance available")

// roundTrip sends r to instances of p until one answers for good or the
// tries run out: the response of the last try, or its error (errNoInstance
// when no instance was there to try).
//
// With proxying set, a request that may take the direct path (upstream.go)
// does: the caller then reads and closes the response body in one
// goroutine.
func (g *Gateway) roundTrip(r *http.Request, header http.Header, p *pool, key string, body *requestBody, replay, proxying bool) (*http.Response, error) {
	ctx := r.Context()
	idempotent := isIdempotent(r)
	g.budget.begin()
	defer g.budget.end()
	var tried []*instance // the instances tried before this attempt
	in, ok := p.pick(key, nil)
	if !ok {
		return nil, errNoInstance
	}
	for attempt := 1; ; attempt++ {
		out := (&http.Request{
			Method: r.Method, URL: &url.URL{Scheme: in.url.Scheme, Host: in.url.Host, Path: r.URL.Path,
				RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery},
			Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			Header: header, Host: r.Host, ContentLength: r.ContentLength,
		}).WithContext(ctx)
		if r.ContentLength != 0 {
			out.Body = body.reader(replay)
		}
		began := in.load.Start()
		var resp *http.Response
		var err error
		if proxying && direct(out) {
			resp, err = g.roundTripDirect(out, in)
		} else {
			resp, err = g.transport.RoundTrip(out)
		}
		failed := err != nil || resp.StatusCode >= 500
		in.load.Done(began, failed)
		outcome := outcomeOK
		switch {
		case err != nil && refused(err):
			outcome = outcomeRefused
		case err != nil:
			outcome = outcomeError
		case failed:
			outcome = outcome5xx
		}
		p.stats.attempts[outcome].get().Inc()
		if ctx.Err() != nil { // the caller left; nothing to blame the instance for
			if resp != nil {
				resp.Body.Close()
			}
			return nil, ctx.Err()
		}
		if failed {
			p.failed(in)
		} else {
			p.succeeded(in)
		}
		retryable := attempt < g.cfg.MaxAttempts &&
			(outcome == outcomeRefused || (idempotent && (err != nil || retryableStatus(resp.StatusCode)))) &&
			body.unsent(replay) // last: it fences the body off from this try
		if !retryable {
			if failed && attempt < g.cfg.MaxAttempts {
				p.stats.retries[notRetryable].get().Inc()
			}
			return resp, err
		}
		// A refused connection reached no instance, so its retry adds no
		// load: only retries of requests that did count against the budget.
		if outcome != outcomeRefused {
			if !g.budget.acquire() {
				p.stats.retries[budgetExhausted].get().Inc()
				return resp, err
			}
			defer g.budget.release()
		}
		tried = append(tried, in) // here, so that a request that is not retried allocates nothing for it
		next, ok := p.pick(key, tried)
		if !ok { // every instance was tried: the last answer stands
			p.stats.retries[noInstanceLeft].get().Inc()
			return resp, err
		}
		p.stats.retries[retried].get().Inc()
		if resp != nil {
			io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if !sleep(ctx, backoff(g.cfg.RetryBackoff, attempt)) {
			return nil, ctx.Err()
		}
		in = next
	}
}

// respond streams resp back to the client.
func (g *Gateway) respond(w http.ResponseWriter, r *http.Request, resp *http.Response, permit *limitPermit) int {
	defer resp.Body.Close()
	permit.record() // the limiter learns from time to first byte, not from how long a download streams
	h := w.Header()
	removeHopHeaders(resp.Header)
	for k, vv := range resp.Header {
		h[k] = vv
	}
	w.WriteHeader(resp.StatusCode)
	if r.Method == http.MethodHead || resp.StatusCode == http.StatusNoContent || resp.StatusCode == http.StatusNotModified {
		return resp.StatusCode
	}
	buf := copyBuffers.Get().(*[]byte)
	defer copyBuffers.Put(buf)
	var err error
	if resp.ContentLength < 0 { // a stream of unknown length: pass each piece on as it comes
		_, err = io.CopyBuffer(flushWriter{w, http.NewResponseController(w)}, resp.Body, *buf)
	} else {
		err = copyBody(w, resp.Body, *buf)
	}
	if err != nil && r.Context().Err() == nil {
		g.log.Warn("gateway: response cut short", "path", r.URL.Path, "error", err)
	}
	return resp.StatusCode
}

var copyBuffers = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// copyBody copies body to w through buf with Read and Write only. Not
// io.Copy: it would hand the body to the ResponseWriter's ReadFrom, which
// has no sendfile to offer for a body that is never a file, and instead
// sends the headers in a write of their own and the body through a 32 KiB
// buffer net allocates per response. Through Write, a small answer leaves
// in one write, headers and body together, when the handler returns.
func copyBody(w io.Writer, body io.Reader, buf []byte) error {
	for {
		n, rerr := body.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return err
			}
		}
		switch {
		case rerr == io.EOF:
			return nil
		case rerr != nil:
			return rerr
		}
	}
}

type flushWriter struct {
	w  io.Writer
	rc *http.ResponseController
}

func (f flushWriter) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err == nil {
		err = f.rc.Flush()
	}
	return n, err
}

// outHeader is the request's header as the instance gets it: hop-by-hop
// headers removed, the forwarding headers set, the request id and the
// trace context passed on.
func (g *Gateway) outHeader(r *http.Request) http.Header {
	h := make(http.Header, len(r.Header)+5)
	for k, vv := range r.Header {
		h[k] = vv
	}
	removeHopHeaders(h)
	// The values set below share one array: one allocation, not five.
	vals := make([]string, 0, 5)
	set := func(name, value string) {
		vals = append(vals, value)
		h[name] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	client := clientAddr(r)
	if prior := h["X-Forwarded-For"]; g.trust && len(prior) > 0 {
		set("X-Forwarded-For", strings.Join(prior, ", ")+", "+client)
	} else {
		set("X-Forwarded-For", client)
	}
	proto := "http"
	if r.TLS != nil {
		proto = "https"
	}
	if !g.trust || h.Get("X-Forwarded-Proto") == "" {
		set("X-Forwarded-Proto", proto)
	}
	if !g.trust || h.Get("X-Forwarded-Host") == "" {
		set("X-Forwarded-Host", r.Host)
	}
	if id := httpx.RequestIDFrom(r.Context()); id != "" {
		set(httpx.HeaderRequestID, id)
	}
	set("Traceparent", nextTraceparent(r.Header.Get("Traceparent")))
	if _, ok := h["User-Agent"]; !ok {
		h["User-Agent"] = noUserAgent // keep Go's default out
	}
	return h
}

// noUserAgent is the User-Agent of a request that had none; shared, never
// modified (the transport only reads the header).
var noUserAgent = []string{""}

func clientAddr(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// hopHeaders are meaningful for one connection only (RFC 9110 §7.6.1).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Trailer", "Transfer-Encoding", "Upgrade"}

func removeHopHeaders(h http.Header) {
	for _, v := range h["Connection"] {
		for _, name := range strings.Split(v, ",") {
			if name = strings.TrimSpace(name); name != "" {
				h.Del(name)
			}
		}
	}
	for _, name := range hopHeaders {
		delete(h, name)
	}
}

// nextTraceparent continues the W3C trace context of the request with a
// span of the gateway's own, or starts a trace when there is none (or it
// is malformed): version 00, trace id, parent id, flags.
func nextTraceparent(in string) string {
	// Written in place: one allocation, the string.
	var out [55]byte
	if len(in) == 55 && in[2] == '-' && in[35] == '-' && in[52] == '-' && in[:2] != "ff" &&
		isHex(in[3:35]) && isHex(in[36:52]) && isHex(in[53:55]) && in[3:35] != zeroTraceID {
		var span [8]byte
		cryptoRand(span[:])
		copy(out[:], in)
		hex.Encode(out[36:52], span[:])
		return string(out[:])
	}
	var ids [24]byte // trace id, then span id
	cryptoRand(ids[:])
	copy(out[:], "00-")
	hex.Encode(out[3:35], ids[:16])
	out[35] = '-'
	hex.Encode(out[36:52], ids[16:])
	copy(out[52:], "-00")
	return string(out[:])
}

// zeroTraceID is the trace id W3C Trace Context declares invalid.
const zeroTraceID = "00000000000000000000000000000000"

func cryptoRand(b []byte) {
	_, _ = crand.Read(b) // never fails (Go 1.24+)
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// isIdempotent reports whether sending r twice has the effect of once:
// safe methods, and requests carrying an Idempotency-Key (the instances
// replay the first answer).
func isIdempotent(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	return r.Header.Get("Idempotency-Key") != ""
}

func retryableStatus(code int) bool {
	return code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout
}

// refused reports whether err means the instance never got the request:
// the connection was refused or could not be made.
func refused(err error) bool {
	var op *net.OpError
	return errors.Is(err, syscall.ECONNREFUSED) || (errors.As(err, &op) && op.Op == "dial")
}

// statusClass is the index in statusClasses of status's class.
func statusClass(status int) int {
	switch {
	case status == 0:
		return 0 // canceled
	case status < 200:
		return 1
	case status < 300:
		return 2
	case status < 400:
		return 3
	case status < 500:
		return 4
	}
	return 5
}

// backoff is the wait before retry n (n ≥ 1): random up to base·2ⁿ⁻¹
// ("full jitter"), so that retries from many clients spread out.
func backoff(base time.Duration, n int) time.Duration {
	ceiling := base << min(n-1, 10)
	if ceiling <= 0 {
		return 0
	}
	return rand.N(ceiling)
}

func sleep(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// retryBudget bounds the retries in flight to a fraction of the requests
// in flight (at least min of them), so that when an upstream fails,
// retries add a bounded load instead of multiplying it.
type retryBudget struct {
	ratio             float64
	min               int64
	requests, retries atomic.Int64
}

func (b *retryBudget) begin() { b.requests.Add(1) }
func (b *retryBudget) end()   { b.requests.Add(-1) }

func (b *retryBudget) acquire() bool {
	n := b.retries.Add(1)
	if n <= b.min || float64(n) <= b.ratio*float64(b.requests.Load()) {
		return true
	}
	b.retries.Add(-1)
	return false
}

func (b *retryBudget) release() { b.retries.Add(-1) }

// requestBody is a request body as the tries see it: buffered when small
// enough to send again, else streamed once.
type requestBody struct {
	orig io.ReadCloser
	buf  []byte

	mu      sync.Mutex // held while a try reads the streamed body
	started bool       // a try began reading it
	gen     int        // the try that may read it; earlier tries are fenced off
}

// replayableBody reads a retryable request's small body into memory so
// it can be sent again; other bodies stream.
func replayableBody(r *http.Request) (*requestBody, bool, error) {
	if r.Body == nil || r.Body == http.NoBody {
		return noBody, true, nil
	}
	b := &requestBody{orig: r.Body}
	if r.ContentLength == 0 {
		return b, true, nil
	}
	if !isIdempotent(r) || r.ContentLength < 0 || r.ContentLength > maxReplayBody {
		return b, false, nil
	}
	buf := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, buf); err != nil {
		return b, false, err
	}
	b.buf = buf
	return b, true, nil
}

// noBody is every bodiless request's requestBody: nothing to read, send or
// close, so one value serves all.
var noBody = &requestBody{}

// reader is the body of one try. A streamed body is handed out as is
// but kept open: a try that fails before reading any of it (a refused
// connection) leaves it whole for the next.
func (b *requestBody) reader(replay bool) io.ReadCloser {
	if replay {
		if b.buf == nil {
			return http.NoBody
		}
		return io.NopCloser(bytes.NewReader(b.buf))
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return streamOnce{b, b.gen}
}

// unsent reports whether the body can go to another instance: it is
// buffered, or no try ever began reading it — and then it fences the
// tries so far off, for a transport may start reading after it returned
// an answer (its writer runs on): their reads fail from now on.
func (b *requestBody) unsent(replay bool) bool {
	if replay {
		return true
	}
	if !b.mu.TryLock() { // a try is inside a read right now
		return false
	}
	defer b.mu.Unlock()
	if b.started {
		return false
	}
	b.gen++
	return true
}

func (b *requestBody) close() {
	if b.orig != nil {
		b.orig.Close()
	}
}

type streamOnce struct {
	b   *requestBody
	gen int
}

var errBodyFenced = errors.New("request body handed to another try")

func (s streamOnce) Read(p []byte) (int, error) {
	s.b.mu.Lock()
	defer s.b.mu.Unlock()
	if s.gen != s.b.gen {
		return 0, errBodyFenced
	}
	s.b.started = true
	return s.b.orig.Read(p)
}

func (s streamOnce) Close() error { return nil } // the handler's body; closed once, by proxy
