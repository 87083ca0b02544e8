package mqtt

import (
	"testing"
)

// BenchmarkAuthorize measures one ACL check of a bound client, the
// verification answered from the credential cache.
func BenchmarkAuthorize(b *testing.B) {
	e := newEnv(b, Config{})
	e.policy(aclPolicy)
	_, k := e.key("alice", []string{"mqtt/topic/sensors/*:publish"})
	e.login("alice", "c1", k)
	for _, bc := range []struct {
		name, topic string
		acc         access
	}{
		{"publish", "sensors/t1", accWrite},
		{"deliver", "sensors/t1", accRead},
		{"subscribe/literal", "sensors/t1", accSubscribe},
		{"subscribe/wildcard_acl", "sensors/+", accSubscribe},
		{"subscribe/wildcard_hash", "sensors/garden/#", accSubscribe},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if d := e.a.authorize("alice", "c1", bc.topic, bc.acc); d.outcome != allowed {
					b.Fatal(d)
				}
			}
		})
	}
}
