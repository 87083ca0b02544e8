package natscallout

import (
	"fmt"
	"strings"
	"testing"

	"github.com/nats-io/jwt/v2"

	"github.com/verifyd/verifyd/rbac"
)

var defaultMapping = ScopeMapping{Prefix: "nats/", Publish: "publish", Subscribe: "subscribe"}

func TestSubject(t *testing.T) {
	for _, tc := range []struct {
		pattern, action, want string // want "" : left out
	}{
		{"nats/orders.new:publish", "publish", "orders.new"},
		{"nats/orders.new:publish", "subscribe", ""},
		{"nats/orders.new:subscribe", "subscribe", "orders.new"},
		{"nats/orders:publish", "publish", "orders"},
		{"nats/orders.*:publish", "publish", "orders.>"},
		{"nats/orders.*.created:publish", "publish", "orders.*.created"},
		{"nats/*.created:publish", "publish", "*.created"},
		{"nats/*:publish", "publish", ">"},
		{"nats/orders.*:*", "publish", "orders.>"},
		{"nats/orders.*:*", "subscribe", "orders.>"},
		{"nats/orders.*:pub*", "publish", "orders.>"},
		{"nats/orders.*:pub*", "subscribe", ""},
		{"nats/orders.*:*lish", "publish", "orders.>"},
		{"nats/x:publishing", "publish", ""},
		{"*", "publish", ">"},
		{"*", "subscribe", ">"},
		{"*:publish", "publish", ">"},
		{"n*:publish", "publish", ">"},
		{"nats*:publish", "publish", ">"},
		{"nats/*:publish", "publish", ">"},
		{"*/orders:publish", "publish", ""},       // '*' in the prefix, text after it
		{"na*s/x:publish", "publish", ""},         // likewise
		{"nats/orders.a*:publish", "publish", ""}, // '*' inside a token
		{"nats/orders.*a:publish", "publish", ""}, // likewise
		{"nats/a*.b:publish", "publish", ""},      // likewise
		{"nats/orders..x:publish", "publish", ""}, // empty token
		{"nats/.x:publish", "publish", ""},        // empty token
		{"nats/x.:publish", "publish", ""},        // empty token
		{"nats/:publish", "publish", ""},          // empty subject
		{"nats/orders..*:publish", "publish", ""}, // empty token before the wildcard
		{"nats/orders:publish:x", "publish", ""},  // three segments
		{"nats/orders", "publish", ""},            // one segment
		{"nats/*", "publish", ""},                 // one segment
		{"other/orders:publish", "publish", ""},   // another prefix
		{"natsorders:publish", "publish", ""},     // no prefix
		{"nats/orders:pub:lish", "publish", ""},   // the action is one segment
		{"nats/or ders:publish", "publish", ""},   // not a valid pattern
		{"nats/a**:publish", "publish", ""},       // not a valid pattern
		{"nats/a>:publish", "publish", ""},        // '>' is no scope character
		{"", "publish", ""},
	} {
		got, ok := defaultMapping.Subject(tc.pattern, tc.action)
		if ok != (tc.want != "") || got != tc.want {
			t.Errorf("Subject(%q, %q) = %q, %v; want %q", tc.pattern, tc.action, got, ok, tc.want)
		}
	}
	other := ScopeMapping{Prefix: "projects/p1/subjects/", Publish: "pub", Subscribe: "sub"}
	for pattern, want := range map[string]string{
		"projects/p1/subjects/a.b:pub":   "a.b",
		"projects/p1/subjects/*:pub":     ">",
		"projects/*:pub":                 ">",
		"projects/*/subjects/a:pub":      "",
		"projects/p1/subjects/a:publish": "",
	} {
		got, ok := other.Subject(pattern, "pub")
		if ok != (want != "") || got != want {
			t.Errorf("%+v.Subject(%q) = %q, %v; want %q", other, pattern, got, ok, want)
		}
	}
}

// TestSubjectGrantsNoMore checks the promise of Subject on the table's
// mapped patterns: every subject a NATS wildcard stands for (sampled with
// one and with two tokens) is granted by the pattern.
func TestSubjectGrantsNoMore(t *testing.T) {
	for _, pattern := range []string{"nats/orders.*:publish", "nats/orders.*.created:publish", "nats/*.x:publish", "nats/*:*", "*", "n*:publish"} {
		subject, ok := defaultMapping.Subject(pattern, "publish")
		if !ok {
			t.Fatalf("%q is not mapped", pattern)
		}
		m := rbac.MustCompile(pattern)
		for _, sample := range samples(subject) {
			if _, ok := m.Match("nats/" + sample + ":publish"); !ok {
				t.Errorf("%q maps to %q, whose subject %q the pattern does not grant", pattern, subject, sample)
			}
		}
	}
}

// samples returns subjects the NATS subject s matches.
func samples(s string) []string {
	var out []string
	for _, fill := range [][2]string{{"a", "b"}, {"a", "b.c"}} {
		r := strings.ReplaceAll(s, "*", fill[0])
		out = append(out, strings.ReplaceAll(r, ">", fill[1]))
	}
	return out
}

func TestPermissions(t *testing.T) {
	const policy = `mode: rbac
roles:
  sensor: {scopes: ["nats/telemetry.${sub}.*:publish", "nats/telemetry.*:subscribe"]}
  viewer: {scopes: ["nats/status:subscribe"]}
  editor: {scopes: ["nats/docs.${project}.*:publish"]}
  root:   {scopes: ["*"], acl_exempt: true}
subjects:
  bob: {roles: [viewer], projects: {p1: [editor]}}
acls:
  "nats/orders.audit": {publish: [auditor], subscribe: [auditor]}
  "nats/orders.x": {read: [nobody]}
  "other/thing": {publish: [nobody]}
`
	perms := func(p *rbac.Policy, pr *rbac.Principal) string {
		t.Helper()
		return permString(defaultMapping.permissions(defaultMapping.aclsOf(p), pr))
	}
	rbacPolicy, err := rbac.ParsePolicy([]byte(policy))
	if err != nil {
		t.Fatal(err)
	}
	denyAll, err := rbac.ParsePolicy([]byte(strings.Replace(policy, "mode: rbac", "mode: deny_all", 1)))
	if err != nil {
		t.Fatal(err)
	}
	none, err := rbac.ParsePolicy([]byte("mode: none\n"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		policy *rbac.Policy
		pr     *rbac.Principal
		want   string
	}{
		{"own scopes", rbac.DefaultPolicy(), principal("alice", nil, "nats/orders.*:publish", "nats/orders.new:subscribe", "tool:x:read", "nats/a*:publish"),
			"pub allow [orders.>] deny []; sub allow [orders.new] deny []"},
		{"nothing", rbac.DefaultPolicy(), principal("alice", nil, "tool:x:read"),
			"pub allow [] deny [>]; sub allow [] deny [>]"},
		{"roles with templates", rbacPolicy, principal("dev1", []string{"sensor"}),
			"pub allow [telemetry.dev1.>] deny []; sub allow [telemetry.>] deny []"},
		{"subject assignments and projects", rbacPolicy, principal("bob", nil),
			"pub allow [docs.p1.>] deny []; sub allow [status] deny []"},
		{"roles grant nothing in deny_all", denyAll, principal("dev1", []string{"sensor"}, "nats/own:publish"),
			"pub allow [own] deny []; sub allow [] deny [>]"},
		{"an ACL denies", rbacPolicy, principal("carol", nil, "nats/orders.*:*"),
			"pub allow [orders.>] deny [orders.audit]; sub allow [orders.>] deny [orders.audit]"},
		{"an ACL admits", rbacPolicy, principal("auditor", nil, "nats/orders.*:publish"),
			"pub allow [orders.>] deny []; sub allow [] deny [>]"},
		{"acl_exempt passes the ACL", rbacPolicy, principal("admin", []string{"root"}),
			"pub allow [>] deny []; sub allow [>] deny []"},
		{"an own super-scope does not pass the ACL", rbacPolicy, principal("carol", nil, "*"),
			"pub allow [>] deny [orders.audit]; sub allow [>] deny [orders.audit]"},
		{"mode none", none, principal("anyone", nil),
			"pub allow [>] deny []; sub allow [>] deny []"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := perms(tc.policy, tc.pr); got != tc.want {
				t.Errorf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

// TestPermissionsUnmappableACL: an ACL on a NATS scope whose resource is
// no NATS subject cannot become a deny, so the grants that cover it are
// left out.
func TestPermissionsUnmappableACL(t *testing.T) {
	p, err := rbac.ParsePolicy([]byte(`mode: deny_all
acls:
  "nats/orders..x": {publish: [nobody]}
`))
	if err != nil {
		t.Fatal(err)
	}
	got := permString(defaultMapping.permissions(defaultMapping.aclsOf(p), principal("carol", nil, "nats/orders.*:publish", "nats/status:publish", "nats/orders.*:subscribe")))
	if want := "pub allow [status] deny []; sub allow [orders.>] deny []"; got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
}

func principal(subject string, roles []string, scopes ...string) *rbac.Principal {
	pr := &rbac.Principal{Subject: subject, Profile: &rbac.Profile{Kind: "api_key", Roles: roles, Scopes: scopes}}
	var valid []string
	for _, s := range scopes {
		if rbac.ValidatePattern(s) == nil {
			valid = append(valid, s)
		}
	}
	pr.Grants = rbac.MustCompile(valid...)
	return pr
}

func permString(p jwt.Permissions) string {
	list := func(l jwt.StringList) string { return fmt.Sprint([]string(l)) }
	return fmt.Sprintf("pub allow %s deny %s; sub allow %s deny %s", list(p.Pub.Allow), list(p.Pub.Deny), list(p.Sub.Allow), list(p.Sub.Deny))
}
