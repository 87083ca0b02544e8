package keystore

import (
	"encoding/binary"
	"runtime"
	"slices"
	"sync"
	"weak"

	"github.com/verifyd/verifyd/rbac"
)

// A grantSet is one list of scope patterns with its compiled Matcher.
// Cached entries whose records carry the same list, in the same order,
// share one grantSet: most deployments give thousands of keys a handful
// of scope lists, so a shared set saves a Matcher and a slice per cached
// key and, being shared, stays in the CPU caches where a million copies
// would not. A grantSet is immutable.
type grantSet struct {
	scopes  []string // interned patterns
	matcher rbac.Matcher
}

// grantSets maps each pattern list (grantKey) to its grantSet, weakly: a
// set no cached entry holds any more is collected, and a cleanup then
// removes its slot, so the table is bounded by the sets in use.
var grantSets = struct {
	sync.Mutex
	m map[string]weak.Pointer[grantSet]
}{m: map[string]weak.Pointer[grantSet]{}}

// sharedGrants returns the grantSet of scopes, compiling it when no cached
// entry holds one already. scopes is not retained.
func sharedGrants(scopes []string) (*grantSet, error) {
	key := grantKey(scopes)
	grantSets.Lock()
	g := grantSets.m[key].Value()
	grantSets.Unlock()
	if g != nil {
		return g, nil
	}
	m, err := rbac.Compile(scopes)
	if err != nil {
		return nil, err
	}
	g = &grantSet{scopes: internStrings(slices.Clone(scopes)), matcher: *m}
	grantSets.Lock()
	defer grantSets.Unlock()
	if prev := grantSets.m[key].Value(); prev != nil {
		return prev, nil // compiled concurrently by another reader
	}
	grantSets.m[key] = weak.Make(g)
	runtime.AddCleanup(g, dropGrantSet, key)
	return g, nil
}

// dropGrantSet removes the slot of a collected grantSet, unless a new set
// for the same list has taken it since.
func dropGrantSet(key string) {
	grantSets.Lock()
	defer grantSets.Unlock()
	if wp, ok := grantSets.m[key]; ok && wp.Value() == nil {
		delete(grantSets.m, key)
	}
}

// grantKey encodes a pattern list unambiguously: each pattern preceded by
// its length.
func grantKey(scopes []string) string {
	n := 0
	for _, s := range scopes {
		n += binary.MaxVarintLen64 + len(s)
	}
	b := make([]byte, 0, n)
	for _, s := range scopes {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
	}
	return string(b)
}
