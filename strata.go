// Package strata holds the shared vocabulary of the Strata backend: the error
// type and its codes, identifiers, money, the authenticated Principal and the
// clock. It imports nothing under internal/, so every package may use it.
package strata

import (
	"context"
	"slices"
	"time"
)

// Role names a set of permissions a user holds.
type Role string

// The roles Strata knows.
const (
	RoleBuyer   Role = "buyer"
	RoleCreator Role = "creator"
	RoleAdmin   Role = "admin"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	switch r {
	case RoleBuyer, RoleCreator, RoleAdmin:
		return true
	}
	return false
}

// Principal is the authenticated caller of a request, as proved by a verified
// access token. It is built without a database call.
type Principal struct {
	UserID    ID
	SessionID ID
	Roles     []Role
	// ExpiresAt is when the credential that proved this principal expires.
	ExpiresAt time.Time
}

// HasRole reports whether p holds role r.
func (p *Principal) HasRole(r Role) bool {
	return p != nil && slices.Contains(p.Roles, r)
}

type principalKey struct{}

// NewContext returns a copy of ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// PrincipalFrom returns the principal carried by ctx, or nil.
func PrincipalFrom(ctx context.Context) *Principal {
	p, _ := ctx.Value(principalKey{}).(*Principal)
	return p
}

// Clock tells the time. Production code uses SystemClock; tests pass a
// controllable clock so that nothing waits on the wall clock.
type Clock interface {
	Now() time.Time
}

// SystemClock is the wall clock.
type SystemClock struct{}

// Now returns time.Now().
func (SystemClock) Now() time.Time { return time.Now() }
