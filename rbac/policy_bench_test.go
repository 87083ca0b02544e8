package rbac

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// benchPolicy writes a policy of roles roles holding patterns patterns in
// all (the shapes of benchPatterns, split evenly), plus the role agent with
// mailbox:${sub}:*, and returns it with the names of the first roles.
func benchPolicy(roles, patterns int) ([]byte, []string) {
	ps := benchPatterns(patterns)
	var b strings.Builder
	b.WriteString("mode: rbac\nroles:\n  agent:\n    scopes: [\"mailbox:${sub}:*\"]\n")
	names := make([]string, roles)
	per := (patterns + roles - 1) / roles
	for r := range roles {
		names[r] = fmt.Sprintf("role%d", r)
		fmt.Fprintf(&b, "  %s:\n    scopes:\n", names[r])
		for _, p := range ps[min(r*per, len(ps)):min((r+1)*per, len(ps))] {
			fmt.Fprintf(&b, "      - %q\n", p)
		}
	}
	b.WriteString("acls:\n  projects/p7/topics/t7:\n    publish: [someone]\n")
	return []byte(b.String()), names
}

// BenchmarkDecide measures the hot path: a bound principal holding every
// role of the policy, half of the scopes granted.
func BenchmarkDecide(b *testing.B) {
	for _, size := range []struct{ roles, patterns int }{{1, 10}, {10, 1000}, {50, 10000}} {
		b.Run(fmt.Sprintf("roles=%d/patterns=%d", size.roles, size.patterns), func(b *testing.B) {
			data, names := benchPolicy(size.roles, size.patterns)
			p, err := ParsePolicy(data)
			if err != nil {
				b.Fatal(err)
			}
			bd := p.Bind(&Principal{Subject: "bench", Profile: &Profile{Roles: names}})
			scopes := benchScopes(size.patterns)
			allowed := 0
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if bd.Decide(scopes[i&1023]).Allowed {
					allowed++
				}
				i++
			}
			if allowed == 0 {
				b.Fatal("no scope allowed: the workload measures nothing")
			}
		})
	}
}

// BenchmarkDecideParallel is BenchmarkDecide from every core at once, on
// one shared binding.
func BenchmarkDecideParallel(b *testing.B) {
	data, names := benchPolicy(50, 10000)
	p, err := ParsePolicy(data)
	if err != nil {
		b.Fatal(err)
	}
	bd := p.Bind(&Principal{Subject: "bench", Profile: &Profile{Roles: names}})
	scopes := benchScopes(10000)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			bd.Decide(scopes[i&1023])
			i++
		}
	})
}

// benchScopes returns 1024 requested scopes over benchPatterns(n), half of
// them granted, as in BenchmarkMatch.
func benchScopes(n int) []string {
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
	return scopes
}

// BenchmarkPolicyCompile measures loading a policy of n patterns: parsing
// and validating the file, then the first Bind of a principal holding every
// role, which compiles them all into one trie. It reports the cost per
// pattern.
func BenchmarkPolicyCompile(b *testing.B) {
	for _, n := range []int{1000, 10000, 100000} {
		b.Run(fmt.Sprintf("patterns=%d", n), func(b *testing.B) {
			data, names := benchPolicy(100, n)
			pr := &Principal{Subject: "bench", Profile: &Profile{Roles: names}}
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			for b.Loop() {
				p, err := ParsePolicy(data)
				if err != nil {
					b.Fatal(err)
				}
				if !p.Bind(pr).Decide("mailbox:agent3:inbox").Allowed {
					b.Fatal("the compiled policy does not grant")
				}
			}
			runtime.ReadMemStats(&after)
			per := float64(b.N) * float64(n)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/per, "ns/pattern")
			b.ReportMetric(float64(after.TotalAlloc-before.TotalAlloc)/per, "bytes/pattern")
		})
	}
}

// BenchmarkBind measures binding a principal: with a warm memo (another
// principal with the same roles was bound before), and with a cold one
// (every principal has its own ${sub}-templated set).
func BenchmarkBind(b *testing.B) {
	data, names := benchPolicy(50, 10000)
	p, err := ParsePolicy(data)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("memo=warm/roles=50", func(b *testing.B) {
		pr := &Principal{Subject: "bench", Profile: &Profile{Roles: names, Scopes: []string{"own:*"}, Grants: MustCompile("own:*")}}
		p.Bind(pr)
		b.ReportAllocs()
		for b.Loop() {
			p.Bind(pr)
		}
	})
	b.Run("memo=warm/roles=1", func(b *testing.B) {
		pr := &Principal{Subject: "bench", Profile: &Profile{Roles: names[:1]}}
		p.Bind(pr)
		b.ReportAllocs()
		for b.Loop() {
			p.Bind(pr)
		}
	})
	b.Run("memo=cold/agent", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			p.Bind(&Principal{Subject: fmt.Sprintf("agent-%d", i), Profile: &Profile{Roles: []string{"agent"}}})
			i++
		}
	})
}
