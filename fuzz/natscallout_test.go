package fuzz

import (
	"strings"
	"testing"

	"github.com/verifyd/verifyd/ipc/natscallout"
	"github.com/verifyd/verifyd/rbac"
)

// FuzzNATSSubject checks the scope-to-subject mapping of the NATS auth
// callout: it never panics, an answer is a NATS subject (no empty token,
// wildcards whole tokens, ">" last), and the granted pattern grants every
// subject the answer stands for (sampled with one and two tokens per
// wildcard): NATS never allows more than the pattern.
func FuzzNATSSubject(f *testing.F) {
	for _, p := range []string{"nats/orders.new:publish", "nats/orders.*:publish", "nats/orders.*.created:subscribe", "nats/*:*",
		"*", "*:publish", "na*:publish", "nats/orders.a*:publish", "nats/orders..x:publish", "nats/a:b:publish"} {
		f.Add(p, true)
	}
	m := natscallout.ScopeMapping{Prefix: "nats/", Publish: "publish", Subscribe: "subscribe"}
	f.Fuzz(func(t *testing.T, pattern string, publish bool) {
		action := m.Subscribe
		if publish {
			action = m.Publish
		}
		subject, ok := m.Subject(pattern, action)
		if !ok {
			if subject != "" {
				t.Fatalf("Subject(%q) refused but returned %q", pattern, subject)
			}
			return
		}
		tokens := strings.Split(subject, ".")
		for i, tok := range tokens {
			if tok == "" || tok != "*" && tok != ">" && strings.ContainsAny(tok, "*>") || tok == ">" && i != len(tokens)-1 {
				t.Fatalf("Subject(%q) = %q: not a NATS subject", pattern, subject)
			}
		}
		g, err := rbac.Compile([]string{pattern})
		if err != nil {
			t.Fatalf("Subject(%q) = %q for an invalid pattern: %v", pattern, subject, err)
		}
		for _, fill := range [][2]string{{"a", "b"}, {"a", "b.c"}} {
			sample := strings.ReplaceAll(strings.ReplaceAll(subject, "*", fill[0]), ">", fill[1])
			if _, ok := g.Match(m.Prefix + sample + ":" + action); !ok {
				t.Fatalf("Subject(%q) = %q, but the pattern does not grant %q", pattern, subject, sample)
			}
		}
	})
}
