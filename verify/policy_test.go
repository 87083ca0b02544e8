package verify

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/rbac"
)

func mustPolicy(t testing.TB, src string) *rbac.Policy {
	t.Helper()
	p, err := rbac.ParsePolicy([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// decisionCase is one scope and the decision expected for it.
type decisionCase struct {
	scope string
	want  string // rbac.Decision.String()
}

func checkDecisions(t *testing.T, v *Verifier, token string, cases []decisionCase) {
	t.Helper()
	for _, c := range cases {
		r := v.Verify(token, c.scope)
		if got := r.Decision.String(); got != c.want {
			t.Errorf("%s: %s, want %s", c.scope, got, c.want)
		}
		wantReason := Forbidden
		if r.Decision.Allowed {
			wantReason = OK
		}
		if r.Reason != wantReason || (r.Grant() != "") != (r.Decision.Allowed && r.Decision.Pattern != "") || r.Principal == nil || !r.Decided() {
			t.Errorf("%s: result %+v", c.scope, r)
		}
	}
}

// allocPolicy exercises every grant source: own scopes, roles with
// templates (global and per project), an ACL and a stream rule.
const allocPolicy = `
mode: rbac
roles:
  publisher: {scopes: ["projects/${project}/topics/*:publish"]}
  agent:     {scopes: ["mailbox:${sub}:*"]}
  viewer:    {scopes: ["realm/${realm}:read"]}
acls:
  "projects/p1/topics/orders": {publish: [a]}
streams:
  mars: {auth: {required: true, read_roles: {emea: [publisher]}}}
admin_roles: {emea: [boss]}
`

const rolesPolicy = `
mode: rbac
roles:
  viewer:    {scopes: ["tool:data:read"]}
  developer: {scopes: ["tool:code:*"], inherits: [viewer]}
  publisher: {scopes: ["projects/${project}/topics/*:publish"]}
  agent:     {scopes: ["mailbox:${sub}:*"]}
  admin:     {scopes: ["*"], acl_exempt: true}
subjects:
  alice: {roles: [developer], projects: {p1: [publisher]}}
acls:
  "projects/p1/topics/orders": {publish: [bob]}
`

// TestDefaultPolicyDeniesRoles: with no policy (deny_all), a key's roles
// grant nothing and its own scopes decide, as before policies existed.
func TestDefaultPolicyDeniesRoles(t *testing.T) {
	f := newFixture(t)
	if m := f.v.Policy().Mode(); m != rbac.DenyAll {
		t.Fatalf("default mode %v", m)
	}
	_, secret := f.create(t, KeySpec{Subject: "alice", Scopes: []string{"tool:data:*"}, Roles: []string{"admin"}})
	checkDecisions(t, f.v, secret, []decisionCase{
		{"tool:data:read", "allow (granted, pattern tool:data:*)"},
		{"tool:code:write", "deny (no_grant)"},
		{"anything:else", "deny (no_grant)"},
	})

	// An explicit deny_all policy with roles and assignments grants
	// nothing through them either; its ACLs still narrow own scopes.
	f.v.SetPolicy(mustPolicy(t, `
mode: deny_all
roles:
  admin: {scopes: ["*"]}
subjects:
  alice: {roles: [admin]}
acls:
  "tool:data": {write: [bob]}
`))
	checkDecisions(t, f.v, secret, []decisionCase{
		{"tool:data:read", "allow (granted, pattern tool:data:*)"},
		{"tool:data:write", "deny (not_on_acl)"},
		{"anything:else", "deny (no_grant)"},
	})
}

// TestRBACRolesFromPolicyAndRecord: roles come from the policy's subjects
// entry and from the key record (global and per project), merged.
func TestRBACRolesFromPolicyAndRecord(t *testing.T) {
	f := newFixture(t)
	f.v.SetPolicy(mustPolicy(t, rolesPolicy))

	// alice: developer and publisher in p1 from the policy; the record
	// adds agent and publisher in p2.
	_, alice := f.create(t, KeySpec{Subject: "alice", Roles: []string{"agent"}, ProjectRoles: map[string][]string{"p2": {"publisher"}}})
	checkDecisions(t, f.v, alice, []decisionCase{
		{"tool:code:push", "allow (granted, role developer, pattern tool:code:*)"},
		{"tool:data:read", "allow (granted, role viewer, pattern tool:data:read)"},
		{"tool:data:write", "deny (no_grant)"},
		{"projects/p1/topics/t:publish", "allow (granted, role publisher in p1, pattern projects/p1/topics/*:publish)"},
		{"projects/p2/topics/t:publish", "allow (granted, role publisher in p2, pattern projects/p2/topics/*:publish)"},
		{"projects/p3/topics/t:publish", "deny (no_grant)"},
		{"projects/p1/topics/orders:publish", "deny (not_on_acl)"},
		{"mailbox:alice:read", "allow (granted, role agent, pattern mailbox:alice:*)"},
		{"mailbox:bob:read", "deny (no_grant)"},
	})

	// A key's own scopes are tried first; an undeclared role grants
	// nothing.
	_, bob := f.create(t, KeySpec{Subject: "bob", Scopes: []string{"tool:bob:*"}, Roles: []string{"ghost"}, ProjectRoles: map[string][]string{"p1": {"publisher"}}})
	checkDecisions(t, f.v, bob, []decisionCase{
		{"tool:bob:x", "allow (granted, pattern tool:bob:*)"},
		{"tool:code:push", "deny (no_grant)"},
		{"projects/p1/topics/orders:publish", "allow (granted, role publisher in p1, pattern projects/p1/topics/*:publish)"},
	})

	// The admin role is acl_exempt.
	_, root := f.create(t, KeySpec{Subject: "root", Roles: []string{"admin"}})
	checkDecisions(t, f.v, root, []decisionCase{
		{"projects/p1/topics/orders:publish", "allow (granted, role admin, pattern *)"},
	})

	// Authenticate only: no decision.
	if r := f.v.Verify(alice, ""); r.Reason != OK || r.Decided() || r.Grant() != "" {
		t.Errorf("without a scope: %+v", r)
	}
}

// TestModeNone allows every scope to every valid credential, and never a
// refused one.
func TestModeNone(t *testing.T) {
	f := newFixture(t)
	f.v.SetPolicy(mustPolicy(t, "mode: none\n"))
	rec, secret := f.create(t, KeySpec{Subject: "x"})
	checkDecisions(t, f.v, secret, []decisionCase{{"any:thing", "allow (unrestricted)"}})
	if _, err := f.m.RevokeKey(t.Context(), rec.ID); err != nil {
		t.Fatal(err)
	}
	if r := f.v.Verify(secret, "any:thing"); r.Reason != Revoked {
		t.Errorf("revoked key under mode none: %v", r.Reason)
	}
}

// TestJWTRolesAndRealm: a JWT's roles and realm feed the binding: a role
// pattern with ${realm}, a stream's realm roles, the admin override.
func TestJWTRolesAndRealm(t *testing.T) {
	f := newJWTFixture(t)
	f.v.SetPolicy(mustPolicy(t, `
mode: rbac
roles:
  publisher: {scopes: ["realm/${realm}:publish"]}
  producer: {}
streams:
  mars:  {auth: {required: true, read_roles: {emea: [publisher]}}}
  diss:  {auth: {required: true, read_roles: {apac: ["*"]}, write_roles: {emea: [producer]}}}
  open:  {}
admin_roles: {emea: [boss]}
`))
	// claims: roles [publisher], realm emea, scopes tool:data:* and
	// mailbox:<sub>:*.
	tok := f.sign(t, "ES256", f.claims("carol"))
	checkDecisions(t, f.v, tok, []decisionCase{
		{"tool:data:read", "allow (granted, pattern tool:data:*)"},
		{"realm/emea:publish", "allow (granted, role publisher, pattern realm/emea:publish)"},
		{"realm/apac:publish", "deny (no_grant)"},
		{"streams/mars:read", "allow (stream_role, role publisher in emea)"},
		{"streams/mars:write", "deny (stream_forbidden)"},
		{"streams/diss:read", "deny (stream_forbidden)"},
		{"streams/diss:write", "deny (stream_forbidden)"},
		{"streams/open:write", "allow (stream_open)"},
	})
	boss := f.claims("dan")
	boss["roles"] = []string{"boss"}
	tok = f.sign(t, "HS256", boss)
	checkDecisions(t, f.v, tok, []decisionCase{
		{"streams/diss:write", "allow (stream_admin, role boss in emea)"},
		{"realm/emea:publish", "deny (no_grant)"},
	})
	// A token in another realm.
	apac := f.claims("erin")
	apac["realm"] = "apac"
	tok = f.sign(t, "ES256", apac)
	checkDecisions(t, f.v, tok, []decisionCase{
		{"streams/diss:read", "allow (stream_role, role * in apac)"},
		{"streams/mars:read", "deny (stream_forbidden)"},
		{"realm/apac:publish", "allow (granted, role publisher, pattern realm/apac:publish)"},
	})
}

// TestPolicySwapReachesCachedCredentials: a credential decided (and its
// binding cached) under one policy is decided under the new one at its very
// next use, stored keys and JWTs alike.
func TestPolicySwapReachesCachedCredentials(t *testing.T) {
	f := newJWTFixture(t)
	grant := mustPolicy(t, "mode: rbac\nroles:\n  publisher: {scopes: [\"projects/p/topics/*:publish\"]}\n")
	revoke := mustPolicy(t, "mode: rbac\nroles:\n  publisher: {scopes: [\"projects/p/topics/*:get\"]}\n")
	_, key := f.create(t, KeySpec{Subject: "k", Roles: []string{"publisher"}})
	jwtTok := f.sign(t, "ES256", f.claims("j"))
	const scope = "projects/p/topics/t:publish"
	for name, tok := range map[string]string{"key": key, "jwt": jwtTok} {
		t.Run(name, func(t *testing.T) {
			f.v.SetPolicy(grant)
			for range 3 { // cold, then from the caches
				if r := f.v.Verify(tok, scope); r.Reason != OK || r.Decision.Role != "publisher" {
					t.Fatalf("under the granting policy: %+v", r)
				}
				f.store.WaitCache()
			}
			if old := f.v.SetPolicy(revoke); old != grant {
				t.Fatal("SetPolicy did not return the policy it replaced")
			}
			if r := f.v.Verify(tok, scope); r.Reason != Forbidden || r.Decision.Reason != rbac.NoGrant {
				t.Fatalf("first use after the swap: %+v", r)
			}
			f.v.SetPolicy(grant)
			if r := f.v.Verify(tok, scope); r.Reason != OK {
				t.Fatalf("first use after swapping back: %+v", r)
			}
			f.v.SetPolicy(nil)
			if f.v.Policy().Mode() != rbac.DenyAll {
				t.Fatal("SetPolicy(nil) did not restore the default policy")
			}
			if r := f.v.Verify(tok, scope); r.Reason != Forbidden {
				t.Fatalf("under the default policy: %+v", r)
			}
		})
	}
}

// TestPolicySwapRace verifies from several goroutines, cached and cold,
// while another swaps two policies: no verification fails or blocks, and
// each answer is the decision of one of the two policies.
func TestPolicySwapRace(t *testing.T) {
	f := newJWTFixture(t)
	a := mustPolicy(t, `
mode: rbac
roles:
  publisher: {scopes: ["projects/${project}/topics/*:publish"]}
  viewer:    {scopes: ["docs:*:read"]}
`)
	b := mustPolicy(t, `
mode: rbac
roles:
  publisher: {scopes: ["projects/${project}/topics/*:get"]}
  viewer:    {scopes: ["docs:public:read"]}
acls:
  "projects/p1/topics/t": {get: [nobody]}
`)
	f.v.SetPolicy(a)
	var tokens []string
	for i := range 8 {
		_, s := f.create(t, KeySpec{Subject: fmt.Sprintf("s%d", i), ProjectRoles: map[string][]string{"p1": {"publisher"}}})
		tokens = append(tokens, s)
	}
	for i := range 4 {
		c := f.claims(fmt.Sprintf("j%d", i))
		c["roles"] = []string{"viewer"}
		tokens = append(tokens, f.sign(t, "HS256", c))
	}
	// What each policy answers, per scope: key principals hold publisher
	// in p1; JWT principals hold viewer and carry tool:data:*.
	type answer struct {
		reason   Reason
		decision string
	}
	scopes := []string{"projects/p1/topics/t:publish", "projects/p1/topics/t:get", "projects/p1/topics/u:get", "tool:data:read", "docs:secret:read", "docs:public:read"}
	expect := func(p *rbac.Policy, tok string) map[string]answer {
		out := map[string]answer{}
		r := f.v.Verify(tok, "")
		for _, s := range scopes {
			d := p.Bind(r.Principal).Decide(s)
			reason := Forbidden
			if d.Allowed {
				reason = OK
			}
			out[s] = answer{reason, d.String()}
		}
		return out
	}
	wantA, wantB := map[string]map[string]answer{}, map[string]map[string]answer{}
	for _, tok := range tokens {
		wantA[tok], wantB[tok] = expect(a, tok), expect(b, tok)
	}
	jwt0 := tokens[len(tokens)-1]
	if wantA[tokens[0]]["projects/p1/topics/t:publish"] == wantB[tokens[0]]["projects/p1/topics/t:publish"] ||
		wantA[jwt0]["docs:secret:read"] == wantB[jwt0]["docs:secret:read"] {
		t.Fatal("the two policies must answer differently")
	}

	var stop atomic.Bool
	var verifies, failures atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan string, 16)
	for g := range 6 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; !stop.Load() || i < 200; i++ {
				tok := tokens[(g+i)%len(tokens)]
				s := scopes[i%len(scopes)]
				r := f.v.Verify(tok, s)
				verifies.Add(1)
				got := answer{r.Reason, r.Decision.String()}
				if got != wantA[tok][s] && got != wantB[tok][s] {
					failures.Add(1)
					select {
					case errs <- fmt.Sprintf("%s: %v %s, want %v or %v", s, r.Reason, got.decision, wantA[tok][s], wantB[tok][s]):
					default:
					}
				}
			}
		}()
	}
	for i := range 2000 {
		if i%2 == 0 {
			f.v.SetPolicy(b)
		} else {
			f.v.SetPolicy(a)
		}
	}
	stop.Store(true)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("verifications blocked during policy swaps")
	}
	close(errs)
	for e := range errs {
		t.Error(e)
	}
	if failures.Load() > 0 || verifies.Load() == 0 {
		t.Fatalf("%d of %d verifications were not the decision of either policy", failures.Load(), verifies.Load())
	}
	// After the last swap (to a), every answer is a's.
	for _, tok := range tokens {
		for _, s := range scopes {
			r := f.v.Verify(tok, s)
			if got := (answer{r.Reason, r.Decision.String()}); got != wantA[tok][s] {
				t.Errorf("after the swaps, %s: %v, want %v", s, got, wantA[tok][s])
			}
		}
	}
}

// TestPolicyDecisionMetrics counts decisions by the policy's reason, and
// only when a scope was decided.
func TestPolicyDecisionMetrics(t *testing.T) {
	f := newFixture(t)
	reg := prometheus.NewRegistry()
	v, err := New(f.store, f.v.minter, &Options{Registerer: reg, Policy: mustPolicy(t, rolesPolicy)})
	if err != nil {
		t.Fatal(err)
	}
	_, alice := f.create(t, KeySpec{Subject: "alice", Scopes: []string{"own:*"}})
	v.Verify(alice, "tool:code:x")                       // granted
	v.Verify(alice, "own:x")                             // granted
	v.Verify(alice, "projects/p1/topics/orders:publish") // not_on_acl
	v.Verify(alice, "nothing:here")                      // no_grant
	v.Verify(alice, "")                                  // not decided
	v.Verify("unknown-credential-0123456789", "own:x")   // not decided
	got := map[string]float64{}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	labels := 0
	for _, mf := range mfs {
		if mf.GetName() != "verifyd_verify_policy_decisions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels++
			got[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{"granted": 2, "not_on_acl": 1, "no_grant": 1}
	for reason, n := range want {
		if got[reason] != n {
			t.Errorf("%s = %v, want %v (all: %v)", reason, got[reason], n, got)
		}
	}
	var total float64
	for _, n := range got {
		total += n
	}
	if total != 4 {
		t.Errorf("total %v, want 4: %v", total, got)
	}
	if labels != len(policyReasons()) || labels < 10 {
		t.Errorf("%d reason labels pre-resolved, rbac defines %d", labels, len(policyReasons()))
	}
}

// TestEntryBindingFollowsPolicy: keystore entries keep one binding per
// policy and rebind after a swap.
func TestEntryBindingFollowsPolicy(t *testing.T) {
	f := newFixture(t)
	_, secret := f.create(t, KeySpec{Subject: "a"})
	e, err := f.store.Lookup(keystore.Sum(secret))
	if err != nil || e == nil {
		t.Fatal(e, err)
	}
	p1, p2 := rbac.DefaultPolicy(), rbac.DefaultPolicy()
	b1 := e.Binding(p1)
	if e.Binding(p1) != b1 || b1.Policy() != p1 {
		t.Fatal("the binding of the same policy was not reused")
	}
	b2 := e.Binding(p2)
	if b2 == b1 || b2.Policy() != p2 || e.Binding(p1) == b1 {
		t.Fatal("a binding of another policy was reused")
	}
}

// TestOwnOnlyMatchesBinding: under a policy that can answer only from a
// credential's own scopes (deny_all without ACLs), the verifier decides
// without a binding; its decisions must be exactly the binding's.
func TestOwnOnlyMatchesBinding(t *testing.T) {
	policies := map[string]*rbac.Policy{
		"default": rbac.DefaultPolicy(),
		"deny_all with roles": mustPolicy(t, `
mode: deny_all
roles:
  admin: {scopes: ["*"]}
subjects:
  alice: {roles: [admin]}
streams:
  open: {}
`),
	}
	f := newFixture(t)
	_, secret := f.create(t, KeySpec{Subject: "alice", Scopes: []string{"tool:data:*", "mailbox:alice:*", "*:x"}, Roles: []string{"admin"}})
	scopes := []string{"tool:data:read", "tool:data", "tool:data:read:more", "mailbox:alice:in", "mailbox:bob:in", "a:x", "streams/open:read", "x", "*"}
	for name, p := range policies {
		t.Run(name, func(t *testing.T) {
			f.v.SetPolicy(p)
			if !f.v.policy.Load().ownOnly {
				t.Fatal("the policy is not answered from own scopes")
			}
			pr := f.v.Verify(secret, "").Principal
			b := p.Bind(pr)
			for _, s := range scopes {
				if got, want := f.v.Verify(secret, s).Decision, b.Decide(s); got != want {
					t.Errorf("%s: %v, the binding decides %v", s, got, want)
				}
			}
		})
	}
	for _, src := range []string{"mode: rbac\n", "mode: none\n", "mode: deny_all\nacls:\n  \"tool:data\": {read: [bob]}\n"} {
		f.v.SetPolicy(mustPolicy(t, src))
		if f.v.policy.Load().ownOnly {
			t.Errorf("%q is answered from own scopes alone", src)
		}
	}
}
