package gateway

import "strings"

// Pools are the module pools a gateway routes to, named after the roles
// whose instances serve them.
var Pools = []string{"auth", "content", "payments"}

// route sends the paths under prefix to pool. hashSegment, when set, is
// the path segment after the prefix that keys consistent hashing (the item
// id, the object's digest) so that one item's requests meet one instance's
// cache.
type route struct {
	prefix      string
	pool        string
	hashSegment bool
}

// routes maps the public API onto the modules, longest prefix first
// wins. A test checks it against api/openapi.yaml and each role's mux.
var routes = []route{
	{"/v1/auth/", "auth", false},
	{"/v1/admin/", "auth", false},
	{"/.well-known/", "auth", false},
	{"/v1/items/", "content", true},
	{"/v1/items", "content", false},
	{"/v1/uploads/", "content", true},
	{"/cdn/o/", "content", true},
	{"/cdn/t/", "content", true},
	{"/cdn/p/", "content", true},
	{"/v1/purchases", "payments", false},
	{"/v1/wallet", "payments", false},
	{"/v1/ledger/", "payments", false},
	{"/v1/topups", "payments", false},
	{"/v1/webhooks/", "payments", false},
}

// Route returns the pool serving path and the consistent-hash key of the
// request ("" when the route has none); ok is false for paths no module
// serves.
func Route(path string) (pool, key string, ok bool) {
	best := -1
	for i, r := range routes {
		if strings.HasPrefix(path, r.prefix) && (best < 0 || len(r.prefix) > len(routes[best].prefix)) {
			best = i
		}
	}
	if best < 0 {
		return "", "", false
	}
	r := routes[best]
	if r.hashSegment {
		key = path[len(r.prefix):]
		if i := strings.IndexByte(key, '/'); i >= 0 {
			key = key[:i]
		}
	}
	return r.pool, key, true
}
