package discovery

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
)

// Instance is one running Strata instance that serves HTTP.
type Instance struct {
	URL   string   `json:"url"`   // base URL, e.g. "http://10.0.0.7:8080" (no trailing slash)
	Roles []string `json:"roles"` // the roles it serves, e.g. ["auth","content","payments"]
}

// Source reports the instances it knows. Run calls update with the whole
// current set each time it changes (the first call as soon as it is known),
// until ctx ends; it returns nil when ctx ends, an error only when it cannot
// run at all. update is never called concurrently with itself.
//
// Every set is sorted by URL, holds each URL once, lists each instance's
// roles sorted and without repeats, and is freshly allocated: the caller
// may keep and modify it.
type Source interface {
	Run(ctx context.Context, update func([]Instance)) error
}

// Static is a fixed list: Run calls update once, then waits for ctx.
// Instances with the same URL are merged (their roles joined).
func Static(instances ...Instance) Source {
	return staticSource(normalizeSet(instances))
}

type staticSource []Instance

var _ Source = staticSource(nil)

func (s staticSource) Run(ctx context.Context, update func([]Instance)) error {
	update(cloneSet(s))
	<-ctx.Done()
	return nil
}

// normalizeSet returns a fresh set sorted by URL with duplicate URLs merged
// and every instance's roles normalized.
func normalizeSet(in []Instance) []Instance {
	byURL := make(map[string][]string, len(in))
	for _, inst := range in {
		byURL[inst.URL] = append(byURL[inst.URL], inst.Roles...)
	}
	out := make([]Instance, 0, len(byURL))
	for u, roles := range byURL {
		out = append(out, Instance{URL: u, Roles: normalizeRoles(roles)})
	}
	sortSet(out)
	return out
}

// normalizeRoles returns a sorted copy of roles without repeats, never nil
// (so that it encodes as [] rather than null).
func normalizeRoles(roles []string) []string {
	out := slices.Clone(roles)
	if out == nil {
		out = []string{}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// cloneSet deep-copies a set so that the receiver of an update cannot
// reach the source's own slices.
func cloneSet(set []Instance) []Instance {
	out := make([]Instance, len(set))
	for i, inst := range set {
		out[i] = Instance{URL: inst.URL, Roles: slices.Clone(inst.Roles)}
	}
	return out
}

func sortSet(set []Instance) {
	slices.SortFunc(set, func(a, b Instance) int { return cmp.Compare(a.URL, b.URL) })
}

// servesAny reports whether inst serves at least one of roles; an empty
// roles matches every instance.
func servesAny(inst Instance, roles []string) bool {
	if len(roles) == 0 {
		return true
	}
	for _, r := range inst.Roles {
		if slices.Contains(roles, r) {
			return true
		}
	}
	return false
}

// checkURL reports a base URL an HTTP client cannot use: it must be
// absolute http or https with a host, and carry no query, fragment or
// trailing slash.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return fmt.Errorf("url %q: scheme must be http or https", raw)
	case u.Host == "":
		return fmt.Errorf("url %q: no host", raw)
	case u.User != nil:
		return fmt.Errorf("url %q: user info is not allowed", raw)
	case u.RawQuery != "" || u.ForceQuery || strings.Contains(raw, "#"):
		return fmt.Errorf("url %q: query and fragment are not allowed", raw)
	case strings.HasSuffix(raw, "/"):
		return fmt.Errorf("url %q: trailing slash", raw)
	}
	return nil
}

// decodeInstance parses an announcement. It is the one parser of input
// from the network in this package.
func decodeInstance(data []byte) (Instance, error) {
	var inst Instance
	if err := json.Unmarshal(data, &inst); err != nil {
		return Instance{}, fmt.Errorf("decode instance: %w", err)
	}
	if inst.URL == "" {
		return Instance{}, errors.New("decode instance: no url")
	}
	if err := checkURL(inst.URL); err != nil {
		return Instance{}, fmt.Errorf("decode instance: %w", err)
	}
	inst.Roles = normalizeRoles(inst.Roles)
	return inst, nil
}
