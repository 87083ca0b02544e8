package rbac

import (
	"fmt"
	"reflect"
	"sort"

	"gopkg.in/yaml.v3"
)

// Mode is a policy's overall stance.
type Mode uint8

const (
	// DenyAll grants nothing through the policy: roles, assignments and
	// stream rules are loaded and validated but grant nothing. The scopes
	// a credential carries itself still apply, and ACLs still narrow them.
	// It is the zero Mode, and the mode of DefaultPolicy.
	DenyAll Mode = iota
	// RBAC grants through roles, assignments and stream rules, narrowed
	// by ACLs.
	RBAC
	// None grants every scope to every binding, anonymous ones included.
	// It is meant for development only.
	None
)

// String returns the mode as a policy file spells it.
func (m Mode) String() string {
	switch m {
	case DenyAll:
		return "deny_all"
	case RBAC:
		return "rbac"
	case None:
		return "none"
	}
	return fmt.Sprintf("Mode(%d)", uint8(m))
}

// document is a policy file as written, validated and normalised: empty
// lists are nil. Two files with equal documents are equivalent.
type document struct {
	mode       Mode
	streamAuth bool
	roles      map[string]*roleDoc
	subjects   map[string]*subjectDoc
	acls       map[string][]string // "<resource>:<action>" -> subjects
	streams    map[string]*streamDoc
	adminRoles map[string][]string // realm -> roles, "*" for any
}

type roleDoc struct {
	scopes    []string
	inherits  []string
	aclExempt bool
}

type subjectDoc struct {
	roles    []string
	projects map[string][]string
}

type streamDoc struct {
	auth *streamAuthDoc // nil: no auth block
}

type streamAuthDoc struct {
	required    bool
	read, write map[string][]string // nil: omitted
}

// A Policy is a validated, compiled authorization policy (see the package
// documentation for the file format and its semantics). It is immutable
// once returned, apart from an internal, bounded memo of compiled role sets,
// and is safe for concurrent use. A policy is swapped by replacing the
// pointer to it, never by changing one.
type Policy struct {
	doc      document
	roles    map[string]*role
	acls     map[string]*aclEntry
	streams  map[string]*streamRule
	admin    realmRule // nil: no admin roles
	patterns int       // patterns declared by all roles
	memo     memo
}

// role is a compiled role: its own grants and the roles it inherits.
type role struct {
	name     string
	grants   []roleGrant
	inherits []*role // in file order; unknown names are a load error
	vars     uint8   // template variables used anywhere in its closure
}

// roleGrant is one pattern as written in a role.
type roleGrant struct {
	pattern string
	t       tmpl
	exempt  bool // the role is acl_exempt
}

// aclEntry lists the subjects an ACL admits.
type aclEntry struct {
	subjects map[string]struct{}
}

// admits reports whether the ACL lists subject. An anonymous binding has
// no subject and is on no ACL.
func (a *aclEntry) admits(subject string, anonymous bool) bool {
	if anonymous {
		return false
	}
	_, ok := a.subjects[subject]
	return ok
}

// realmRule maps a realm to the roles that match in it.
type realmRule map[string]*roleMatch

// roleMatch is one realm's role list: any role ("*") or a set.
type roleMatch struct {
	any   bool
	roles map[string]struct{}
}

// streamRule is a compiled stream rule.
type streamRule struct {
	required    bool
	read, write realmRule // nil: omitted (the default table applies)
}

// DefaultPolicy returns the policy in force when none is configured: mode
// deny_all, nothing else. Only the scopes a credential carries itself grant
// anything.
func DefaultPolicy() *Policy {
	p, err := compilePolicy(document{mode: DenyAll, streamAuth: true}, nil)
	if err != nil {
		panic(err) // an empty document always compiles
	}
	return p
}

// ParsePolicy parses, validates and compiles a policy file. Every problem
// found is reported, with its position and path, in a *PolicyError; on
// error no Policy is returned. A policy file names its mode explicitly.
func ParsePolicy(data []byte) (*Policy, error) {
	if len(data) > MaxPolicySize {
		return nil, &PolicyError{Problems: []Problem{{Message: fmt.Sprintf("the file is larger than %d bytes", MaxPolicySize)}}}
	}
	root, prob := decodeYAML(data)
	if prob != nil {
		return nil, &PolicyError{Problems: []Problem{*prob}}
	}
	ps := &parser{}
	doc := ps.parseDocument(root)
	return compilePolicy(doc, ps)
}

// compilePolicy checks what needs the whole document (role references,
// inheritance cycles, project scoping) and compiles it. ps holds the
// problems and references found while parsing; nil for a document built
// in code.
func compilePolicy(doc document, ps *parser) (*Policy, error) {
	if ps == nil {
		ps = &parser{}
	}
	p := &Policy{doc: doc, roles: make(map[string]*role, len(doc.roles))}
	for name, rd := range doc.roles {
		r := &role{name: name}
		for _, s := range rd.scopes {
			t, _ := parseTemplate(s) // validated by the parser
			r.grants = append(r.grants, roleGrant{pattern: s, t: t, exempt: rd.aclExempt})
			r.vars |= t.vars
		}
		p.patterns += len(rd.scopes)
		p.roles[name] = r
	}
	inherits := map[string][]roleRef{}
	for _, ref := range ps.refs {
		if p.roles[ref.name] == nil {
			if ref.from != "" {
				ps.errorf(ref.node, ref.path, "role %q inherits unknown role %q", truncate(ref.from, 64), truncate(ref.name, 64))
			} else {
				ps.errorf(ref.node, ref.path, "unknown role %q", truncate(ref.name, 64))
			}
			continue
		}
		if ref.from != "" {
			inherits[ref.from] = append(inherits[ref.from], ref)
		}
	}
	for name, r := range p.roles {
		for _, in := range doc.roles[name].inherits {
			if c := p.roles[in]; c != nil {
				r.inherits = append(r.inherits, c)
			}
		}
	}
	p.findCycles(ps, inherits)
	p.closeVars()
	p.checkProjectScoping(ps)

	if len(ps.probs) > 0 {
		sortProblems(ps.probs)
		if ps.dropped > 0 {
			ps.probs = append(ps.probs, Problem{Message: fmt.Sprintf("%d more problems not shown", ps.dropped)})
		}
		return nil, &PolicyError{Problems: ps.probs}
	}

	if len(doc.acls) > 0 {
		p.acls = make(map[string]*aclEntry, len(doc.acls))
		for scope, subjects := range doc.acls {
			e := &aclEntry{subjects: make(map[string]struct{}, len(subjects))}
			for _, s := range subjects {
				e.subjects[s] = struct{}{}
			}
			p.acls[scope] = e
		}
	}
	if len(doc.streams) > 0 {
		p.streams = make(map[string]*streamRule, len(doc.streams))
		for name, sd := range doc.streams {
			sr := &streamRule{}
			if sd.auth != nil {
				sr.required = sd.auth.required
				sr.read = compileRealmRule(sd.auth.read)
				sr.write = compileRealmRule(sd.auth.write)
			}
			p.streams[name] = sr
		}
	}
	p.admin = compileRealmRule(doc.adminRoles)
	return p, nil
}

func compileRealmRule(m map[string][]string) realmRule {
	if m == nil {
		return nil
	}
	rr := make(realmRule, len(m))
	for realm, roles := range m {
		rm := &roleMatch{roles: make(map[string]struct{}, len(roles))}
		for _, r := range roles {
			if r == "*" {
				rm.any = true
			}
			rm.roles[r] = struct{}{}
		}
		rr[realm] = rm
	}
	return rr
}

// findCycles reports every inheritance cycle once, at the inherits entry
// that closes it. The walk is iterative: a long chain of roles must not
// exhaust the stack.
func (p *Policy) findCycles(ps *parser, refs map[string][]roleRef) {
	const (
		unseen = iota
		onPath
		done
	)
	state := make(map[string]int, len(p.roles))
	type frame struct {
		r    *role
		next int
	}
	for _, start := range sortedRoleNames(p.roles) {
		if state[start] != unseen {
			continue
		}
		stack := []frame{{r: p.roles[start]}}
		state[start] = onPath
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.next >= len(top.r.inherits) {
				state[top.r.name] = done
				stack = stack[:len(stack)-1]
				continue
			}
			i := top.next
			top.next++
			c := top.r.inherits[i]
			switch state[c.name] {
			case unseen:
				state[c.name] = onPath
				stack = append(stack, frame{r: c})
			case onPath:
				var cycle []string
				for j := range stack {
					if stack[j].r == c {
						for _, f := range stack[j:] {
							cycle = append(cycle, f.r.name)
						}
						break
					}
				}
				cycle = append(cycle, c.name)
				if rs := refs[top.r.name]; i < len(rs) {
					ps.errorf(rs[i].node, rs[i].path, "inheritance cycle: %s", joinChain(cycle))
				} else {
					ps.errorf(nil, "roles", "inheritance cycle: %s", joinChain(cycle))
				}
			}
		}
	}
}

// closeVars folds the template variables of inherited roles into each
// role, so that a binding knows which values its memo key needs.
func (p *Policy) closeVars() {
	seen := make(map[*role]bool, len(p.roles))
	var visit func(r *role) uint8
	visit = func(r *role) uint8 {
		if seen[r] {
			return r.vars // finished, or on a cycle (a load error anyway)
		}
		seen[r] = true
		for _, c := range r.inherits {
			r.vars |= visit(c)
		}
		return r.vars
	}
	for _, name := range sortedRoleNames(p.roles) {
		visit(p.roles[name])
	}
}

// checkProjectScoping enforces that a role assigned per project grants
// only inside that project: every pattern of its closure must use
// ${project}. A role granting anything else is a load error where the
// policy assigns it per project; where a credential carries the assignment
// itself, Bind drops such patterns instead.
func (p *Policy) checkProjectScoping(ps *parser) {
	type leak struct {
		role, pattern string
	}
	memo := map[*role]*leak{}
	var find func(r *role) *leak
	find = func(r *role) *leak {
		if l, ok := memo[r]; ok {
			return l
		}
		memo[r] = nil // guards cycles
		for _, g := range r.grants {
			if g.t.vars&varProject == 0 {
				memo[r] = &leak{r.name, g.pattern}
				return memo[r]
			}
		}
		for _, c := range r.inherits {
			if l := find(c); l != nil {
				memo[r] = l
				return l
			}
		}
		return nil
	}
	for _, ref := range ps.refs {
		r := p.roles[ref.name]
		if ref.project == "" || r == nil {
			continue
		}
		if l := find(r); l != nil {
			via := ""
			if l.role != r.name {
				via = fmt.Sprintf(" (inherited from %q)", truncate(l.role, 64))
			}
			ps.errorf(ref.node, ref.path, "role %q is assigned per project, but its pattern %q%s does not use ${project} and would grant outside project %q", truncate(r.name, 64), truncate(l.pattern, 64), via, truncate(ref.project, 64))
		}
	}
}

func sortedRoleNames(m map[string]*role) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func joinChain(names []string) string {
	s := ""
	for i, n := range names {
		if i > 0 {
			s += " > "
		}
		s += n
	}
	return s
}

// Mode returns the policy's mode.
func (p *Policy) Mode() Mode { return p.doc.mode }

// Equal reports whether p and q are the same policy: the same mode, roles,
// assignments, ACLs, stream rules and admin roles, whatever the formatting,
// key order or comments of their files. A reload may keep the current
// policy (and its warm memo) when the new file is Equal to it.
func (p *Policy) Equal(q *Policy) bool {
	if p == nil || q == nil {
		return p == q
	}
	return reflect.DeepEqual(p.doc, q.doc)
}

// Summary counts what a policy holds, for logs and metrics.
type Summary struct {
	Mode      Mode
	Roles     int // roles declared
	Patterns  int // patterns declared by all roles
	Subjects  int // subjects with assignments
	ACLs      int // resource/action pairs with an ACL
	Streams   int // streams with rules
	BoundSets int // compiled role sets currently memoised
}

// Summary returns counts of what p holds.
func (p *Policy) Summary() Summary {
	return Summary{
		Mode:      p.doc.mode,
		Roles:     len(p.doc.roles),
		Patterns:  p.patterns,
		Subjects:  len(p.doc.subjects),
		ACLs:      len(p.doc.acls),
		Streams:   len(p.doc.streams),
		BoundSets: p.memo.len(),
	}
}

var _ yaml.Marshaler = (*Policy)(nil)
