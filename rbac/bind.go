package rbac

import (
	"encoding/binary"
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Reason says why a Decision allows or denies. It is a small, closed set:
// safe as a metric label or a log field.
type Reason uint8

const (
	// NoGrant denies: nothing the binding holds grants the scope. It is the
	// zero Reason, so that a zero Decision denies.
	NoGrant Reason = iota
	// NotOnACL denies: a grant matched, but the policy has an ACL for the
	// scope's resource and action that does not list the subject.
	NotOnACL
	// AuthRequired denies: an anonymous binding asked for a stream that
	// requires authentication (a transport answers 401, not 403).
	AuthRequired
	// StreamForbidden denies: the stream requires a role the principal
	// does not hold in any of its realms, or reserves writes to admins.
	StreamForbidden
	// Granted allows: a pattern of the principal's own scopes (Role is "")
	// or of one of its roles matched.
	Granted
	// Unrestricted allows: the policy's mode is none.
	Unrestricted
	// StreamOpen allows: the stream requires no authentication.
	StreamOpen
	// StreamAuthenticated allows: the stream requires authentication and
	// names no read roles, so any authenticated principal reads.
	StreamAuthenticated
	// StreamRole allows: the principal holds one of the stream's roles in
	// the realm (Project) the rule names.
	StreamRole
	// StreamAdmin allows: the principal holds one of the policy's
	// admin_roles, which read and write every stream.
	StreamAdmin

	numReasons
)

var reasonNames = [numReasons]string{
	NoGrant:             "no_grant",
	NotOnACL:            "not_on_acl",
	AuthRequired:        "auth_required",
	StreamForbidden:     "stream_forbidden",
	Granted:             "granted",
	Unrestricted:        "unrestricted",
	StreamOpen:          "stream_open",
	StreamAuthenticated: "stream_authenticated",
	StreamRole:          "stream_role",
	StreamAdmin:         "stream_admin",
}

// String returns the reason's stable snake_case name.
func (r Reason) String() string {
	if r < numReasons {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// Allowed reports whether the reason is one that allows.
func (r Reason) Allowed() bool { return r >= Granted && r < numReasons }

// A Decision is the answer to one authorization question. Its strings point
// into the policy and the principal: a Decision allocates nothing.
type Decision struct {
	Allowed bool
	Reason  Reason
	// Role is the role that granted: the role whose scopes hold Pattern
	// (an inherited role, when the grant came through inheritance), or
	// the stream or admin role that matched ("*" for a wildcard). It is ""
	// for the principal's own scopes and for denials.
	Role string
	// Project is the project, domain or realm the granting assignment or
	// stream role holds in; "" for a global one.
	Project string
	// Pattern is the pattern that matched, with its templates filled; ""
	// for stream decisions and denials.
	Pattern string
}

// String describes the decision, for example
// "allow (granted, role publisher in p2, pattern projects/p2/topics/*:publish)"
// or "deny (not_on_acl)".
func (d Decision) String() string {
	var b strings.Builder
	if d.Allowed {
		b.WriteString("allow (")
	} else {
		b.WriteString("deny (")
	}
	b.WriteString(d.Reason.String())
	if d.Role != "" {
		b.WriteString(", role ")
		b.WriteString(d.Role)
	}
	if d.Project != "" {
		if d.Role == "" {
			b.WriteString(",")
		}
		b.WriteString(" in ")
		b.WriteString(d.Project)
	}
	if d.Pattern != "" {
		b.WriteString(", pattern ")
		b.WriteString(d.Pattern)
	}
	b.WriteString(")")
	return b.String()
}

// A Binding is a principal resolved against one policy: its roles (from the
// policy's assignments and from the credential itself), their templates
// filled, their patterns compiled. It is immutable and safe for concurrent
// use, and is meant to be cached with the principal: Decide is the hot path.
// A Binding stays tied to the policy that made it; see [Binding.Policy].
type Binding struct {
	policy    *Policy
	subject   string
	anonymous bool
	rbac      bool     // roles and stream rules apply (mode rbac)
	own       *Matcher // the principal's own scopes; nil: none
	set       *roleSet // the compiled patterns of its roles; nil: none
	realms    []realmRoles
	admin     bool // holds one of the policy's admin_roles
	// adminRole and adminRealm name the admin role that matched.
	adminRole, adminRealm string
}

// realmRoles is the closure of the roles a principal holds in one realm.
type realmRoles struct {
	realm string
	roles []string
}

// roleSet is the compiled patterns of one distinct set of assignments.
type roleSet struct {
	all        *Matcher // every role pattern
	exempt     *Matcher // the patterns of acl_exempt roles; nil: none
	attr       map[string]grantAttr
	exemptAttr map[string]grantAttr
}

// grantAttr says where a filled pattern came from.
type grantAttr struct {
	role    string // the role whose scopes hold the pattern
	project string // the project of the assignment; "" for a global one
}

// Policy returns the policy b was bound against. A cache of bindings
// compares it with the policy in force: a binding of an older policy must
// be bound again.
func (b *Binding) Policy() *Policy { return b.policy }

// Anonymous reports whether b stands for a request without a credential.
func (b *Binding) Anonymous() bool { return b.anonymous }

// Bind resolves pr against p. A nil pr binds an anonymous request, which
// only streams that require no authentication (and mode none) allow.
//
// Roles come from the policy's subjects entry for pr.Subject and from pr
// itself (Roles, ProjectRoles), merged; pr.Scopes (compiled in pr.Grants)
// always apply. The compiled patterns are memoised per distinct set of
// assignments (and template values they use), so that binding the next
// principal with the same roles costs a lookup; the memo is bounded.
func (p *Policy) Bind(pr *Principal) *Binding {
	b := &Binding{policy: p, rbac: p.doc.mode == RBAC}
	if pr == nil {
		b.anonymous = true
		return b
	}
	b.subject = pr.Subject
	b.own = ownMatcher(pr)
	if !b.rbac {
		return b
	}
	a := p.assign(pr)
	if p.streams != nil || p.admin != nil {
		b.realms = p.realmsOf(pr, a)
		b.findAdmin()
	}
	b.set = p.roleSetOf(pr, a)
	return b
}

// ownMatcher returns the principal's own compiled scopes. Principals built
// by the keystore and the verifier carry them in Grants; otherwise the
// valid ones of Scopes are compiled here.
func ownMatcher(pr *Principal) *Matcher {
	if pr.Grants != nil || len(pr.Scopes) == 0 {
		return pr.Grants
	}
	return compileValid(pr.Scopes)
}

// compileValid compiles the valid patterns of ps, leaving the others out.
func compileValid(ps []string) *Matcher {
	if m, err := Compile(ps); err == nil {
		return m
	}
	valid := make([]string, 0, len(ps))
	for _, s := range ps {
		if ValidatePattern(s) == nil {
			valid = append(valid, s)
		}
	}
	return MustCompile(valid...)
}

// Decide answers whether b may act on scope. It allocates nothing and takes
// no lock. scope should be valid per [ValidateScope]: an invalid one is
// matched as it is, and only the super-scope (or mode none) allows it.
//
// The order is: mode none allows everything; otherwise the principal's own
// scopes, then its roles' patterns, then (for streams/<name>:read|write of a
// declared stream) the stream's rule are tried, and the first grant found is
// kept; finally, an ACL on the scope narrows it: the subject must be listed,
// unless a pattern of an acl_exempt role matches.
func (b *Binding) Decide(scope string) Decision {
	p := b.policy
	if p.doc.mode == None {
		return Decision{Allowed: true, Reason: Unrestricted}
	}
	d := b.grant(scope)
	if !d.Allowed || p.acls == nil {
		return d
	}
	acl := p.acls[scope]
	if acl == nil || acl.admits(b.subject, b.anonymous) {
		return d
	}
	if s := b.set; s != nil && s.exempt != nil {
		if g, ok := s.exempt.Match(scope); ok {
			a := s.exemptAttr[g]
			return Decision{Allowed: true, Reason: Granted, Role: a.role, Project: a.project, Pattern: g}
		}
	}
	return Decision{Reason: NotOnACL}
}

// grant finds the first grant of scope, before ACLs.
func (b *Binding) grant(scope string) Decision {
	if g, ok := b.own.Match(scope); ok {
		return Decision{Allowed: true, Reason: Granted, Pattern: g}
	}
	if s := b.set; s != nil {
		if g, ok := s.all.Match(scope); ok {
			a := s.attr[g]
			return Decision{Allowed: true, Reason: Granted, Role: a.role, Project: a.project, Pattern: g}
		}
	}
	if b.rbac && b.policy.streams != nil {
		if name, write, ok := streamScope(scope); ok {
			if st := b.policy.streams[name]; st != nil {
				return b.stream(st, write)
			}
		}
	}
	return Decision{Reason: NoGrant}
}

// streamPrefix starts the first segment of a stream scope.
const streamPrefix = "streams/"

// streamScope splits streams/<name>:read or streams/<name>:write.
func streamScope(scope string) (name string, write, ok bool) {
	if !strings.HasPrefix(scope, streamPrefix) {
		return "", false, false
	}
	i := strings.IndexByte(scope, Separator)
	if i < 0 {
		return "", false, false
	}
	switch scope[i+1:] {
	case "read":
	case "write":
		write = true
	default:
		return "", false, false
	}
	name = scope[len(streamPrefix):i]
	return name, write, name != ""
}

// stream applies a stream rule: Aviso's default table, realm-scoped roles
// with the "*" wildcard, and the admin override (see the package
// documentation, and aviso-server's docs/src/authentication.md, "Read vs.
// write access defaults" and "Role matching rules").
func (b *Binding) stream(st *streamRule, write bool) Decision {
	if !b.policy.doc.streamAuth || !st.required {
		return Decision{Allowed: true, Reason: StreamOpen}
	}
	if b.anonymous {
		return Decision{Reason: AuthRequired}
	}
	if b.admin {
		return Decision{Allowed: true, Reason: StreamAdmin, Role: b.adminRole, Project: b.adminRealm}
	}
	rule := st.read
	if write {
		rule = st.write
	}
	if rule == nil {
		if write {
			return Decision{Reason: StreamForbidden} // omitted write_roles: admins only
		}
		return Decision{Allowed: true, Reason: StreamAuthenticated}
	}
	if role, realm, ok := rule.match(b.realms); ok {
		return Decision{Allowed: true, Reason: StreamRole, Role: role, Project: realm}
	}
	return Decision{Reason: StreamForbidden}
}

// match finds a role of rr held in its realm: "*" for a realm whose list
// is the wildcard (membership of the realm is enough), else the first role
// of the principal's that the realm's list names.
func (rr realmRule) match(realms []realmRoles) (role, realm string, ok bool) {
	for _, r := range realms {
		m := rr[r.realm]
		if m == nil {
			continue
		}
		if m.any {
			return "*", r.realm, true
		}
		for _, name := range r.roles {
			if _, ok := m.roles[name]; ok {
				return name, r.realm, true
			}
		}
	}
	return "", "", false
}

func (b *Binding) findAdmin() {
	if b.policy.admin == nil {
		return
	}
	if role, realm, ok := b.policy.admin.match(b.realms); ok {
		b.admin, b.adminRole, b.adminRealm = true, role, realm
	}
}

// assignments are the roles a principal holds, from the policy and from
// the credential, merged.
type assignments struct {
	global   []string       // sorted, distinct; declared or not
	projects []projectRoles // sorted by project
}

type projectRoles struct {
	project string
	roles   []string // sorted, distinct
}

func (p *Policy) assign(pr *Principal) assignments {
	var a assignments
	sd := p.doc.subjects[pr.Subject]
	var subjRoles []string
	var subjProjects map[string][]string
	if sd != nil {
		subjRoles, subjProjects = sd.roles, sd.projects
	}
	a.global = union(pr.Roles, subjRoles)
	if len(pr.ProjectRoles)+len(subjProjects) == 0 {
		return a
	}
	names := make([]string, 0, len(pr.ProjectRoles)+len(subjProjects))
	for proj := range pr.ProjectRoles {
		names = append(names, proj)
	}
	for proj := range subjProjects {
		if _, dup := pr.ProjectRoles[proj]; !dup {
			names = append(names, proj)
		}
	}
	sort.Strings(names)
	for _, proj := range names {
		a.projects = append(a.projects, projectRoles{project: proj, roles: union(pr.ProjectRoles[proj], subjProjects[proj])})
	}
	return a
}

// union returns the sorted, distinct strings of x and y, in a new slice.
func union(x, y []string) []string {
	if len(x)+len(y) == 0 {
		return nil
	}
	out := make([]string, 0, len(x)+len(y))
	out = append(append(out, x...), y...)
	sort.Strings(out)
	j := 0
	for i, s := range out {
		if i == 0 || s != out[j-1] {
			out[j] = s
			j++
		}
	}
	return out[:j]
}

// closureNames returns the names of roles and of every role they inherit,
// sorted and distinct. Names the policy does not declare stand for
// themselves: a JWT's roles need not be declared to match a stream rule.
func (p *Policy) closureNames(roles []string) []string {
	var out []string
	for _, name := range roles {
		r := p.roles[name]
		if r == nil {
			out = append(out, name)
			continue
		}
		for _, e := range closure(r) {
			out = append(out, e.r.name)
		}
	}
	return union(out, nil)
}

// realmsOf returns the roles the principal holds in each realm: in its own
// realm (a JWT's), its global roles; in any realm, the roles assigned for
// that realm (a project, domain or realm entry).
func (p *Policy) realmsOf(pr *Principal, a assignments) []realmRoles {
	var out []realmRoles
	if pr.Realm != "" {
		roles := a.global
		for _, pj := range a.projects {
			if pj.project == pr.Realm {
				roles = union(roles, pj.roles)
			}
		}
		out = append(out, realmRoles{realm: pr.Realm, roles: p.closureNames(roles)})
	}
	for _, pj := range a.projects {
		if pj.project != pr.Realm {
			out = append(out, realmRoles{realm: pj.project, roles: p.closureNames(pj.roles)})
		}
	}
	return out
}

// closureEntry is one role of a closure, with the index of the role it was
// reached from (-1 for the root), for explanations.
type closureEntry struct {
	r      *role
	parent int
}

// closure returns r and every role it inherits, breadth first: each role
// once, through its shortest chain.
func closure(r *role) []closureEntry {
	out := []closureEntry{{r: r, parent: -1}}
	if len(r.inherits) == 0 {
		return out
	}
	seen := map[*role]bool{r: true}
	for i := 0; i < len(out); i++ {
		for _, c := range out[i].r.inherits {
			if !seen[c] {
				seen[c] = true
				out = append(out, closureEntry{r: c, parent: i})
			}
		}
	}
	return out
}

// roleSetOf returns the compiled patterns of a's declared roles, from the
// memo when this set of assignments (and the template values its patterns
// use) was bound before.
func (p *Policy) roleSetOf(pr *Principal, a assignments) *roleSet {
	var buf [256]byte
	key := buf[:0]
	var vars uint8
	for _, name := range a.global {
		if r := p.roles[name]; r != nil {
			vars |= r.vars
			key = appendKeyField(append(key, 'g'), name)
		}
	}
	for _, pj := range a.projects {
		for _, name := range pj.roles {
			if r := p.roles[name]; r != nil {
				vars |= r.vars
				key = appendKeyField(appendKeyField(append(key, 'p'), pj.project), name)
			}
		}
	}
	if len(key) == 0 {
		return nil
	}
	var vals templateValues
	if vars&varSub != 0 {
		vals.sub = pr.Subject
		key = appendKeyField(append(key, 's'), pr.Subject)
	}
	if vars&varRealm != 0 {
		vals.realm = pr.Realm
		key = appendKeyField(append(key, 'r'), pr.Realm)
	}
	if s := p.memo.get(key); s != nil {
		return s
	}
	return p.memo.put(string(key), p.buildRoleSet(a, vals))
}

// appendKeyField appends s, length-prefixed so that no two field lists
// share an encoding.
func appendKeyField(key []byte, s string) []byte {
	return append(binary.AppendUvarint(key, uint64(len(s))), s...)
}

// buildRoleSet fills and compiles the patterns of a's declared roles. A
// pattern whose template has no valid value is dropped, and so is, in a
// per-project assignment, a pattern that does not use ${project}: a
// project role never grants outside its project.
func (p *Policy) buildRoleSet(a assignments, vals templateValues) *roleSet {
	s := &roleSet{attr: map[string]grantAttr{}, exemptAttr: map[string]grantAttr{}}
	var all, exempt []string
	add := func(names []string, project string) {
		v := vals
		v.project = project
		for _, name := range names {
			r := p.roles[name]
			if r == nil {
				continue
			}
			for _, e := range closure(r) {
				for _, g := range e.r.grants {
					filled, ok := fillGrant(g, v, project)
					if !ok {
						continue
					}
					if _, dup := s.attr[filled]; !dup {
						s.attr[filled] = grantAttr{role: e.r.name, project: project}
						all = append(all, filled)
					}
					if _, dup := s.exemptAttr[filled]; g.exempt && !dup {
						s.exemptAttr[filled] = grantAttr{role: e.r.name, project: project}
						exempt = append(exempt, filled)
					}
				}
			}
		}
	}
	add(a.global, "")
	for _, pj := range a.projects {
		add(pj.roles, pj.project)
	}
	if len(all) > 0 {
		s.all = compileValid(all)
	}
	if len(exempt) > 0 {
		s.exempt = compileValid(exempt)
	}
	return s
}

// fillGrant fills one role pattern for an assignment in project ("" for a
// global one), or reports why it does not apply.
func fillGrant(g roleGrant, v templateValues, project string) (string, bool) {
	if project != "" && g.t.vars&varProject == 0 {
		return "", false
	}
	filled, ok := g.t.fill(g.pattern, v)
	if !ok || g.t.vars != 0 && ValidatePattern(filled) != nil {
		return "", false
	}
	return filled, true
}

// maxBoundSets bounds the memo of compiled role sets per policy. When it is
// full, an arbitrary entry makes room: a binding keeps its set alive, so
// eviction only costs a recompilation for the next principal with it.
const maxBoundSets = 4096

// memo holds compiled role sets by the encoding of their assignments.
type memo struct {
	mu sync.RWMutex
	m  map[string]*roleSet // guarded by mu
}

func (m *memo) get(key []byte) *roleSet {
	m.mu.RLock()
	s := m.m[string(key)] // no allocation: the conversion is only a lookup key
	m.mu.RUnlock()
	return s
}

// put stores s under key unless another binding stored one first, and
// returns the stored set.
func (m *memo) put(key string, s *roleSet) *roleSet {
	m.mu.Lock()
	defer m.mu.Unlock()
	if old := m.m[key]; old != nil {
		return old
	}
	if m.m == nil {
		m.m = make(map[string]*roleSet)
	}
	if len(m.m) >= maxBoundSets {
		for k := range m.m {
			delete(m.m, k)
			break
		}
	}
	m.m[key] = s
	return s
}

func (m *memo) len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.m)
}
