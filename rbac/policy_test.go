package rbac

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

func mustParse(t testing.TB, src string) *Policy {
	t.Helper()
	p, err := ParsePolicy([]byte(src))
	if err != nil {
		t.Fatalf("ParsePolicy: %v", err)
	}
	return p
}

func principal(subject string, roles ...string) *Principal {
	return &Principal{Subject: subject, Profile: &Profile{Kind: "api_key", Roles: roles}}
}

// TestExamplePolicy loads the documented example and checks the decisions
// its comments promise.
func TestExamplePolicy(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("testdata", "example-policy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := ParsePolicy(data)
	if err != nil {
		t.Fatal(err)
	}
	if p.Mode() != RBAC {
		t.Fatalf("mode %v", p.Mode())
	}
	checkRoundTrip(t, p)
	jwt := func(sub, realm string, roles ...string) *Principal {
		return &Principal{Subject: sub, Profile: &Profile{Kind: "jwt", Realm: realm, Roles: roles}}
	}
	cases := []struct {
		name  string
		pr    *Principal
		scope string
		want  string
	}{
		{"inherited", principal("alice"), "tool:data:read", "allow (granted, role viewer, pattern tool:data:read)"},
		{"own role", principal("alice"), "tool:code:build", "allow (granted, role developer, pattern tool:code:*)"},
		{"not granted", principal("alice"), "tool:data:write", "deny (no_grant)"},
		{"project admin", principal("alice"), "projects/p1:delete", "allow (granted, role project_admin in p1, pattern projects/p1:*)"},
		{"on the ACL", principal("alice"), "projects/p1/topics/orders:publish", "allow (granted, role project_admin in p1, pattern projects/p1/*:*)"},
		{"publisher", principal("alice"), "projects/p2/topics/news:publish", "allow (granted, role publisher in p2, pattern projects/p2/topics/*:publish)"},
		{"off the ACL", principal("alice"), "projects/p2/topics/payroll:publish", "deny (not_on_acl)"},
		{"other project", principal("alice"), "projects/p3/topics/news:publish", "deny (no_grant)"},
		{"bob on the ACL", principal("bob"), "projects/p1/topics/orders:publish", "allow (granted, role publisher in p1, pattern projects/p1/topics/*:publish)"},
		{"bob elsewhere", principal("bob"), "projects/p2/topics/news:publish", "deny (no_grant)"},
		{"admin", principal("root"), "anything:at:all", "allow (granted, role admin, pattern *)"},
		{"admin is exempt", principal("root"), "projects/p2/topics/payroll:publish", "allow (granted, role admin, pattern *)"},
		{"carol holds nothing", principal("carol"), "projects/p2/topics/payroll:publish", "deny (no_grant)"},
		{"agent", principal("agent-7", "agent"), "mailbox:agent-7:read", "allow (granted, role agent, pattern mailbox:agent-7:*)"},
		{"other agent", principal("agent-7", "agent"), "mailbox:agent-8:read", "deny (no_grant)"},
		{"stream producer", jwt("u", "ecmwf", "producer"), "streams/mars:write", "allow (stream_role, role producer in ecmwf)"},
		{"stream reader", jwt("u", "ecmwf"), "streams/mars:read", "allow (stream_role, role * in ecmwf)"},
		{"stream non-producer", jwt("u", "ecmwf"), "streams/mars:write", "deny (stream_forbidden)"},
		{"stream other realm", jwt("u", "other", "producer"), "streams/mars:read", "deny (stream_forbidden)"},
		{"stream admin", jwt("u", "ecmwf", "admin"), "streams/mars:write", "allow (granted, role admin, pattern *)"},
		{"stream anonymous", nil, "streams/mars:read", "deny (auth_required)"},
		{"public stream", nil, "streams/public:write", "allow (stream_open)"},
		{"anonymous elsewhere", nil, "tool:data:read", "deny (no_grant)"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.Bind(tc.pr).Decide(tc.scope).String(); got != tc.want {
				t.Errorf("Decide(%q) = %s, want %s", tc.scope, got, tc.want)
			}
		})
	}
}

// TestParsePolicyReportsEveryProblem checks that one pass reports every
// problem of a file, each with its position and path.
func TestParsePolicyReportsEveryProblem(t *testing.T) {
	src := `mode: rbac
colour: blue
roles:
  viewer:
    scopes: ["tool:data:read", "tool::read", "tool:${user}:x", "a:${sub"]
    inherits: [ghost]
  a: {inherits: [b]}
  b: {inherits: [c]}
  c: {inherits: [a]}
  self: {inherits: [self]}
  extra: {scope: ["x"]}
  viewer: {}
  "*": {}
subjects:
  alice: {roles: [viewer, nobody]}
acls:
  "projects/*/topics/t": {publish: [alice]}
  "projects/p1/topics/t": {"pub:lish": [alice]}
stream_auth: maybe
`
	_, err := ParsePolicy([]byte(src))
	var pe *PolicyError
	if !errors.As(err, &pe) {
		t.Fatalf("got %v, want a *PolicyError", err)
	}
	want := []string{
		`2:1: colour: unknown field "colour" (known: mode, stream_auth, roles, subjects, acls, streams, admin_roles)`,
		`5:32: roles.viewer.scopes[1]: invalid pattern "tool::read": empty segment at byte 5`,
		`5:46: roles.viewer.scopes[2]: invalid pattern "tool:${user}:x": unknown template variable ${user} (known: ${sub}, ${project}, ${realm})`,
		`5:64: roles.viewer.scopes[3]: invalid pattern "a:${sub": unterminated template variable at byte 2`,
		`6:16: roles.viewer.inherits[0]: role "viewer" inherits unknown role "ghost"`,
		`9:18: roles.c.inherits[0]: inheritance cycle: a > b > c > a`,
		`10:21: roles.self.inherits[0]: inheritance cycle: self > self`,
		`11:11: roles.extra.scope: unknown field "scope" (known: scopes, inherits, acl_exempt)`,
		`12:3: roles.viewer: duplicate key "viewer" (first at 4:3)`,
		`13:3: roles["*"]: "*" is not a role name: it is the wildcard of stream and admin role lists`,
		`15:27: subjects.alice.roles[1]: unknown role "nobody"`,
		`17:3: acls["projects/*/topics/t"]: invalid ACL resource "projects/*/topics/t": it must be a literal scope prefix, without '*'`,
		`18:28: acls["projects/p1/topics/t"]["pub:lish"]: invalid ACL action "pub:lish": one literal segment, without ':' or '*'`,
		`19:14: stream_auth: must be true or false`,
	}
	var got []string
	for _, p := range pe.Problems {
		got = append(got, p.String())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("problems:\n%s\n\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if !strings.HasPrefix(err.Error(), "rbac: invalid policy: 14 problems\n\t2:1: colour:") {
		t.Errorf("Error() = %q", err.Error())
	}
}

func TestParsePolicyRejects(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"empty", "", "mode is required"},
		{"comment only", "# nothing\n", "mode is required"},
		{"null document", "~\n", "mode is required"},
		{"no mode", "roles: {}\n", "1:1: mode: mode is required (deny_all, rbac or none)"},
		{"unknown mode", "mode: allow_all\n", `1:7: mode: unknown mode "allow_all" (deny_all, rbac or none)`},
		{"mode not a string", "mode: [rbac]\n", "1:7: mode: must be a string"},
		{"not a mapping", "- mode: rbac\n", "1:1: must be a mapping"},
		{"syntax", "mode: rbac\nroles: {viewer: [\n", "YAML:"},
		{"two documents", "mode: rbac\n---\nmode: none\n", "2:1: more than one YAML document"},
		{"alias", "mode: rbac\nroles:\n  a: &x {scopes: [a]}\n  b: *x\n", "4:6: roles.b: YAML aliases are not supported in a policy"},
		{"merge key", "mode: rbac\nroles:\n  a:\n    <<: {scopes: [a]}\n", "4:5: roles.a: YAML merge keys (<<) are not supported in a policy"},
		{"key not a string", "mode: rbac\nroles:\n  [a]: {}\n", "3:3: roles: a key must be a string"},
		{"scopes not a list", "mode: rbac\nroles:\n  a: {scopes: tool:data:read}\n", "3:15: roles.a.scopes: must be a list of strings"},
		{"null pattern", "mode: rbac\nroles:\n  a: {scopes: [~]}\n", "3:16: roles.a.scopes[0]: must be a string"},
		{"empty pattern", "mode: rbac\nroles:\n  a: {scopes: [\"\"]}\n", `3:16: roles.a.scopes[0]: invalid pattern "": empty`},
		{"empty template", "mode: rbac\nroles:\n  a: {scopes: [\"a:${}\"]}\n", "empty template variable ${}"},
		{"bool field", "mode: rbac\nroles:\n  a: {acl_exempt: yes}\n", "3:19: roles.a.acl_exempt: must be true or false"},
		{"control character", "mode: rbac\nsubjects:\n  \"a\\tb\": {}\n", `subject name "a\tb" has a control character`},
		{"too large", "mode: rbac\n" + strings.Repeat("#", MaxPolicySize), "larger than"},
		{"empty ACL", "mode: rbac\nacls:\n  a:b: {}\n", "3:8: acls[\"a:b\"]: an ACL lists at least one action"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := ParsePolicy([]byte(tc.src))
			if err == nil || p != nil {
				t.Fatalf("ParsePolicy accepted %q", tc.src)
			}
			var pe *PolicyError
			if !errors.As(err, &pe) || len(pe.Problems) == 0 {
				t.Fatalf("got %v, want a *PolicyError", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %q, want it to contain %q", err.Error(), tc.want)
			}
		})
	}
}

func TestParsePolicyBoundsProblems(t *testing.T) {
	var b strings.Builder
	b.WriteString("mode: rbac\nroles:\n")
	for i := range maxProblems + 50 {
		fmt.Fprintf(&b, "  r%d: {scopes: [\"a::b\"]}\n", i)
	}
	_, err := ParsePolicy([]byte(b.String()))
	var pe *PolicyError
	if !errors.As(err, &pe) || len(pe.Problems) != maxProblems+1 || pe.Problems[maxProblems].Message != "50 more problems not shown" {
		t.Fatalf("got %d problems, last %v", len(pe.Problems), pe.Problems[len(pe.Problems)-1])
	}
}

func TestParsePolicyAcceptsScalarNames(t *testing.T) {
	p := mustParse(t, `mode: rbac
roles:
  viewer: ~
  reader:
subjects:
  42: {roles: [viewer]}
  true: {projects: {p1: []}}
acls:
  a:b:
    c: []
`)
	if got := p.Bind(principal("42")).Decide("x").Reason; got != NoGrant {
		t.Errorf("reason %v", got)
	}
	if s := p.Summary(); s.Roles != 2 || s.Subjects != 2 || s.ACLs != 1 || s.Patterns != 0 {
		t.Errorf("summary %+v", s)
	}
	checkRoundTrip(t, p)
}

func TestEqualIgnoresFormatting(t *testing.T) {
	a := mustParse(t, `mode: rbac
roles:
  b: {scopes: ["x:y"], inherits: [a]}
  a: {scopes: ["*"]}
subjects:
  u: {roles: [b]}
`)
	b := mustParse(t, `# the same policy
roles:
  a:
    scopes:
      - "*"
  b:
    inherits: [a]
    scopes: [x:y]
subjects: {u: {roles: [b]}}
mode: rbac
`)
	c := mustParse(t, "mode: rbac\nroles:\n  a: {scopes: [\"*\"]}\n")
	if !a.Equal(b) || !b.Equal(a) {
		t.Error("equivalent policies are not Equal")
	}
	if a.Equal(c) || a.Equal(nil) || !(*Policy)(nil).Equal(nil) {
		t.Error("Equal is wrong on different policies or nil")
	}
	if !DefaultPolicy().Equal(mustParse(t, "mode: deny_all\n")) {
		t.Error("DefaultPolicy is not mode: deny_all")
	}
}

func TestMarshalYAMLCanonical(t *testing.T) {
	p := mustParse(t, `mode: rbac
stream_auth: false
roles:
  viewer: {scopes: ["tool:data:read", "true", "42"], acl_exempt: true}
  dev: {inherits: [viewer]}
subjects:
  "<<": {roles: [dev], projects: {p1: []}}
acls:
  "projects/p1/topics/t": {publish: [], get: ["null"]}
streams:
  s: {}
  t: {auth: {required: false}}
admin_roles: {ecmwf: ["*"]}
`)
	out, err := yaml.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	want := `mode: rbac
stream_auth: false
roles:
    dev:
        inherits:
            - viewer
    viewer:
        scopes:
            - tool:data:read
            - "true"
            - "42"
        acl_exempt: true
subjects:
    "<<":
        roles:
            - dev
        projects:
            p1: []
acls:
    projects/p1/topics/t:
        get:
            - "null"
        publish: []
streams:
    s: {}
    t:
        auth:
            required: false
admin_roles:
    ecmwf:
        - '*'
`
	if string(out) != want {
		t.Errorf("canonical form:\n%s\nwant:\n%s", out, want)
	}
	checkRoundTrip(t, p)
}

func TestDefaultPolicy(t *testing.T) {
	p := DefaultPolicy()
	if p.Mode() != DenyAll {
		t.Fatalf("mode %v", p.Mode())
	}
	pr := &Principal{Subject: "a", Profile: &Profile{Roles: []string{"admin"}, Scopes: []string{"tool:data:*"}, Grants: MustCompile("tool:data:*")}}
	b := p.Bind(pr)
	if d := b.Decide("tool:data:read"); !d.Allowed || d.Role != "" || d.Pattern != "tool:data:*" {
		t.Errorf("own scope: %v", d)
	}
	if d := b.Decide("admin:x"); d.Allowed || d.Reason != NoGrant {
		t.Errorf("role in deny_all: %v", d)
	}
	if d := p.Bind(nil).Decide("tool:data:read"); d.Allowed {
		t.Errorf("anonymous: %v", d)
	}
	out, _ := yaml.Marshal(p)
	if string(out) != "mode: deny_all\n" {
		t.Errorf("canonical %q", out)
	}
}

func TestModeNone(t *testing.T) {
	p := mustParse(t, "mode: none\nacls:\n  a:b: {c: []}\n")
	for _, b := range []*Binding{p.Bind(nil), p.Bind(principal("x"))} {
		for _, s := range []string{"anything", "a:b:c", "streams/x:write"} {
			if d := b.Decide(s); !d.Allowed || d.Reason != Unrestricted {
				t.Errorf("mode none, %q: %v", s, d)
			}
		}
	}
	if e := p.Explain(nil, "x"); !e.Decision.Allowed || len(e.Steps) != 1 || e.Steps[0].Kind != "mode" {
		t.Errorf("explain %+v", e)
	}
}

// TestOwnScopesWithoutGrants covers principals built without Grants: the
// valid scopes are compiled at Bind, the invalid ones ignored.
func TestOwnScopesWithoutGrants(t *testing.T) {
	p := mustParse(t, "mode: rbac\n")
	b := p.Bind(&Principal{Subject: "a", Profile: &Profile{Scopes: []string{"a:*", "bad::pattern"}}})
	if d := b.Decide("a:b"); !d.Allowed || d.Pattern != "a:*" {
		t.Errorf("got %v", d)
	}
	e := p.Explain(&Principal{Subject: "a", Profile: &Profile{Scopes: []string{"a:*", "bad::pattern"}}}, "a:b")
	if len(e.Steps) != 2 || e.Steps[1].Note != "invalid pattern, ignored" {
		t.Errorf("explain %v", e)
	}
}

func TestBindDoesNotModifyPrincipal(t *testing.T) {
	p := mustParse(t, "mode: rbac\nroles:\n  r: {scopes: [\"projects/${project}:x\"]}\nsubjects:\n  a: {roles: [r], projects: {p1: [r]}}\n")
	roles := []string{"z", "r", "a"}
	pr := &Principal{Subject: "a", Profile: &Profile{Roles: roles, ProjectRoles: map[string][]string{"p2": {"r", "b"}}}}
	p.Bind(pr)
	if strings.Join(pr.Roles, ",") != "z,r,a" || strings.Join(pr.ProjectRoles["p2"], ",") != "r,b" || len(pr.ProjectRoles) != 1 {
		t.Errorf("Bind modified the principal: %+v", pr)
	}
	b := p.Bind(pr)
	for scope, want := range map[string]bool{"projects/p1:x": true, "projects/p2:x": true, "projects/p3:x": false} {
		if d := b.Decide(scope); d.Allowed != want {
			t.Errorf("%s: %v", scope, d)
		}
	}
}

// TestBindMemo checks that bindings with the same assignments share one
// compiled set, that template values keep sets apart, and that the memo
// stays bounded.
func TestBindMemo(t *testing.T) {
	p := mustParse(t, `mode: rbac
roles:
  viewer: {scopes: ["tool:data:read"]}
  agent: {scopes: ["mailbox:${sub}:*"]}
  realmy: {scopes: ["realms/${realm}:read"]}
`)
	a, b := p.Bind(principal("a", "viewer")), p.Bind(principal("b", "viewer"))
	if a.set == nil || a.set != b.set {
		t.Error("two viewers do not share their compiled set")
	}
	x, y := p.Bind(principal("x", "agent")), p.Bind(principal("y", "agent"))
	if x.set == y.set {
		t.Error("two agents share a set although ${sub} differs")
	}
	r1 := p.Bind(&Principal{Subject: "r1", Profile: &Profile{Realm: "e", Roles: []string{"realmy"}}})
	r2 := p.Bind(&Principal{Subject: "r2", Profile: &Profile{Realm: "e", Roles: []string{"realmy"}}})
	if r1.set != r2.set || !r1.Decide("realms/e:read").Allowed || r1.Decide("realms/f:read").Allowed {
		t.Error("realm templates")
	}
	if p.Bind(principal("n", "undeclared")).set != nil {
		t.Error("undeclared roles compiled a set")
	}
	for i := range maxBoundSets + 100 {
		s := fmt.Sprintf("agent-%d", i)
		if d := p.Bind(principal(s, "agent")).Decide("mailbox:" + s + ":read"); !d.Allowed {
			t.Fatalf("%s: %v", s, d)
		}
	}
	if n := p.Summary().BoundSets; n > maxBoundSets || n < maxBoundSets/2 {
		t.Errorf("memo holds %d sets, bound %d", n, maxBoundSets)
	}
	if !x.Decide("mailbox:x:read").Allowed {
		t.Error("an evicted set broke a binding that holds it")
	}
}

// TestBindConcurrent binds and decides from many goroutines against one
// policy; run with -race.
func TestBindConcurrent(t *testing.T) {
	p := mustParse(t, `mode: rbac
roles:
  agent: {scopes: ["mailbox:${sub}:*"]}
  pub: {scopes: ["projects/${project}/topics/*:publish"]}
acls:
  projects/p1/topics/t:
    publish: [u1]
`)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				sub := fmt.Sprintf("u%d", (g*7+i)%13)
				pr := &Principal{Subject: sub, Profile: &Profile{Roles: []string{"agent"}, ProjectRoles: map[string][]string{"p1": {"pub"}}}}
				b := p.Bind(pr)
				if !b.Decide("mailbox:" + sub + ":x").Allowed {
					t.Errorf("%s: own mailbox denied", sub)
				}
				if got, want := b.Decide("projects/p1/topics/t:publish").Allowed, sub == "u1"; got != want {
					t.Errorf("%s: ACL decision %v", sub, got)
				}
				_ = p.Summary()
			}
		}()
	}
	wg.Wait()
}

func TestReasonsAndModes(t *testing.T) {
	seen := map[string]bool{}
	for r := Reason(0); r < numReasons; r++ {
		s := r.String()
		if s == "" || seen[s] || strings.Contains(s, "Reason(") {
			t.Errorf("reason %d has name %q", r, s)
		}
		seen[s] = true
		if r.Allowed() != (r >= Granted) {
			t.Errorf("%s.Allowed() = %v", r, r.Allowed())
		}
	}
	if numReasons.String() != "Reason(10)" || numReasons.Allowed() {
		t.Error("out-of-range reason")
	}
	for m, want := range map[Mode]string{DenyAll: "deny_all", RBAC: "rbac", None: "none", 9: "Mode(9)"} {
		if m.String() != want {
			t.Errorf("%d: %q", m, m.String())
		}
	}
	if (Decision{}).Allowed || (Decision{}).String() != "deny (no_grant)" {
		t.Error("the zero Decision must deny")
	}
}

func TestTemplates(t *testing.T) {
	cases := []struct {
		p, placeholder, err string
		vars                uint8
	}{
		{p: "a:b", placeholder: "a:b"},
		{p: "mailbox:${sub}:*", placeholder: "mailbox:x:*", vars: varSub},
		{p: "${project}", placeholder: "x", vars: varProject},
		{p: "r/${realm}/${sub}:${project}", placeholder: "r/x/x:x", vars: varSub | varProject | varRealm},
		{p: "a$b:c", placeholder: "a$b:c"},
		{p: "a:${sub", err: "unterminated"},
		{p: "a:${}", err: "empty template variable"},
		{p: "a:${SUB}", err: "unknown template variable ${SUB}"},
	}
	for _, tc := range cases {
		tm, err := parseTemplate(tc.p)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.p, err, tc.err)
			}
			continue
		}
		if err != nil || tm.vars != tc.vars || tm.placeholder(tc.p) != tc.placeholder {
			t.Errorf("%q: %v, vars %b, placeholder %q", tc.p, err, tm.vars, tm.placeholder(tc.p))
		}
	}
	tm, _ := parseTemplate("p/${project}/u/${sub}:x")
	if s, ok := tm.fill("p/${project}/u/${sub}:x", templateValues{sub: "al.ice@x", project: "p1"}); !ok || s != "p/p1/u/al.ice@x:x" {
		t.Errorf("fill: %q %v", s, ok)
	}
	for _, bad := range []string{"", "a/b", "a:b", "a*", "a b", "\xff", strings.Repeat("a", MaxLen+1)} {
		if _, ok := tm.fill("p/${project}/u/${sub}:x", templateValues{sub: bad, project: "p1"}); ok {
			t.Errorf("filled ${sub} with %q", bad)
		}
	}
}

func TestPATScopePatternsMatchTheirOperations(t *testing.T) {
	for typ, ops := range patOperations {
		for _, op := range strings.Fields(ops) {
			id := "e-1"
			if op == "create" || op == "list" || typ == "domains" {
				id = "*"
			}
			p, err := PATScope("dom", typ, op, id)
			if err != nil {
				t.Fatalf("%s %s: %v", typ, op, err)
			}
			if err := ValidatePattern(p); err != nil || !strings.HasSuffix(p, ":"+op) || !strings.HasPrefix(p, "domains/dom") {
				t.Errorf("%s %s: pattern %q (%v)", typ, op, p, err)
			}
			if strings.Contains(p, "*") {
				concrete := strings.Replace(p, "*", "x-9", 1)
				if _, ok := MustCompile(p).Match(concrete); !ok {
					t.Errorf("%q does not match %q", p, concrete)
				}
			}
		}
	}
	if _, err := PATScope("d", "clients", "read", strings.Repeat("a", MaxLen)); err == nil {
		t.Error("accepted an overlong entity id")
	}
}

// TestExplainCompiledGrantsOnly: a principal as verification builds it
// carries compiled grants beside its scopes. Grants without any scope
// add no step to an explanation; grants with no listed scopes show their
// match.
func TestExplainCompiledGrantsOnly(t *testing.T) {
	p := DefaultPolicy()
	empty, err := Compile(nil)
	if err != nil {
		t.Fatal(err)
	}
	e := p.Explain(&Principal{Subject: "s", Profile: &Profile{Grants: empty}}, "a:b")
	if len(e.Steps) != 1 || e.Steps[0].Kind != "mode" {
		t.Errorf("no own scopes: steps %+v", e.Steps)
	}
	some, err := Compile([]string{"a:*"})
	if err != nil {
		t.Fatal(err)
	}
	e = p.Explain(&Principal{Subject: "s", Profile: &Profile{Grants: some}}, "a:b")
	if len(e.Steps) != 2 || e.Steps[1].Kind != "own" || !e.Steps[1].Matched || e.Steps[1].Pattern != "a:*" || !e.Decision.Allowed {
		t.Errorf("compiled grants only: %+v", e)
	}
}
