package keystore

import (
	"encoding/binary"
	"maps"
	"runtime"
	"slices"
	"sync"
	"weak"

	"github.com/verifyd/verifyd/rbac"
)

// A profile is the shared part of cached principals: a kind, roles, scope
// patterns with their compiled Matcher, and a rate limit. Cached entries
// whose records have the same ones share one profile: most deployments
// give thousands of keys a handful of such combinations, so a shared
// profile saves its slices, map and Matcher per cached key and, being
// shared, stays in the CPU caches where a million copies would not. A
// profile is immutable.
type profile struct {
	rbac.Profile
	matcher rbac.Matcher // Profile.Grants points here
}

// profiles maps each profile's encoding (appendProfileKey) to the profile,
// weakly: one no cached entry holds any more is collected, and a cleanup
// then removes its slot, so the table is bounded by the profiles in use.
var profiles = struct {
	sync.Mutex
	m map[string]weak.Pointer[profile]
}{m: map[string]weak.Pointer[profile]{}}

// sharedProfile returns the profile of r, compiling it when no cached entry
// holds one already. Nothing of r is retained.
func sharedProfile(r *Record) (*rbac.Profile, error) {
	var buf [128]byte
	key := appendProfileKey(buf[:0], r)
	profiles.Lock()
	p := profiles.m[string(key)].Value()
	profiles.Unlock()
	if p != nil {
		return &p.Profile, nil
	}
	m, err := rbac.Compile(r.Scopes)
	if err != nil {
		return nil, err
	}
	p = &profile{matcher: *m}
	p.Profile = rbac.Profile{
		Kind:   r.Kind.String(),
		Roles:  internStrings(slices.Clone(r.Roles)),
		Scopes: internStrings(slices.Clone(r.Scopes)),
		Grants: &p.matcher,
	}
	if len(r.ProjectRoles) > 0 {
		p.ProjectRoles = make(map[string][]string, len(r.ProjectRoles))
		for name, roles := range r.ProjectRoles {
			p.ProjectRoles[internString(name)] = internStrings(slices.Clone(roles))
		}
	}
	if rl := r.Metadata[MetaRateLimit]; rl != "" {
		p.RateLimit = internString(rl)
	}
	profiles.Lock()
	defer profiles.Unlock()
	if prev := profiles.m[string(key)].Value(); prev != nil {
		return &prev.Profile, nil // compiled concurrently by another reader
	}
	k := string(key)
	profiles.m[k] = weak.Make(p)
	runtime.AddCleanup(p, dropProfile, k)
	return &p.Profile, nil
}

// dropProfile removes the slot of a collected profile, unless a new one
// for the same key has taken it since.
func dropProfile(key string) {
	profiles.Lock()
	defer profiles.Unlock()
	if wp, ok := profiles.m[key]; ok && wp.Value() == nil {
		delete(profiles.m, key)
	}
}

// appendProfileKey appends the encoding of what r's profile is made of, unambiguously: the kind,
// then the rate limit, the scope patterns, the roles and the project roles
// (by project name), as a record encodes them. Lists keep their order: the
// same patterns in another order make another profile, which is only a
// missed sharing.
func appendProfileKey(b []byte, r *Record) []byte {
	b = append(b, byte(r.Kind))
	b = appendStr(b, r.Metadata[MetaRateLimit])
	b = appendList(b, r.Scopes)
	b = appendList(b, r.Roles)
	b = binary.AppendUvarint(b, uint64(len(r.ProjectRoles)))
	for _, name := range slices.Sorted(maps.Keys(r.ProjectRoles)) {
		b = appendStr(b, name)
		b = appendList(b, r.ProjectRoles[name])
	}
	return b
}
