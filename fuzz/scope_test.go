package fuzz

import (
	"strings"
	"testing"

	"github.com/verifyd/verifyd/rbac"
)

// FuzzScopeCompile checks that compiling never panics, that a failed compile
// returns no matcher, and that a valid literal pattern matches itself.
func FuzzScopeCompile(f *testing.F) {
	for _, s := range []string{"tool:data:*", "*", "", "a::b", "agent:data_*:delegate", "a:b**", "x:\xff", "projects/p1/topics/t:publish"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		m, err := rbac.Compile([]string{p})
		if err != nil {
			if m != nil {
				t.Fatalf("Compile(%q) failed but returned a matcher", p)
			}
			if rbac.ValidatePattern(p) == nil {
				t.Fatalf("Compile(%q) failed on a pattern ValidatePattern accepts: %v", p, err)
			}
			return
		}
		if rbac.ValidateScope(p) != nil {
			t.Fatalf("valid pattern %q is not a valid scope", p)
		}
		if !strings.Contains(p, "*") || p == rbac.SuperScope {
			if g, ok := m.Match(p); !ok || g != p {
				t.Fatalf("literal pattern %q does not match itself (got %q, %v)", p, g, ok)
			}
		}
	})
}

// FuzzScopeMatch checks that the compiled trie agrees with a direct reading
// of the grammar for a set of up to three patterns and one scope.
func FuzzScopeMatch(f *testing.F) {
	f.Add("tool:data:*", "agent:data_*:delegate", "a:b", "tool:data:read")
	f.Add("tool:data:*", "", "", "tool:data:read:extra")
	f.Add("agent:data_*:delegate", "x*y:z", "*:q", "agent:data_x:y:delegate")
	f.Add("a:pre*suf:c", "a:presuf:d", "a:pre*:d", "a:presuf:c")
	f.Add("*", "", "", "anything:at:all")
	f.Fuzz(func(t *testing.T, p1, p2, p3, scope string) {
		var patterns []string
		for _, p := range []string{p1, p2, p3} {
			if rbac.ValidatePattern(p) == nil {
				patterns = append(patterns, p)
			}
		}
		m, err := rbac.Compile(patterns)
		if err != nil {
			t.Fatalf("Compile of valid patterns %q: %v", patterns, err)
		}
		grant, ok := m.Match(scope)
		if want := referenceMatch(patterns, scope); ok != want {
			t.Fatalf("patterns %q, scope %q: trie %v, reference %v", patterns, scope, ok, want)
		}
		if ok && !referenceMatch([]string{grant}, scope) {
			t.Fatalf("patterns %q, scope %q: reported grant %q does not match", patterns, scope, grant)
		}
		// The same patterns among fillers: a set this large is compiled
		// into a trie rather than matched pattern by pattern.
		padded := append(append([]string(nil), patterns...), fillers...)
		m, err = rbac.Compile(padded)
		if err != nil {
			t.Fatalf("Compile of valid patterns %q: %v", padded, err)
		}
		grant, ok = m.Match(scope)
		if want := referenceMatch(padded, scope); ok != want {
			t.Fatalf("patterns %q, scope %q: trie %v, reference %v", padded, scope, ok, want)
		}
		if ok && !referenceMatch([]string{grant}, scope) {
			t.Fatalf("patterns %q, scope %q: reported grant %q does not match", padded, scope, grant)
		}
	})
}

// fillers pad a pattern set past the size that rbac matches without a trie.
var fillers = []string{"zz:filler:1", "zz:fill*:2", "zz:*er:3", "zz:filler:*", "zz:f*r:5", "zz:filler", "zz", "zz:*:7:x"}

// referenceMatch applies the grammar of package rbac with no trie.
func referenceMatch(patterns []string, scope string) bool {
	for _, p := range patterns {
		if p == rbac.SuperScope {
			return true
		}
		ps, ss := strings.Split(p, ":"), strings.Split(scope, ":")
		if len(ps) != len(ss) {
			continue
		}
		all := true
		for i := range ps {
			pre, suf, star := strings.Cut(ps[i], "*")
			s := ss[i]
			switch {
			case s == "":
				all = false
			case !star:
				all = all && ps[i] == s
			default:
				all = all && len(s) >= len(pre)+len(suf) && strings.HasPrefix(s, pre) && strings.HasSuffix(s, suf)
			}
		}
		if all && len(scope) <= rbac.MaxLen {
			return true
		}
	}
	return false
}
