package webhook

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ErrForbiddenAddress is wrapped by the error of a delivery whose
// connection was refused because the address it was about to connect to
// is loopback, private, link-local, metadata or otherwise not public.
var ErrForbiddenAddress = errors.New("webhook: address not allowed")

// Resolver looks host names up; *net.Resolver satisfies it.
type Resolver interface {
	LookupNetIP(ctx context.Context, network, host string) ([]netip.Addr, error)
}

// extraForbidden are the ranges refused besides those netip classifies
// (loopback, RFC 1918 and fc00::/7 private, link-local, multicast,
// unspecified).
var extraForbidden = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT, shared address space
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, broadcast included
	netip.MustParsePrefix("169.254.0.0/16"),  // link-local: cloud metadata 169.254.169.254
	netip.MustParsePrefix("fd00:ec2::/32"),   // AWS metadata fd00:ec2::254 (inside fc00::/7 too)
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("::ffff:0:0:0/96"), // IPv4-translated
}

// nat64 embeds an IPv4 address in its last 32 bits; the embedded address
// decides.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// forbidden reports why connecting to a is refused, or "" when a is a
// public unicast address.
func forbidden(a netip.Addr) string {
	a = a.Unmap().WithZone("")
	if a.Is6() && nat64.Contains(a) {
		b := a.As16()
		return forbidden(netip.AddrFrom4([4]byte(b[12:])))
	}
	switch {
	case !a.IsValid():
		return "invalid"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a == netip.MustParseAddr("169.254.169.254") || a == netip.MustParseAddr("fd00:ec2::254"):
		return "cloud metadata"
	case a.IsLinkLocalUnicast():
		return "link-local"
	case a.IsPrivate():
		return "private"
	case a.IsMulticast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast():
		return "multicast"
	}
	for _, p := range extraForbidden {
		if p.Contains(a) {
			return "reserved"
		}
	}
	return ""
}

// checkAddr returns an error wrapping ErrForbiddenAddress when a must not
// be reached.
func checkAddr(a netip.Addr) error {
	if why := forbidden(a); why != "" {
		return fmt.Errorf("%w: %s is %s", ErrForbiddenAddress, a, why)
	}
	return nil
}

// dialer connects to a webhook's host. It resolves the name itself and
// dials each address in turn through a net.Dialer whose Control refuses
// forbidden addresses: the check runs on the address of the socket about
// to connect, after resolution, so a name that resolves (or re-resolves,
// DNS rebinding) to a private address is refused too.
type dialer struct {
	resolver     Resolver
	allowPrivate bool
	net          net.Dialer
}

func newDialer(resolver Resolver, allowPrivate bool, timeout time.Duration) *dialer {
	if resolver == nil {
		resolver = net.DefaultResolver
	}
	d := &dialer{resolver: resolver, allowPrivate: allowPrivate}
	d.net = net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second, Control: d.control}
	return d
}

// control vets the address of a socket before it connects.
func (d *dialer) control(network, address string, _ syscall.RawConn) error {
	if d.allowPrivate {
		return nil
	}
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("%w: cannot parse %q", ErrForbiddenAddress, address)
	}
	return checkAddr(ap.Addr())
}

// DialContext resolves addr's host and dials its addresses in order until
// one connects.
func (d *dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	var ips []netip.Addr
	if ip, err := netip.ParseAddr(host); err == nil {
		ips = []netip.Addr{ip}
	} else {
		ips, err = d.resolver.LookupNetIP(ctx, "ip", host)
		if err != nil {
			return nil, err
		}
		if len(ips) == 0 {
			return nil, fmt.Errorf("lookup %s: no addresses", host)
		}
	}
	var errs []error
	for _, ip := range ips {
		c, err := d.net.DialContext(ctx, network, net.JoinHostPort(ip.Unmap().String(), port))
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
		if ctx.Err() != nil {
			break
		}
	}
	return nil, errors.Join(errs...)
}

// maxRedirects is zero: a delivery follows no redirect. A 3xx is a failed
// attempt, like any other non-2xx; receivers configure the final URL.
// Following none is simpler and safer than re-checking every hop.

// NewClient returns the HTTP client deliveries are sent with: the
// connect-time address check of cfg.AllowPrivate on every dial, addresses
// resolved by resolver (net.DefaultResolver when nil), no proxy from the
// environment, no redirects followed, and cfg.Timeout on each request.
func NewClient(cfg Config, resolver Resolver) *http.Client {
	cfg = cfg.withDefaults()
	d := newDialer(resolver, cfg.AllowPrivate, cfg.Timeout)
	return &http.Client{
		Timeout: cfg.Timeout,
		Transport: &http.Transport{
			Proxy:                 nil,
			DialContext:           d.DialContext,
			ForceAttemptHTTP2:     true,
			TLSHandshakeTimeout:   cfg.Timeout,
			ResponseHeaderTimeout: cfg.Timeout,
			MaxIdleConns:          64,
			MaxIdleConnsPerHost:   4,
			IdleConnTimeout:       90 * time.Second,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// maxURL bounds an endpoint URL.
const maxURL = 2048

// checkURL validates an endpoint URL: absolute http or https, with a host,
// no user information and no fragment, at most maxURL bytes; unless
// allowPrivate, a literal IP address must be public and the host must not
// be localhost. Names are not resolved here: the connect-time check is
// the one that counts. It returns the URL to store.
func checkURL(raw string, allowPrivate bool) (string, error) {
	bad := func(msg string) (string, error) { return "", invalidField("url", msg) }
	if raw == "" {
		return bad("is required")
	}
	if len(raw) > maxURL {
		return bad(fmt.Sprintf("must be at most %d bytes", maxURL))
	}
	u, err := url.Parse(raw)
	if err != nil {
		return bad("is not a valid URL")
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return bad("must be an http or https URL")
	}
	if u.Opaque != "" || u.Host == "" || u.Hostname() == "" {
		return bad("must have a host")
	}
	if u.User != nil {
		return bad("must not contain user information")
	}
	if u.Fragment != "" || strings.Contains(raw, "#") {
		return bad("must not have a fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return bad("has an invalid port")
		}
	}
	if !allowPrivate {
		host := strings.ToLower(strings.TrimSuffix(u.Hostname(), "."))
		if host == "localhost" || strings.HasSuffix(host, ".localhost") {
			return bad("must not point at localhost")
		}
		if ip, err := netip.ParseAddr(host); err == nil {
			if why := forbidden(ip); why != "" {
				return bad("must not point at a non-public address (" + why + ")")
			}
		}
	}
	return u.String(), nil
}
