//go:build !race

package rbac

import "testing"

func TestMatchAllocatesNothing(t *testing.T) {
	scopes := []string{"projects/p7/topics/t7:publish", "tool:data_12:read", "nope:nope:nope", "a"}
	for _, m := range []*Matcher{MustCompile(benchPatterns(1000)...), MustCompile(benchPatterns(3)...)} {
		for _, s := range scopes {
			if n := testing.AllocsPerRun(100, func() { m.Match(s) }); n != 0 {
				t.Errorf("Match(%q) over %d patterns allocates %v times", s, m.Len(), n)
			}
		}
	}
}
