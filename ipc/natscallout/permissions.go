package natscallout

import (
	"slices"
	"strings"

	"github.com/nats-io/jwt/v2"

	"github.com/verifyd/verifyd/rbac"
)

// Subject returns the NATS subject that a granted pattern allows for
// action (m.Publish or m.Subscribe), or false when the pattern grants no
// NATS subject for it exactly enough. Every subject the answer matches is
// a subject whose scope <Prefix><subject>:<action> the pattern grants, so
// that NATS never allows more than the pattern; a pattern that cannot be
// written that way is left out:
//
//   - the super-scope "*" gives ">";
//   - the pattern must have two segments, resource and action, and its
//     action segment must match action ("publish", or a wildcard such as
//     "*" or "pub*");
//   - a resource without '*' must be Prefix followed by a NATS subject:
//     "nats/orders.new" gives "orders.new";
//   - a '*' standing for whole tokens gives "*" in the middle of the
//     subject and ">" at its end: "nats/orders.*.created" gives
//     "orders.*.created", "nats/orders.*" gives "orders.>" and "nats/*"
//     gives ">". (The pattern's '*' also matches several tokens, which
//     NATS's "*" does not: NATS allows less, never more.)
//   - a '*' inside the prefix gives ">" when nothing follows it ("*:publish",
//     "na*:publish");
//   - anything else is left out: a '*' inside a token ("nats/orders.a*"),
//     an empty token ("nats/orders..new", "nats/.x"), a '*' inside the
//     prefix followed by more text.
func (m ScopeMapping) Subject(pattern, action string) (string, bool) {
	if rbac.ValidatePattern(pattern) != nil {
		return "", false
	}
	if pattern == rbac.SuperScope {
		return ">", true
	}
	resource, act, ok := strings.Cut(pattern, ":")
	if !ok || strings.IndexByte(act, ':') >= 0 || !segmentMatches(act, action) {
		return "", false
	}
	star := strings.IndexByte(resource, '*')
	var subject string
	if star < 0 {
		subject, ok = strings.CutPrefix(resource, m.Prefix)
	} else {
		subject, ok = m.wildcard(resource[:star], resource[star+1:])
	}
	if !ok || !validSubject(subject) {
		return "", false
	}
	return subject, true
}

// wildcard maps the resource lead*tail to a NATS subject.
func (m ScopeMapping) wildcard(lead, tail string) (string, bool) {
	if len(lead) < len(m.Prefix) {
		// The '*' starts inside the prefix: only alone at the end does
		// it stand for every subject.
		return ">", strings.HasPrefix(m.Prefix, lead) && tail == ""
	}
	lead, ok := strings.CutPrefix(lead, m.Prefix)
	if !ok || lead != "" && !strings.HasSuffix(lead, ".") || tail != "" && !strings.HasPrefix(tail, ".") {
		return "", false // the '*' is part of a token
	}
	if tail == "" {
		return lead + ">", true
	}
	return lead + "*" + tail, true
}

// segmentMatches reports whether the pattern segment p (at most one '*')
// matches the literal segment s.
func segmentMatches(p, s string) bool {
	lead, tail, wild := strings.Cut(p, "*")
	if !wild {
		return p == s
	}
	return len(s) >= len(lead)+len(tail) && strings.HasPrefix(s, lead) && strings.HasSuffix(s, tail)
}

// validSubject reports whether s is a NATS subject whose tokens are not
// empty, whose wildcards are whole tokens and whose ">" is last.
func validSubject(s string) bool {
	if s == "" {
		return false
	}
	tokens := strings.Split(s, ".")
	for i, t := range tokens {
		switch {
		case t == "":
			return false
		case t == ">":
			if i != len(tokens)-1 {
				return false
			}
		case t != "*" && strings.ContainsAny(t, "*>"):
			return false
		}
	}
	return true
}

// aclScope is an ACL of the policy on a NATS scope: <Prefix><subject>:<action>.
type aclScope struct {
	scope   string
	subject string // "" when the resource is not a NATS subject
	publish bool
}

// policyACLs is the NATS scopes a policy puts ACLs on. It is immutable.
type policyACLs struct {
	policy *rbac.Policy
	scopes []aclScope
}

// aclsOf returns the ACLs of p that are on NATS scopes. rbac shows each
// ACL's scope to the covers function of ACLsAdmit, which lists them here
// and covers none. (Mode none, where ACLsAdmit shows none, needs none.)
func (m ScopeMapping) aclsOf(p *rbac.Policy) *policyACLs {
	out := &policyACLs{policy: p}
	p.ACLsAdmit(nil, func(scope string) bool {
		resource, action, _ := strings.Cut(scope, ":")
		if !strings.HasPrefix(resource, m.Prefix) || action != m.Publish && action != m.Subscribe {
			return false // another resource (a ':' in it included) or action
		}
		subject, _ := m.Subject(scope, action)
		out.scopes = append(out.scopes, aclScope{scope: scope, subject: subject, publish: action == m.Publish})
		return false
	})
	slices.SortFunc(out.scopes, func(a, b aclScope) int { return strings.Compare(a.scope, b.scope) })
	return out
}

// permissions returns the NATS permissions of pr under the policy of acls:
// the subjects its grants allow (Subject), less those an ACL of the policy
// denies it. An action without any allowed subject is denied ">": NATS
// reads an empty permission as "everything".
//
// The grants are pr's own scopes and, in mode rbac, the patterns of its
// roles, as the policy fills them (rbac.Policy.Explain lists them); stream
// rules grant no NATS subject. Mode none allows ">". An ACL on a NATS
// scope that does not admit pr becomes a deny of its subject; when that
// subject is not a NATS subject, the grants that cover it are left out
// instead.
func (m ScopeMapping) permissions(acls *policyACLs, pr *rbac.Principal) jwt.Permissions {
	var perms jwt.Permissions
	p := acls.policy
	if p.Mode() == rbac.None {
		perms.Pub.Allow.Add(">")
		perms.Sub.Allow.Add(">")
		return perms
	}
	var unmappable []string // denied scopes NATS cannot deny
	if len(acls.scopes) > 0 {
		b := p.Bind(pr)
		for _, a := range acls.scopes {
			// Without any grant of the scope (NoGrant), no allowed
			// subject covers it: each comes from a grant that grants
			// every subject it allows.
			if d := b.Decide(a.scope); d.Allowed || d.Reason == rbac.NoGrant {
				continue
			}
			switch {
			case a.subject == "":
				unmappable = append(unmappable, a.scope)
			case a.publish:
				perms.Pub.Deny.Add(a.subject)
			default:
				perms.Sub.Deny.Add(a.subject)
			}
		}
	}
	for _, g := range grantedPatterns(p, pr, m.Prefix+":"+m.Publish) {
		if coversAny(g, unmappable) {
			continue
		}
		if s, ok := m.Subject(g, m.Publish); ok {
			perms.Pub.Allow.Add(s)
		}
		if s, ok := m.Subject(g, m.Subscribe); ok {
			perms.Sub.Allow.Add(s)
		}
	}
	closeEmpty(&perms.Pub)
	closeEmpty(&perms.Sub)
	return perms
}

// grantedPatterns returns the patterns that grant pr something under p:
// its own valid scopes and the filled patterns of its roles. probe is any
// valid scope: Explain lists every candidate whatever the scope.
func grantedPatterns(p *rbac.Policy, pr *rbac.Principal, probe string) []string {
	var out []string
	for _, st := range p.Explain(pr, probe).Steps {
		if (st.Kind == "own" || st.Kind == "role") && st.Filled != "" {
			out = append(out, st.Filled)
		}
	}
	return out
}

// coversAny reports whether the pattern g matches one of scopes; an
// invalid g counts as covering them.
func coversAny(g string, scopes []string) bool {
	if len(scopes) == 0 {
		return false
	}
	m, err := rbac.Compile([]string{g})
	if err != nil {
		return true
	}
	for _, s := range scopes {
		if _, ok := m.Match(s); ok {
			return true
		}
	}
	return false
}

// closeEmpty sorts p and makes a permission that allows nothing deny
// everything.
func closeEmpty(p *jwt.Permission) {
	if len(p.Allow) == 0 {
		p.Allow, p.Deny = nil, jwt.StringList{">"}
		return
	}
	slices.Sort(p.Allow)
	slices.Sort(p.Deny)
}
