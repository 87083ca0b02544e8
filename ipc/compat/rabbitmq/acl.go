package rabbitmq

import (
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/verifyd/verifyd/rbac"
)

// aclIndex is the scopes that have an ACL in one policy.
type aclIndex struct {
	policy *rbac.Policy
	scopes []string
}

// aclScopes returns the scopes ("<resource>:<action>") that have an ACL
// in the policy in force. They are read from the policy's canonical form
// once per policy: a policy is immutable, and a reload puts a new one in
// force.
func (a *Adapter) aclScopes() []string {
	p := a.v.Policy()
	if cur := a.acls.Load(); cur != nil && cur.policy == p {
		return cur.scopes
	}
	idx := &aclIndex{policy: p, scopes: policyACLScopes(p)}
	a.acls.Store(idx)
	return idx.scopes
}

// policyACLScopes lists the ACL scopes of p, from the acls mapping of its
// canonical form (resource -> action -> subjects).
func policyACLScopes(p *rbac.Policy) []string {
	if p == nil || p.Summary().ACLs == 0 {
		return nil
	}
	v, err := p.MarshalYAML()
	root, ok := v.(*yaml.Node)
	if err != nil || !ok {
		return nil
	}
	var scopes []string
	for i := 0; i+1 < len(root.Content); i += 2 {
		if root.Content[i].Value != "acls" {
			continue
		}
		resources := root.Content[i+1].Content
		for j := 0; j+1 < len(resources); j += 2 {
			actions := resources[j+1].Content
			for k := 0; k+1 < len(actions); k += 2 {
				scopes = append(scopes, resources[j].Value+string(rbac.Separator)+actions[k].Value)
			}
		}
	}
	return scopes
}

// globMatch reports whether scope, read as a pattern in which each '*'
// stands for any run of characters other than ':', matches s.
func globMatch(scope, s string) bool {
	ps, ss := strings.Split(scope, string(rbac.Separator)), strings.Split(s, string(rbac.Separator))
	if len(ps) != len(ss) {
		return false
	}
	for i := range ps {
		if !globSegment(ps[i], ss[i]) {
			return false
		}
	}
	return true
}

// globSegment matches one segment: the classic wildcard match with
// backtracking to the last '*'.
func globSegment(p, s string) bool {
	pi, si := 0, 0
	star, mark := -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && p[pi] == rbac.Wildcard:
			star, mark = pi, si
			pi++
		case pi < len(p) && p[pi] == s[si]:
			pi++
			si++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == rbac.Wildcard {
		pi++
	}
	return pi == len(p)
}
