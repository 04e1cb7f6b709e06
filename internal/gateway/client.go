package gateway

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/stratadev/strata/internal/httpx"
)

// Do sends req to an instance of pool, with the gateway's balancing,
// ejection, retries and breaker: the client of one Strata module calling
// another. req's URL needs only a path (and query); the instance supplies
// scheme and host. A request with a body is retried only when its
// connection was refused, unless the body is small and req is idempotent.
func (g *Gateway) Do(req *http.Request, pool string) (*http.Response, error) {
	p, ok := g.pools[pool]
	if !ok {
		return nil, fmt.Errorf("gateway: unknown pool %q", pool)
	}
	breaker := g.breakers[pool]
	if !breaker.TryAcquirePermit() {
		return nil, fmt.Errorf("%s: %w", pool, ErrBreakerOpen)
	}
	if req.Host == "" {
		req.Host = pool
	}
	h := req.Header.Clone()
	if h == nil {
		h = http.Header{}
	}
	if id := httpx.RequestIDFrom(req.Context()); id != "" && h.Get(httpx.HeaderRequestID) == "" {
		h.Set(httpx.HeaderRequestID, id)
	}
	body, replay, err := replayableBody(req)
	if err != nil {
		return nil, fmt.Errorf("read request body: %w", err)
	}
	st := settle{breaker: breaker, stats: p.stats, start: time.Now()}
	resp, err := g.roundTrip(req, h, p, "", body, replay, false)
	status := 0
	if err == nil {
		status = resp.StatusCode
	}
	st.settle(status, req.Context().Err() != nil)
	if err != nil {
		body.close()
		return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Path, err)
	}
	resp.Body = closeBoth{resp.Body, body}
	return resp, nil
}

// ErrBreakerOpen is returned by Do while the pool's circuit breaker is open.
var ErrBreakerOpen = errors.New("circuit breaker open")

// closeBoth closes the request's body with the response's: a streamed
// request body may still be read until the response ends.
type closeBoth struct {
	io.ReadCloser
	req *requestBody
}

func (c closeBoth) Close() error {
	err := c.ReadCloser.Close()
	c.req.close()
	return err
}
