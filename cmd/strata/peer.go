package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/stratadev/strata"
	"github.com/stratadev/strata/internal/content"
	"github.com/stratadev/strata/internal/discovery"
	"github.com/stratadev/strata/internal/gateway"
	"github.com/stratadev/strata/internal/payments"
)

// internalToken is the bearer secret of the service-to-service API, the
// same on every instance of a deployment: derived from the master key.
func internalToken(masterKey []byte) string {
	mac := hmac.New(sha256.New, masterKey)
	mac.Write([]byte("strata internal api v1"))
	return hex.EncodeToString(mac.Sum(nil))
}

// discoverySources are where the instances of each pool come from: the
// --upstream-* lists (http:// entries as they are, dns:// entries
// re-resolved) and, with --discovery=nats, instances announcing
// themselves on nc.
func discoverySources(s *settings, nc *nats.Conn, logger *slog.Logger) []discovery.Source {
	var static []discovery.Instance
	var sources []discovery.Source
	for _, pool := range gateway.Pools {
		for _, raw := range *s.upstreams[pool] {
			u, _ := url.Parse(raw) // validated
			if u.Scheme == "dns" {
				sources = append(sources, discovery.DNS(u.Host, "http", []string{pool}, s.discoveryRefresh, nil, logger))
				continue
			}
			static = append(static, discovery.Instance{URL: strings.TrimSuffix(raw, "/"), Roles: []string{pool}})
		}
	}
	if len(static) > 0 {
		sources = append(sources, discovery.Static(static...))
	}
	if s.discovery == "nats" && nc != nil {
		sources = append(sources, &discovery.Watcher{Conn: nc, Logger: logger})
	}
	return sources
}

// hasPeers reports whether instances of pool may be found other than in
// this process.
func hasPeers(s *settings, pool string) bool {
	return len(*s.upstreams[pool]) > 0 || s.discovery == "nats"
}

// peerClient calls another module's internal API through a gateway's
// pools: balanced, ejecting failed instances, retrying reads, breaking.
type peerClient struct {
	g     *gateway.Gateway
	pool  string
	token string
}

// get fetches path from an instance of the pool into v. A 404 is
// not_found; any other failure is unavailable (the caller's request
// fails with 503, and nothing was changed).
func (c peerClient) get(ctx context.Context, path string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, path, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.g.Do(req, c.pool)
	if err != nil {
		return c.unavailable(err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return strata.Errorf(strata.CodeNotFound, "not_found", "not found")
	case resp.StatusCode != http.StatusOK:
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return c.unavailable(fmt.Errorf("GET %s: status %d", path, resp.StatusCode))
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(v); err != nil {
		return c.unavailable(fmt.Errorf("decode GET %s: %w", path, err))
	}
	return nil
}

func (c peerClient) unavailable(cause error) error {
	e := strata.Errorf(strata.CodeUnavailable, "peer_unavailable", "the %s service is unavailable; retry shortly", c.pool)
	e.Err = cause
	return e
}

// remoteEntitlements is content's Entitlements over payments instances.
type remoteEntitlements struct{ peerClient }

func (r remoteEntitlements) Has(ctx context.Context, user, item strata.ID) (bool, error) {
	var e payments.Entitlement
	err := r.get(ctx, "/internal/v1/entitlements/"+url.PathEscape(user.String())+"/"+url.PathEscape(item.String()), &e)
	return e.Entitled, err
}

// remoteCatalog is payments' Catalog over content instances.
type remoteCatalog struct{ peerClient }

func (r remoteCatalog) Item(ctx context.Context, id strata.ID) (payments.CatalogItem, error) {
	var e content.CatalogEntry
	err := r.get(ctx, "/internal/v1/catalog/"+url.PathEscape(id.String()), &e)
	return payments.CatalogItem(e), err
}
