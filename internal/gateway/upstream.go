package gateway

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
)

// The direct path: bodiless requests that may be sent twice (GET, HEAD,
// OPTIONS, TRACE, or carrying an Idempotency-Key), to http:// instances,
// skip http.Transport. The request is written and its response read in the
// handler's own goroutine, over keep-alive connections each instance keeps
// for it (instance.conns). http.Transport hands each request to two
// goroutines of its own, a writer and a reader per connection, and back:
// four goroutine switches, channels, a timer and a cancelable context per
// request: the direct path takes about a fifth off the gateway's CPU per
// proxied request (bench/gateway.sh, docs/benchmarks.md). The bytes on the
// wire are the same: the request is written and the response parsed by
// net/http itself (Request.Write, ReadResponse).
//
// What http.Transport would do and the direct path does too: a response
// header timeout (HeaderTimeout), the request abandoned when its context
// ends, 1xx responses skipped (at most 5), a connection reused only when
// its response was read to the end and neither side asked to close it,
// idle connections closed after idleConnTimeout, and a request that fails
// on a reused connection before any byte of the answer arrived sent again
// on another (the instance may have closed it meanwhile; these requests
// may be sent twice). Requests with a body, with Expect, or to https://
// instances, and all of Gateway.Do's (whose callers may close a body from
// another goroutine), use http.Transport.

// idleConnTimeout is how long a connection may stay unused before it is
// closed, as http.Transport's IdleConnTimeout.
const idleConnTimeout = 90 * time.Second

// max1xx is how many informational responses may precede the final one.
const max1xx = 5

// maxStale bounds the reused connections a request tries before it dials
// a new one.
const maxStale = 2

// direct reports whether out may take the direct path.
func direct(out *http.Request) bool {
	if out.URL.Scheme != "http" || out.ContentLength != 0 || out.Body != nil {
		return false
	}
	if _, ok := out.Header["Expect"]; ok {
		return false
	}
	switch out.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return true
	}
	_, ok := out.Header["Idempotency-Key"]
	return ok
}

// conns are an instance's idle keep-alive connections for the direct
// path, the most recently used first out.
type conns struct {
	mu     sync.Mutex
	idle   []*upConn
	max    int
	closed bool
}

// upConn is one connection of the direct path.
type upConn struct {
	nc       net.Conn
	br       *bufio.Reader
	bw       *bufio.Writer
	idleFrom time.Time
	owner    *conns
}

// get returns an idle connection (reused true), or dials a new one.
func (cs *conns) get(ctx context.Context, dial func(ctx context.Context, network, addr string) (net.Conn, error), addr string, fresh bool) (*upConn, bool, error) {
	if !fresh {
		now := time.Now()
		cs.mu.Lock()
		for n := len(cs.idle); n > 0; n = len(cs.idle) {
			c := cs.idle[n-1]
			cs.idle[n-1] = nil
			cs.idle = cs.idle[:n-1]
			if now.Sub(c.idleFrom) < idleConnTimeout {
				cs.mu.Unlock()
				return c, true, nil
			}
			c.nc.Close()
		}
		cs.mu.Unlock()
	}
	nc, err := dial(ctx, "tcp", addr)
	if err != nil {
		return nil, false, err
	}
	return &upConn{nc: nc, br: bufio.NewReaderSize(nc, 32<<10), bw: bufio.NewWriterSize(nc, 32<<10), owner: cs}, false, nil
}

// put keeps c for the next request, or closes it when enough are kept.
func (cs *conns) put(c *upConn) {
	c.idleFrom = time.Now()
	cs.mu.Lock()
	if !cs.closed && len(cs.idle) < cs.max {
		cs.idle = append(cs.idle, c)
		cs.mu.Unlock()
		return
	}
	cs.mu.Unlock()
	c.nc.Close()
}

// expire closes the connections idle for idleConnTimeout or longer.
func (cs *conns) expire(now time.Time) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	keep := cs.idle[:0]
	for _, c := range cs.idle {
		if now.Sub(c.idleFrom) < idleConnTimeout {
			keep = append(keep, c)
		} else {
			c.nc.Close()
		}
	}
	clear(cs.idle[len(keep):])
	cs.idle = keep
}

// closeIdle closes the idle connections; with forever, the ones in use are
// closed when their request ends instead of being kept.
func (cs *conns) closeIdle(forever bool) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	for _, c := range cs.idle {
		c.nc.Close()
	}
	clear(cs.idle)
	cs.idle = cs.idle[:0]
	cs.closed = cs.closed || forever
}

// errNothingRead marks a failure before any byte of the answer arrived.
type errNothingRead struct{ err error }

func (e errNothingRead) Error() string { return e.err.Error() }
func (e errNothingRead) Unwrap() error { return e.err }

// roundTripDirect sends out over one of in's connections and reads the
// answer's headers; the body streams from the connection as it is read.
func (g *Gateway) roundTripDirect(out *http.Request, in *instance) (*http.Response, error) {
	ctx := out.Context()
	for tries := 0; ; tries++ {
		c, reused, err := in.conns.get(ctx, g.dial, in.url.Host, tries >= maxStale)
		if err != nil {
			return nil, err
		}
		resp, err := c.roundTrip(ctx, out, g.cfg.HeaderTimeout)
		if err == nil {
			return resp, nil
		}
		c.nc.Close()
		var nothing errNothingRead
		if !reused || !errors.As(err, &nothing) || ctx.Err() != nil {
			return nil, err
		}
	}
}

// aLongTimeAgo is a deadline in the past: it interrupts a pending read.
var aLongTimeAgo = time.Unix(1, 0)

func (c *upConn) roundTrip(ctx context.Context, out *http.Request, headerTimeout time.Duration) (*http.Response, error) {
	stop := context.AfterFunc(ctx, func() { c.nc.SetDeadline(aLongTimeAgo) })
	fail := func(err error) (*http.Response, error) {
		stop()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, err
	}
	if err := out.Write(c.bw); err != nil {
		return fail(errNothingRead{err})
	}
	if err := c.bw.Flush(); err != nil {
		return fail(errNothingRead{err})
	}
	if err := c.nc.SetReadDeadline(time.Now().Add(headerTimeout)); err != nil {
		return fail(err)
	}
	if _, err := c.br.Peek(1); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return fail(fmt.Errorf("timeout awaiting response headers: %w", err))
		}
		return fail(errNothingRead{err})
	}
	var resp *http.Response
	for n1xx := 0; ; n1xx++ {
		var err error
		if resp, err = http.ReadResponse(c.br, out); err != nil {
			return fail(err)
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			break
		}
		if n1xx == max1xx {
			return fail(errors.New("too many 1xx informational responses"))
		}
	}
	// The body may take longer than the headers could. A body already
	// buffered whole reads nothing more from the connection, and the next
	// request sets its own deadline: no need to clear it then.
	if resp.ContentLength < 0 || int64(c.br.Buffered()) < resp.ContentLength {
		if err := c.nc.SetReadDeadline(time.Time{}); err != nil {
			return fail(err)
		}
	}
	b := &upBody{rc: resp.Body, c: c, stop: stop,
		keep: !resp.Close && resp.StatusCode != http.StatusSwitchingProtocols}
	if resp.Body == http.NoBody {
		b.finish(true)
		return resp, nil
	}
	resp.Body = b
	return resp, nil
}

// upBody is the body of a direct response: its connection goes back to
// the instance once the body was read to the end, and is closed if the
// body is closed before. Unlike http.Transport's, it is not safe for
// concurrent use: Close must not be called while a Read is running (the
// proxy reads and closes it in the handler's goroutine).
type upBody struct {
	rc   io.ReadCloser
	c    *upConn
	stop func() bool
	keep bool
	done bool
	eof  bool
}

func (b *upBody) Read(p []byte) (int, error) {
	if b.done {
		if b.eof {
			return 0, io.EOF
		}
		return 0, errBodyClosed
	}
	n, err := b.rc.Read(p)
	switch {
	case err == io.EOF:
		b.eof = true
		b.finish(true)
	case err != nil:
		b.finish(false)
	}
	return n, err
}

var errBodyClosed = errors.New("read on closed response body")

func (b *upBody) Close() error {
	if !b.done {
		b.finish(false)
	}
	return nil
}

// finish gives the connection back (read to the end) or closes it.
func (b *upBody) finish(whole bool) {
	b.done = true
	if b.stop() && whole && b.keep {
		b.c.owner.put(b.c)
		return
	}
	b.c.nc.Close()
}
