package verify

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// BenchmarkVerifyPolicy measures a cached key's decision under the default
// policy (own scopes, no binding) and under an rbac policy (the cached
// binding: a role with a template, per project, and an ACL).
func BenchmarkVerifyPolicy(b *testing.B) {
	for _, c := range []struct {
		name, policy, scope string
	}{
		{"deny_all/own_scope", "", "tool:a:read"},
		{"rbac/own_scope", allocPolicy, "tool:a:read"},
		{"rbac/role", allocPolicy, "mailbox:a:in"},
		{"rbac/project_role_acl", allocPolicy, "projects/p1/topics/orders:publish"},
		{"rbac/no_grant", allocPolicy, "projects/p2/topics/t:publish"},
	} {
		b.Run(c.name, func(b *testing.B) {
			f := newFixture(b)
			m, err := newMetrics(prometheus.NewRegistry())
			if err != nil {
				b.Fatal(err)
			}
			f.v.metrics = m
			if c.policy != "" {
				f.v.SetPolicy(mustPolicy(b, c.policy))
			}
			_, key := f.create(b, KeySpec{Subject: "a", Scopes: []string{"tool:a:*"}, Roles: []string{"agent"}, ProjectRoles: map[string][]string{"p1": {"publisher"}}})
			want := f.v.Verify(key, c.scope).Reason
			f.store.WaitCache()
			b.ReportAllocs()
			for b.Loop() {
				if r := f.v.Verify(key, c.scope); r.Reason != want {
					b.Fatalf("%v, want %v", r.Reason, want)
				}
			}
		})
	}
}
