package rbac

import (
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"
)

const aclWildPolicy = `
mode: rbac
roles:
  reader: {scopes: ["mqtt/topic/*:subscribe"]}
  admin:  {scopes: ["mqtt/topic/*:*"], acl_exempt: true}
  ops:    {scopes: ["mqtt/topic/ops/*:subscribe"], acl_exempt: true}
subjects:
  alice: {roles: [reader]}
  bob:   {roles: [reader]}
  root:  {roles: [admin]}
  olga:  {roles: [reader, ops]}
acls:
  "mqtt/topic/a/secret": {subscribe: [bob]}
  "mqtt/topic/ops/x":    {subscribe: [bob]}
  "tenant:t1":           {read: [bob]}
`

// wildcard returns the covers function of a requested scope whose every
// '*' stands for any run of characters other than ':'.
func wildcard(scope string) func(string) bool {
	re := regexp.MustCompile("^" + strings.ReplaceAll(regexp.QuoteMeta(scope), `\*`, `[^:]*`) + "$")
	return re.MatchString
}

// TestACLsAdmit: a request standing for many scopes meets every ACL among
// them.
func TestACLsAdmit(t *testing.T) {
	p, err := ParsePolicy([]byte(aclWildPolicy))
	if err != nil {
		t.Fatal(err)
	}
	alice, bob, root, olga := &Principal{Subject: "alice", Profile: &Profile{}}, &Principal{Subject: "bob", Profile: &Profile{}}, &Principal{Subject: "root", Profile: &Profile{}}, &Principal{Subject: "olga", Profile: &Profile{}}
	for _, tc := range []struct {
		name  string
		pr    *Principal
		scope string
		want  bool
	}{
		{"over the ACL, subject not listed", alice, "mqtt/topic/a/*:subscribe", false},
		{"over the ACL, subject listed", bob, "mqtt/topic/a/*:subscribe", true},
		{"beside the ACL", alice, "mqtt/topic/b/*:subscribe", true},
		{"the wildcard before the literal", alice, "mqtt/topic/*/secret:subscribe", false},
		{"two wildcards in one segment", alice, "mqtt/topic/*/*:subscribe", false},
		{"a wildcard that cannot end in secret", alice, "mqtt/topic/a/*x:subscribe", true},
		{"everything", alice, "mqtt/topic/*:subscribe", false},
		{"another action", alice, "mqtt/topic/a/*:publish", true},
		{"a wildcard action", alice, "mqtt/topic/a/secret:*", false},
		{"other segment counts", alice, "mqtt/topic/a/*", true},
		{"multi-segment ACL", alice, "tenant:*:read", false},
		{"multi-segment ACL, listed", bob, "tenant:*:read", true},
		{"the literal scope, not listed", alice, "mqtt/topic/a/secret:subscribe", false},
		{"the literal scope, listed", bob, "mqtt/topic/a/secret:subscribe", true},
		{"a literal scope without ACL", alice, "mqtt/topic/a/public:subscribe", true},
		{"an acl_exempt pattern matches every ACL covered", root, "mqtt/topic/*:subscribe", true},
		{"an acl_exempt pattern matches one of two ACLs covered", olga, "mqtt/topic/*:subscribe", false},
		{"an acl_exempt pattern matches the one ACL covered", olga, "mqtt/topic/*x:subscribe", true},
		{"anonymous", nil, "mqtt/topic/a/*:subscribe", false},
		{"anonymous, no ACL covered", nil, "mqtt/topic/b/*:subscribe", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := p.ACLsAdmit(tc.pr, wildcard(tc.scope)); got != tc.want {
				t.Errorf("ACLsAdmit(%v, %q) = %v, want %v", tc.pr, tc.scope, got, tc.want)
			}
		})
	}
	all := func(string) bool { return true }
	for _, src := range []string{"mode: none\nacls: {\"x\": {read: [bob]}}\n", "mode: rbac\n"} {
		q, err := ParsePolicy([]byte(src))
		if err != nil {
			t.Fatal(err)
		}
		if !q.ACLsAdmit(alice, all) || !q.ACLsAdmit(nil, all) {
			t.Errorf("policy %q: ACLsAdmit denied", src)
		}
	}
	if !DefaultPolicy().ACLsAdmit(alice, all) {
		t.Error("the default policy has no ACL, yet ACLsAdmit denied")
	}
	calls := 0
	p.ACLsAdmit(root, func(string) bool { calls++; return false })
	if calls != 3 {
		t.Errorf("covers was called %d times, want once per ACL (3)", calls)
	}
}

// TestACLsAdmitAgreesWithDecide: ACLsAdmit denies exactly when Decide
// denies one of the covered ACL scopes as not_on_acl (every subject here
// holds a grant for each of them).
func TestACLsAdmitAgreesWithDecide(t *testing.T) {
	p, err := ParsePolicy([]byte(aclWildPolicy))
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	word := func(alphabet string, n int) string {
		var b strings.Builder
		for range 1 + rng.IntN(n) {
			b.WriteByte(alphabet[rng.IntN(len(alphabet))])
		}
		return b.String()
	}
	aclScopes := []string{"mqtt/topic/a/secret:subscribe", "mqtt/topic/ops/x:subscribe"}
	for _, subject := range []string{"alice", "bob", "root", "olga"} {
		pr := &Principal{Subject: subject, Profile: &Profile{}}
		b := p.Bind(pr)
		for range 2000 {
			scope := "mqtt/topic/" + word("ab/*secrtopx", 10) + ":subscribe"
			covers := wildcard(scope)
			deniedOne := false
			for _, l := range aclScopes {
				if covers(l) && b.Decide(l).Reason == NotOnACL {
					deniedOne = true
				}
			}
			if got := p.ACLsAdmit(pr, covers); got == deniedOne {
				t.Fatalf("%s %s: ACLsAdmit %v, a covered ACL scope denied by Decide: %v", subject, scope, got, deniedOne)
			}
		}
	}
}
