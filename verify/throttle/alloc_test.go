//go:build !race

package throttle

import (
	"net/netip"
	"testing"

	"github.com/verifyd/verifyd/verify"
)

// TestGateAllocatesNothing checks that the throttle adds no allocation to
// a verification: with nothing in a cool-down, with another source and a
// PAT id in one, for a credential with a rate limit, and for a failure
// that is counted.
func TestGateAllocatesNothing(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.RoleRateLimits = map[string]string{"r": "1000000000/s"} })
	f.v.answers["good"] = valid("k1")
	f.v.answers["limited"] = valid("k2", "r")
	f.v.answers[patB] = valid("BAAAAAAAAAAAAAAAAAAAAA")
	src := addr("198.51.100.1")
	check := func(name, token string, want verify.Reason) {
		t.Helper()
		if n := testing.AllocsPerRun(1000, func() {
			if r, _ := f.g.Verify(src, token, ""); r.Reason != want {
				t.Fatalf("%s: %v", name, r.Reason)
			}
		}); n != 0 {
			t.Errorf("%s: %v allocations", name, n)
		}
	}
	check("nothing in a cool-down", "good", verify.OK)
	check("rate-limited credential", "limited", verify.OK)
	for i := 0; i < 5; i++ {
		f.g.Verify(addr("192.0.2.7"), patAOther, "")
	}
	check("another source and id in a cool-down", "good", verify.OK)
	check("a PAT whose id is not in a cool-down", patB, verify.OK)
	i := 0
	if n := testing.AllocsPerRun(1000, func() {
		i++
		a := netip.AddrFrom4([4]byte{10, 0, byte(i >> 8), byte(i)}) // a new source each time: none trips
		if r, _ := f.g.Verify(AddrSource(a), "guess", ""); r.Reason != verify.Unknown {
			t.Fatalf("a failure: %v", r.Reason)
		}
	}); n != 0 {
		t.Errorf("a failure: %v allocations", n)
	}
	src = addr("192.0.2.7")
	check("a source in a cool-down", "good", verify.RateLimited)
}
