//go:build !race

package rbac

import "testing"

func TestMatchAllocatesNothing(t *testing.T) {
	m := MustCompile(benchPatterns(1000)...)
	scopes := []string{"projects/p7/topics/t7:publish", "tool:data_12:read", "nope:nope:nope", "a"}
	for _, s := range scopes {
		if n := testing.AllocsPerRun(100, func() { m.Match(s) }); n != 0 {
			t.Errorf("Match(%q) allocates %v times", s, n)
		}
	}
}
