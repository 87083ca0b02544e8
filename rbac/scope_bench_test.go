package rbac

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// benchPatterns returns n patterns shaped like real grants: a mix of literal
// topic grants, per-project wildcards and tool wildcards.
func benchPatterns(n int) []string {
	ps := make([]string, 0, n)
	for i := 0; len(ps) < n; i++ {
		switch i % 4 {
		case 0:
			ps = append(ps, fmt.Sprintf("projects/p%d/topics/t%d:publish", i%500, i))
		case 1:
			ps = append(ps, fmt.Sprintf("projects/p%d/subscriptions/*:consume", i))
		case 2:
			ps = append(ps, fmt.Sprintf("tool:data_%d*:read", i))
		case 3:
			ps = append(ps, fmt.Sprintf("mailbox:agent%d:*", i))
		}
	}
	return ps
}

func BenchmarkMatch(b *testing.B) {
	for _, n := range []int{1, 4, 10, 1000, 100000} {
		b.Run(fmt.Sprintf("patterns=%d", n), func(b *testing.B) {
			ps := benchPatterns(n)
			m := MustCompile(ps...)
			// Requested scopes: half granted, half not.
			rng := rand.New(rand.NewPCG(1, 2))
			scopes := make([]string, 1024)
			for i := range scopes {
				j := rng.IntN(max(n, 4))
				switch j % 4 {
				case 0:
					scopes[i] = fmt.Sprintf("projects/p%d/topics/t%d:publish", j%500, j+i%2)
				case 1:
					scopes[i] = fmt.Sprintf("projects/p%d/subscriptions/s%d:consume", j+i%2, i)
				case 2:
					scopes[i] = fmt.Sprintf("tool:data_%d%d:read", j+i%2, i)
				case 3:
					scopes[i] = fmt.Sprintf("mailbox:agent%d:inbox", j+i%2)
				}
			}
			allowed := 0
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, ok := m.Match(scopes[i&1023]); ok {
					allowed++
				}
				i++
			}
			if allowed == 0 {
				b.Fatal("no scope matched: the workload measures nothing")
			}
		})
	}
}
