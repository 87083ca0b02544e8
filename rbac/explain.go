package rbac

import (
	"fmt"
	"sort"
	"strings"
)

// An Explanation accounts for one decision: every grant that was a
// candidate for the scope, and why it did or did not apply. It is meant for
// operators (verifyctl policy explain), not for the hot path.
type Explanation struct {
	Scope     string
	Mode      Mode
	Subject   string
	Anonymous bool
	Decision  Decision // what Bind(pr).Decide(scope) answers
	Steps     []Step
}

// A Step is one candidate considered for a decision.
type Step struct {
	// Kind is one of "scope" (the scope itself is malformed), "mode",
	// "own" (a pattern the credential carries), "role" (a pattern of an
	// assigned role), "stream" (a stream rule), "admin" (admin_roles) and
	// "acl".
	Kind string
	// Role is the role whose pattern this is, for kind role; the role that
	// matched, for stream and admin steps.
	Role string
	// Via is the chain from the assigned role to Role, as
	// "developer > viewer", when Role was inherited.
	Via string
	// Project is the project, domain or realm of the assignment.
	Project string
	// Pattern is the pattern as written in the policy or the credential.
	Pattern string
	// Filled is Pattern with its templates filled; "" when it could not be
	// filled or does not apply in this assignment (see Note).
	Filled string
	// Matched reports whether the step would grant the scope on its own:
	// the pattern matches, the stream rule allows, the ACL admits.
	Matched bool
	// Note says why, in words.
	Note string
}

// String renders the step on one line.
func (s Step) String() string {
	var b strings.Builder
	b.WriteString(s.Kind)
	if s.Kind == "mode" || s.Kind == "scope" {
		b.WriteString(": ")
		b.WriteString(s.Note)
		return b.String()
	}
	if s.Role != "" {
		b.WriteString(" ")
		b.WriteString(s.Role)
	}
	if s.Via != "" {
		b.WriteString(" (via ")
		b.WriteString(s.Via)
		b.WriteString(")")
	}
	if s.Project != "" {
		b.WriteString(" in ")
		b.WriteString(s.Project)
	}
	if s.Pattern != "" {
		b.WriteString(" ")
		b.WriteString(s.Pattern)
		if s.Filled != "" && s.Filled != s.Pattern {
			b.WriteString(" -> ")
			b.WriteString(s.Filled)
		}
	}
	switch {
	case s.Kind == "own" || s.Kind == "role":
		switch {
		case s.Filled == "":
			b.WriteString(": dropped")
		case s.Matched:
			b.WriteString(": match")
		default:
			b.WriteString(": no match")
		}
	case s.Matched:
		b.WriteString(": allows")
	default:
		b.WriteString(": does not allow")
	}
	if s.Note != "" {
		b.WriteString(" (")
		b.WriteString(s.Note)
		b.WriteString(")")
	}
	return b.String()
}

// String renders the explanation: the decision, then one line per step.
func (e Explanation) String() string {
	var b strings.Builder
	who := "anonymous"
	if !e.Anonymous {
		who = "subject " + e.Subject
	}
	fmt.Fprintf(&b, "%s for %s under mode %s: %s", e.Scope, who, e.Mode, e.Decision)
	for _, s := range e.Steps {
		b.WriteString("\n  ")
		b.WriteString(s.String())
	}
	return b.String()
}

// Explain reports how p decides scope for pr (nil for an anonymous
// request): the decision of Bind(pr).Decide(scope), and every candidate
// grant considered, with why it did or did not apply. It allocates freely.
func (p *Policy) Explain(pr *Principal, scope string) Explanation {
	e := Explanation{Scope: scope, Mode: p.doc.mode, Anonymous: pr == nil, Decision: p.Bind(pr).Decide(scope)}
	if pr != nil {
		e.Subject = pr.Subject
	}
	add := func(s Step) { e.Steps = append(e.Steps, s) }
	if err := ValidateScope(scope); err != nil {
		add(Step{Kind: "scope", Note: err.Error()})
	}
	switch p.doc.mode {
	case None:
		add(Step{Kind: "mode", Matched: true, Note: "mode none allows every scope"})
		return e
	case DenyAll:
		add(Step{Kind: "mode", Note: "mode deny_all: roles and stream rules grant nothing; the credential's own scopes apply"})
	}
	if pr != nil {
		p.explainOwn(pr, scope, add)
	}
	if p.doc.mode == RBAC && pr != nil {
		a := p.assign(pr)
		vals := templateValues{sub: pr.Subject, realm: pr.Realm}
		p.explainRoles(a.global, "", vals, scope, add)
		for _, pj := range a.projects {
			p.explainRoles(pj.roles, pj.project, vals, scope, add)
		}
	}
	if p.doc.mode == RBAC {
		p.explainStream(pr, scope, add)
	}
	p.explainACL(pr, scope, add)
	return e
}

func (p *Policy) explainOwn(pr *Principal, scope string, add func(Step)) {
	if len(pr.Scopes) == 0 {
		// Grants compiled from scopes the principal does not list: only
		// the match can be shown. An empty set (a credential without
		// scopes of its own) is no step at all.
		if pr.Grants.Len() > 0 {
			g, ok := pr.Grants.Match(scope)
			add(Step{Kind: "own", Pattern: g, Filled: g, Matched: ok, Note: "compiled grants"})
		}
		return
	}
	for _, s := range pr.Scopes {
		if err := ValidatePattern(s); err != nil {
			add(Step{Kind: "own", Pattern: s, Note: "invalid pattern, ignored"})
			continue
		}
		add(Step{Kind: "own", Pattern: s, Filled: s, Matched: matchOne(s, scope)})
	}
}

// matchOne matches one valid pattern against scope.
func matchOne(pattern, scope string) bool {
	if pattern == SuperScope {
		return true
	}
	if scope == "" || len(scope) > MaxLen {
		return false
	}
	return matchPattern(pattern, scope)
}

func (p *Policy) explainRoles(names []string, project string, vals templateValues, scope string, add func(Step)) {
	vals.project = project
	for _, name := range names {
		r := p.roles[name]
		if r == nil {
			add(Step{Kind: "role", Role: name, Project: project, Matched: false, Note: "not declared by the policy, so it grants no pattern; stream and admin rules may still name it"})
			continue
		}
		entries := closure(r)
		for i, en := range entries {
			via := ""
			if i > 0 {
				var chain []string
				for j := i; j >= 0; j = entries[j].parent {
					chain = append(chain, entries[j].r.name)
				}
				for l, h := 0, len(chain)-1; l < h; l, h = l+1, h-1 {
					chain[l], chain[h] = chain[h], chain[l]
				}
				via = joinChain(chain)
			}
			if len(en.r.grants) == 0 && i == 0 && len(entries) == 1 {
				add(Step{Kind: "role", Role: name, Project: project, Note: "the role has no scopes"})
			}
			for _, g := range en.r.grants {
				st := Step{Kind: "role", Role: en.r.name, Via: via, Project: project, Pattern: g.pattern}
				switch filled, ok := fillGrant(g, vals, project); {
				case ok:
					st.Filled = filled
					st.Matched = matchOne(filled, scope)
				case project != "" && g.t.vars&varProject == 0:
					st.Note = fmt.Sprintf("does not use ${project}: a role assigned in project %s grants only inside it", project)
				default:
					if m := missingVars(g.t, vals); m != "" {
						st.Note = "no valid value for " + m
					} else {
						st.Note = "the filled pattern is not valid (longer than the scope limit)"
					}
				}
				if st.Matched && g.exempt {
					st.Note = "acl_exempt"
				}
				add(st)
			}
		}
	}
}

// missingVars names the variables of t that vals cannot fill.
func missingVars(t tmpl, vals templateValues) string {
	var out []string
	if t.vars&varSub != 0 && !validTemplateValue(vals.sub) {
		out = append(out, fmt.Sprintf("${sub} = %q", truncate(vals.sub, 64)))
	}
	if t.vars&varProject != 0 && !validTemplateValue(vals.project) {
		out = append(out, fmt.Sprintf("${project} = %q", truncate(vals.project, 64)))
	}
	if t.vars&varRealm != 0 && !validTemplateValue(vals.realm) {
		out = append(out, fmt.Sprintf("${realm} = %q", truncate(vals.realm, 64)))
	}
	return strings.Join(out, ", ")
}

func (p *Policy) explainStream(pr *Principal, scope string, add func(Step)) {
	name, write, ok := streamScope(scope)
	if !ok {
		return
	}
	st := p.streams[name]
	if st == nil {
		if len(p.streams) > 0 {
			add(Step{Kind: "stream", Note: fmt.Sprintf("stream %q has no rule in the policy", name)})
		}
		return
	}
	op, rule, roleField := "read", st.read, "read_roles"
	if write {
		op, rule, roleField = "write", st.write, "write_roles"
	}
	s := Step{Kind: "stream", Pattern: streamPrefix + name + ":" + op}
	b := p.Bind(pr)
	switch {
	case !p.doc.streamAuth:
		s.Matched, s.Note = true, "stream_auth is false: every stream is open"
	case !st.required:
		s.Matched, s.Note = true, "the stream does not require authentication"
	case pr == nil:
		s.Note = "the stream requires authentication and the request has no credential"
	case b.admin:
		s.Matched, s.Role, s.Project = true, b.adminRole, b.adminRealm
		s.Note = "admin_roles: admins read and write every stream"
	case rule == nil && !write:
		s.Matched, s.Note = true, "no read_roles: any authenticated principal reads"
	case rule == nil:
		s.Note = "no write_roles: only admins write"
	default:
		role, realm, ok := rule.match(b.realms)
		s.Matched, s.Role, s.Project = ok, role, realm
		if ok {
			s.Note = roleField + " matches"
		} else {
			s.Note = fmt.Sprintf("no role in %s: holds %s; %s names %s", roleField, describeRealms(b.realms), roleField, describeRule(rule))
		}
	}
	add(s)
}

func describeRealms(rs []realmRoles) string {
	if len(rs) == 0 {
		return "no realm"
	}
	parts := make([]string, 0, len(rs))
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%s: [%s]", r.realm, strings.Join(r.roles, ", ")))
	}
	return strings.Join(parts, "; ")
}

func describeRule(rr realmRule) string {
	realms := make([]string, 0, len(rr))
	for realm := range rr {
		realms = append(realms, realm)
	}
	sort.Strings(realms)
	parts := make([]string, 0, len(realms))
	for _, realm := range realms {
		m := rr[realm]
		roles := make([]string, 0, len(m.roles))
		for r := range m.roles {
			roles = append(roles, r)
		}
		sort.Strings(roles)
		parts = append(parts, fmt.Sprintf("%s: [%s]", realm, strings.Join(roles, ", ")))
	}
	return strings.Join(parts, "; ")
}

func (p *Policy) explainACL(pr *Principal, scope string, add func(Step)) {
	subjects, ok := p.doc.acls[scope]
	if !ok {
		return
	}
	s := Step{Kind: "acl", Pattern: scope}
	listed := strings.Join(subjects, ", ")
	if listed == "" {
		listed = "no subject"
	}
	switch {
	case pr == nil:
		s.Note = "the ACL lists " + listed + "; an anonymous request is on no ACL"
	case p.acls[scope].admits(pr.Subject, false):
		s.Matched = true
		s.Note = "the ACL lists " + listed + ", including " + pr.Subject
	default:
		s.Note = "the ACL lists " + listed + ", not " + pr.Subject + "; only a pattern of an acl_exempt role passes it"
	}
	add(s)
}
