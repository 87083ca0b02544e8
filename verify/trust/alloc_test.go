//go:build !race

package trust

import (
	"testing"

	"github.com/verifyd/verifyd/verify/jwt"
)

// TestResolveKeyAllocatesNothing guards the hot path: lookups answered from
// the snapshot, found or refused, allocate nothing.
func TestResolveKeyAllocatesNothing(t *testing.T) {
	one := staticRegistry(t, "hs-1", ecJWK(t, "es-1", genKey(t), nil))
	two := staticRegistry(t, "hs-2", ecJWK(t, "es-2", genKey(t), nil), ecJWK(t, "es-3", genKey(t), nil))
	tests := []struct {
		name string
		r    *Registry
		alg  jwt.Alg
		kid  string
		ok   bool
	}{
		{"ES256 known kid", one, jwt.ES256, "es-1", true},
		{"HS256 known kid", one, jwt.HS256, "hs-1", true},
		{"ES256 only key", one, jwt.ES256, "", true},
		{"HS256 only key", two, jwt.HS256, "", true},
		{"algorithm mismatch", one, jwt.HS256, "es-1", false},
		{"no kid, two keys", two, jwt.ES256, "", false},
		{"unknown kid, nothing to fetch", one, jwt.ES256, "unknown", false},
		{"kid too long", one, jwt.ES256, string(make([]byte, 300)), false},
		{"unknown algorithm", one, 0, "es-1", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n := testing.AllocsPerRun(1000, func() {
				k, err := tc.r.ResolveKey(tc.alg, tc.kid)
				if (err == nil) != tc.ok || (k != nil) != tc.ok {
					t.Fatalf("ResolveKey(%v, %q) = %v, %v", tc.alg, tc.kid, k, err)
				}
			})
			if n != 0 {
				t.Errorf("%v allocations per lookup, want 0", n)
			}
		})
	}
}
