package fuzz

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/verifyd/verifyd/rbac"
)

// policySeeds returns the policy files of rbac's tests: the documented
// example and every policy block of the platform acceptance vectors.
func policySeeds(f *testing.F) [][]byte {
	dir := filepath.Join("..", "rbac", "testdata")
	example, err := os.ReadFile(filepath.Join(dir, "example-policy.yaml"))
	if err != nil {
		f.Fatal(err)
	}
	seeds := [][]byte{example}
	files, err := filepath.Glob(filepath.Join(dir, "policy", "*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no policy vectors: %v", err)
	}
	for _, name := range files {
		data, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		// A block is a "policy" line, its input, and a "----" line.
		var block []string
		in := false
		for _, l := range strings.Split(string(data), "\n") {
			switch {
			case l == "policy":
				in, block = true, nil
			case in && l == "----":
				seeds = append(seeds, []byte(strings.Join(block, "\n")+"\n"))
				in = false
			case in:
				block = append(block, l)
			}
		}
	}
	return seeds
}

// FuzzPolicyLoad checks that ParsePolicy never panics, that a rejected file
// yields a *PolicyError with at least one problem and no policy, and that an
// accepted one round-trips: its canonical form (MarshalYAML) loads to an
// Equal policy and is a fixed point. Loaded policies are then bound and
// asked a few questions, and Explain must agree with Decide.
func FuzzPolicyLoad(f *testing.F) {
	for _, s := range policySeeds(f) {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := rbac.ParsePolicy(data)
		if err != nil {
			var pe *rbac.PolicyError
			if p != nil || !errors.As(err, &pe) || len(pe.Problems) == 0 {
				t.Fatalf("failed load: policy %v, error %v", p, err)
			}
			return
		}
		out, err := yaml.Marshal(p)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		q, err := rbac.ParsePolicy(out)
		if err != nil {
			t.Fatalf("the canonical form does not load: %v\n%s", err, out)
		}
		if !p.Equal(q) {
			t.Fatalf("the canonical form loads to another policy:\n%s", out)
		}
		again, err := yaml.Marshal(q)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("the canonical form is not a fixed point (%v):\n%s\n---\n%s", err, out, again)
		}
		principals := []*rbac.Principal{
			nil,
			{Subject: "alice", Profile: &rbac.Profile{Roles: []string{"developer", "admin", "agent"}, ProjectRoles: map[string][]string{"p1": {"project_admin", "publisher"}}}},
			{Subject: "agent-7", Profile: &rbac.Profile{Kind: "jwt", Realm: "ecmwf", Roles: []string{"producer", "*"}, Scopes: []string{"mailbox:agent-7:*"}, Grants: rbac.MustCompile("mailbox:agent-7:*")}},
		}
		scopes := []string{"tool:data:read", "projects/p1/topics/orders:publish", "mailbox:agent-7:read", "streams/mars:write", "streams/public:read", "*", "a"}
		for _, pr := range principals {
			b := p.Bind(pr)
			for _, s := range scopes {
				d := b.Decide(s)
				if d.Allowed != d.Reason.Allowed() {
					t.Fatalf("%q: Allowed %v with reason %v", s, d.Allowed, d.Reason)
				}
				if e := p.Explain(pr, s); e.Decision != d {
					t.Fatalf("%q: Explain %v, Decide %v", s, e.Decision, d)
				}
			}
		}
	})
}
