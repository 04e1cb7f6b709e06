package discovery

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"time"
)

// defaultDNSInterval is the refresh period of a DNS source whose interval
// is not positive.
const defaultDNSInterval = 5 * time.Second

// maxLookupTimeout bounds one DNS lookup; a shorter interval bounds it more.
const maxLookupTimeout = 5 * time.Second

// DNS resolves name (host:port, e.g. a Kubernetes headless service
// "payments.strata.svc:8080") every interval; each A/AAAA address becomes
// an instance "scheme://addr:port" with roles. A failed lookup keeps the last
// good set (and logs at warn); an update is sent only when the set changes
// (compare sorted URLs). resolver nil means net.DefaultResolver. A lookup
// times out after min(interval, 5s).
//
// A name that does not exist counts as a failed lookup too: a headless
// service with no ready pods answers NXDOMAIN, as does a DNS server having
// a bad moment, and dropping every instance on the second would be worse
// than keeping dead ones on the first (clients notice those by their
// connection errors). So no update is sent until a lookup succeeds, and the
// set is never empty. scheme "" means "http"; interval <= 0 means 5s;
// logger nil discards. Run returns an error at once if name is not
// host:port with a numeric port, or scheme is neither http nor https.
func DNS(name, scheme string, roles []string, interval time.Duration, resolver *net.Resolver, logger *slog.Logger) Source {
	if scheme == "" {
		scheme = "http"
	}
	if interval <= 0 {
		interval = defaultDNSInterval
	}
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &dnsSource{
		name:     name,
		scheme:   scheme,
		roles:    normalizeRoles(roles),
		interval: interval,
		resolver: resolver,
		logger:   logger,
	}
}

var _ Source = (*dnsSource)(nil)

type dnsSource struct {
	name     string
	scheme   string
	roles    []string
	interval time.Duration
	resolver *net.Resolver
	logger   *slog.Logger
}

func (s *dnsSource) Run(ctx context.Context, update func([]Instance)) error {
	host, port, err := net.SplitHostPort(s.name)
	if err != nil {
		return fmt.Errorf("discovery dns %q: %w", s.name, err)
	}
	if host == "" {
		return fmt.Errorf("discovery dns %q: no host", s.name)
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("discovery dns %q: port must be a number from 1 to 65535", s.name)
	}
	if s.scheme != "http" && s.scheme != "https" {
		return fmt.Errorf("discovery dns %q: scheme %q must be http or https", s.name, s.scheme)
	}

	ticker := time.NewTicker(s.interval)
	defer ticker.Stop()
	var last []string // sorted URLs of the last set sent; nil before the first
	for {
		urls, err := s.lookup(ctx, host, port)
		switch {
		case ctx.Err() != nil:
			return nil
		case err != nil:
			s.logger.Warn("discovery dns lookup", "name", s.name, "error", err, "instances_kept", len(last))
		case last == nil || !slices.Equal(urls, last):
			last = urls
			update(s.instances(urls))
		}
		select {
		case <-ctx.Done():
			return nil
		case <-ticker.C:
		}
	}
}

// lookup returns the sorted, distinct URLs that host's addresses make.
func (s *dnsSource) lookup(ctx context.Context, host, port string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, min(s.interval, maxLookupTimeout))
	defer cancel()
	addrs, err := s.resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, err
	}
	if len(addrs) == 0 { // the resolver reports this as an error; be sure
		return nil, fmt.Errorf("lookup %s: no addresses", host)
	}
	urls := make([]string, 0, len(addrs))
	for _, a := range addrs {
		// A zone would need escaping in a URL, and a DNS answer has none.
		urls = append(urls, s.scheme+"://"+net.JoinHostPort(a.Unmap().WithZone("").String(), port))
	}
	slices.Sort(urls)
	return slices.Compact(urls), nil
}

func (s *dnsSource) instances(urls []string) []Instance {
	out := make([]Instance, len(urls))
	for i, u := range urls {
		out[i] = Instance{URL: u, Roles: slices.Clone(s.roles)}
	}
	return out
}
