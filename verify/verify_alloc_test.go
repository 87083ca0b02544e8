//go:build !race

package verify

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/verifyd/verifyd/keystore"
)

// TestCacheHitAllocatesNothing guards the hot path: a decision answered from
// the cache, with metrics on, allocates nothing, allowed or forbidden.
func TestCacheHitAllocatesNothing(t *testing.T) {
	f := newFixture(t)
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	f.v.metrics = m
	_, api := f.create(t, KeySpec{Subject: "a", Scopes: []string{"tool:data:*"}})
	_, pat := f.create(t, KeySpec{Subject: "b", Kind: keystore.KindPAT, Scopes: []string{"mailbox:b:*"}})
	for _, c := range []struct{ token, scope string }{{api, "tool:data:read"}, {api, "tool:x:read"}, {pat, "mailbox:b:in"}, {pat, ""}} {
		f.v.Verify(c.token, c.scope) // fill the cache
		f.store.WaitCache()
		if n := testing.AllocsPerRun(200, func() { f.v.Verify(c.token, c.scope) }); n != 0 {
			t.Errorf("Verify(%s..., %q) from the cache allocates %v times", c.token[:6], c.scope, n)
		}
	}
}

// TestJWTCacheHitAllocatesNothing: a JWT answered from the cache, with
// metrics on, allocates nothing.
func TestJWTCacheHitAllocatesNothing(t *testing.T) {
	f := newJWTFixture(t)
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	f.v.metrics = m
	for _, alg := range []string{"ES256", "HS256"} {
		tok := f.sign(t, alg, f.claims("alloc"))
		for _, scope := range []string{"", "tool:data:read", "tool:other:read"} {
			f.v.Verify(tok, scope)
			if n := testing.AllocsPerRun(200, func() { f.v.Verify(tok, scope) }); n != 0 {
				t.Errorf("%s cache hit with scope %q allocates %v times", alg, scope, n)
			}
		}
	}
}

// TestPolicyCacheHitAllocatesNothing: under an rbac policy, a decision
// answered from the cache allocates nothing, for stored keys and JWTs,
// whatever the policy answers.
func TestPolicyCacheHitAllocatesNothing(t *testing.T) {
	f := newJWTFixture(t)
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	f.v.metrics = m
	f.v.SetPolicy(mustPolicy(t, allocPolicy))
	_, key := f.create(t, KeySpec{Subject: "a", Scopes: []string{"tool:a:*"}, Roles: []string{"agent"}, ProjectRoles: map[string][]string{"p1": {"publisher"}}})
	claims := f.claims("j")
	claims["roles"] = []string{"publisher", "viewer"}
	tok := f.sign(t, "ES256", claims)
	for _, c := range []struct{ token, scope string }{
		{key, "tool:a:x"},                          // own scope
		{key, "mailbox:a:in"},                      // role with ${sub}
		{key, "projects/p1/topics/orders:publish"}, // project role, on the ACL
		{key, "projects/p2/topics/t:publish"},      // no grant
		{tok, "realm/emea:read"},                   // JWT role with ${realm}
		{tok, "streams/mars:read"},                 // stream role
		{tok, "projects/p1/topics/orders:publish"}, // no grant
		{tok, "tool:data:read"},                    // the token's own scope
	} {
		f.v.Verify(c.token, c.scope) // fill the caches and bind
		f.store.WaitCache()
		if n := testing.AllocsPerRun(200, func() { f.v.Verify(c.token, c.scope) }); n != 0 {
			t.Errorf("Verify(%s..., %q) from the cache allocates %v times", c.token[:6], c.scope, n)
		}
	}
}
