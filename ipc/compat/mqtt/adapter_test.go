package mqtt

import (
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify"
	"github.com/verifyd/verifyd/verify/credential"
)

// quiet discards the log lines of the adapters and servers under test.
var quiet = slog.New(slog.DiscardHandler)

// env is an Adapter over a real verifier, on a Pebble store in a temporary
// directory.
type env struct {
	t   testing.TB
	v   *verify.Verifier
	m   *verify.Manager
	a   *Adapter
	reg *prometheus.Registry
}

func newEnv(t testing.TB, cfg Config) *env {
	t.Helper()
	store, err := keystore.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ck, err := credential.NewChecksumKey()
	if err != nil {
		t.Fatal(err)
	}
	minter, err := credential.NewMinter(ck)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(store, minter, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, v: v, m: verify.NewManager(store, minter, keystore.Digest{}, nil), reg: prometheus.NewRegistry()}
	e.a, err = New(cfg, Options{Verifier: v, Registerer: e.reg, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// key creates an API key and returns its id and secret.
func (e *env) key(subject string, scopes []string, roles ...string) (id, secret string) {
	e.t.Helper()
	rec, secret, err := e.m.CreateKey(context.Background(), verify.KeySpec{Subject: subject, Scopes: scopes, Roles: roles})
	if err != nil {
		e.t.Fatal(err)
	}
	return rec.ID, secret
}

func (e *env) revoke(id string) {
	e.t.Helper()
	if _, err := e.m.RevokeKey(context.Background(), id); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) policy(src string) {
	e.t.Helper()
	p, err := rbac.ParsePolicy([]byte(src))
	if err != nil {
		e.t.Fatal(err)
	}
	e.v.SetPolicy(p)
}

// login authenticates a client and requires success.
func (e *env) login(username, clientID, token string) {
	e.t.Helper()
	if d := e.a.authenticate(username, token, clientID, false); d.outcome != allowed {
		e.t.Fatalf("login %s/%s: %+v", username, clientID, d)
	}
}

// want checks one ACL decision.
func (e *env) want(username, clientID, topic string, acc access, want outcome, reason string) {
	e.t.Helper()
	d := e.a.authorize(username, clientID, topic, acc)
	if d.outcome != want || reason != "" && d.reason != reason {
		e.t.Errorf("%s/%s acc %d %q: %s (%s), want %s (%s)", username, clientID, acc, topic,
			outcomeNames[d.outcome], d.reason, outcomeNames[want], reason)
	}
}

var sensorScopes = []string{"mqtt/topic/sensors/*:publish", "mqtt/topic/sensors/*:subscribe", "mqtt/topic/sensors:subscribe"}

func TestAuthenticate(t *testing.T) {
	e := newEnv(t, Config{})
	id, alice := e.key("alice", sensorScopes)
	for _, tc := range []struct {
		name, username, token string
		want                  outcome
		reason                string
	}{
		{"valid", "alice", alice, allowed, "ok"},
		{"another username", "bob", alice, denied, "username_mismatch"},
		{"empty username", "", alice, denied, "username_mismatch"},
		{"unknown key", "alice", "vk_" + strings.Repeat("A", 40), denied, ""},
		{"no password", "alice", "", denied, "malformed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := e.a.authenticate(tc.username, tc.token, "c1", true)
			if d.outcome != tc.want || tc.reason != "" && d.reason != tc.reason || d.superuser {
				t.Fatalf("authenticate = %+v, want %s (%s)", d, outcomeNames[tc.want], tc.reason)
			}
		})
	}
	if _, ok := e.a.binds.get("bob", "c1"); ok {
		t.Fatal("a refused login bound its client")
	}
	e.revoke(id)
	if d := e.a.authenticate("alice", alice, "c2", false); d.outcome != denied || d.reason != "revoked" {
		t.Fatalf("a revoked key: %+v", d)
	}

	ignore := newEnv(t, Config{Username: UsernameIgnore})
	_, k := ignore.key("alice", sensorScopes)
	ignore.login("device-17", "c1", k)
	ignore.want("device-17", "c1", "sensors/t", accWrite, allowed, "")
}

func TestAuthorize(t *testing.T) {
	e := newEnv(t, Config{})
	_, alice := e.key("alice", sensorScopes)
	e.login("alice", "c1", alice)
	for _, tc := range []struct {
		topic  string
		acc    access
		want   outcome
		reason string
	}{
		{"sensors/t1", accWrite, allowed, ""},
		{"sensors/t1", accRead, allowed, ""},
		{"sensors", accRead, allowed, ""},
		{"sensors", accWrite, denied, "no_grant"},
		{"other/t1", accWrite, denied, "no_grant"},
		{"other/t1", accRead, denied, "no_grant"},
		{"sensors/+/temp", accSubscribe, allowed, ""},
		{"sensors/#", accSubscribe, allowed, ""},
		{"$share/g1/sensors/#", accSubscribe, allowed, ""},
		{"sensors/t1", accSubscribe, allowed, ""},
		{"#", accSubscribe, denied, "no_grant"},
		{"+/t1", accSubscribe, denied, "no_grant"},
		{"anything/#", accUnsubscribe, allowed, ""},
		{"sensors/+", accWrite, invalid, "invalid_topic"},
		{"sensors/#", accRead, invalid, "invalid_topic"},
		{"sensors/a+", accSubscribe, invalid, "invalid_topic"},
		{"sensors/#/x", accSubscribe, invalid, "invalid_topic"},
		{"sensors/a b", accWrite, invalid, "invalid_scope"},
		{"sensors/a:b", accWrite, invalid, "invalid_scope"},
		{"sensors/*", accWrite, invalid, "invalid_scope"},
		{"sensors/caf\u00e9", accWrite, invalid, "invalid_scope"},
		{"", accWrite, invalid, "invalid_topic"},
		{"sensors/" + strings.Repeat("x", 1100), accWrite, invalid, "invalid_scope"},
		{"sensors/t1", 3, invalid, "bad_request"},
	} {
		e.want("alice", "c1", tc.topic, tc.acc, tc.want, tc.reason)
	}
	e.want("alice", "c2", "sensors/t1", accWrite, noBinding, "no_binding")
	e.want("bob", "c1", "sensors/t1", accWrite, noBinding, "no_binding")
}

// TestRevocationApplies: the ACL checks verify the bound key again, so a
// revocation refuses the client's next check; a new login rebinds.
func TestRevocationApplies(t *testing.T) {
	e := newEnv(t, Config{})
	id, k1 := e.key("alice", sensorScopes)
	e.login("alice", "c1", k1)
	e.want("alice", "c1", "sensors/t", accWrite, allowed, "")
	e.revoke(id)
	e.want("alice", "c1", "sensors/t", accWrite, denied, "revoked")
	e.want("alice", "c1", "sensors/t", accUnsubscribe, denied, "revoked")
	// A failed login leaves the session's binding alone.
	if d := e.a.authenticate("alice", "bad", "c1", false); d.outcome == allowed {
		t.Fatal("a bad password logged in")
	}
	e.want("alice", "c1", "sensors/t", accWrite, denied, "revoked")
	_, k2 := e.key("alice", sensorScopes)
	e.login("alice", "c1", k2)
	e.want("alice", "c1", "sensors/t", accWrite, allowed, "")
}

// TestClientsKeptApart: two clients with one username and keys of
// different reach are decided each by its own key.
func TestClientsKeptApart(t *testing.T) {
	e := newEnv(t, Config{})
	_, narrow := e.key("alice", []string{"mqtt/topic/sensors/t1:publish"})
	_, wide := e.key("alice", []string{"mqtt/topic/*:publish"})
	e.login("alice", "device", narrow)
	e.login("alice", "console", wide)
	e.want("alice", "device", "sensors/t2", accWrite, denied, "no_grant")
	e.want("alice", "console", "sensors/t2", accWrite, allowed, "")
	e.want("alice", "device", "sensors/t1", accWrite, allowed, "")
}

const aclPolicy = `
mode: rbac
roles:
  reader: {scopes: ["mqtt/topic/sensors:subscribe", "mqtt/topic/sensors/*:subscribe"]}
  ops:    {scopes: ["mqtt/topic/*:subscribe"], acl_exempt: true}
subjects:
  alice: {roles: [reader]}
  bob:   {roles: [reader]}
  olga:  {roles: [ops]}
acls:
  "mqtt/topic/sensors/vault/door": {subscribe: [bob]}
`

// TestWildcardACL: an ACL on a topic binds every filter whose scope covers
// the topic's.
func TestWildcardACL(t *testing.T) {
	e := newEnv(t, Config{})
	e.policy(aclPolicy)
	for _, s := range []string{"alice", "bob", "olga"} {
		_, k := e.key(s, nil)
		e.login(s, "c-"+s, k)
	}
	for _, tc := range []struct {
		subject, topic string
		acc            access
		want           outcome
		reason         string
	}{
		{"alice", "sensors/vault/door", accSubscribe, denied, "not_on_acl"},
		{"alice", "sensors/vault/door", accRead, denied, "not_on_acl"},
		{"alice", "sensors/#", accSubscribe, denied, "not_on_acl"},
		{"alice", "sensors/+/door", accSubscribe, denied, "not_on_acl"},
		{"alice", "sensors/vault/+", accSubscribe, denied, "not_on_acl"},
		{"alice", "$share/g/sensors/#", accSubscribe, denied, "not_on_acl"},
		{"alice", "sensors/garden/+", accSubscribe, allowed, ""},
		{"alice", "sensors/+", accSubscribe, allowed, ""}, // one level: never sensors/vault/door
		{"alice", "sensors/+/+/+", accSubscribe, allowed, ""},
		{"alice", "sensors/+/+", accSubscribe, denied, "not_on_acl"},
		{"alice", "+/vault/door", accSubscribe, denied, "no_grant"},
		{"alice", "sensors/+/window", accSubscribe, allowed, ""},
		{"alice", "sensors/vault/window", accRead, allowed, ""},
		{"bob", "sensors/#", accSubscribe, allowed, ""},
		{"bob", "sensors/vault/door", accRead, allowed, ""},
		{"olga", "#", accSubscribe, allowed, ""},
		{"olga", "sensors/vault/door", accRead, allowed, ""},
	} {
		e.want(tc.subject, "c-"+tc.subject, tc.topic, tc.acc, tc.want, tc.reason)
	}
}

func TestSuperuser(t *testing.T) {
	e := newEnv(t, Config{SuperuserRole: "mqtt-admin", SuperuserScope: "mqtt:superuser"})
	e.policy("mode: rbac\nroles:\n  root: {scopes: [\"mqtt:superuser\"]}\nsubjects:\n  carol: {roles: [root]}\n")
	adminID, admin := e.key("root", nil, "mqtt-admin")
	_, carol := e.key("carol", nil)
	_, alice := e.key("alice", sensorScopes)
	for _, tc := range []struct {
		user, token string
		superuser   bool
	}{{"root", admin, true}, {"carol", carol, true}, {"alice", alice, false}} {
		if d := e.a.authenticate(tc.user, tc.token, "c1", true); d.outcome != allowed || d.superuser != tc.superuser {
			t.Errorf("%s: %+v, want superuser %v", tc.user, d, tc.superuser)
		}
	}
	for _, u := range []string{"root", "carol"} {
		if d := e.a.superuserOf(u); d.outcome != allowed {
			t.Errorf("superuserOf(%s) = %+v", u, d)
		}
		e.want(u, "c1", "anything/at/all", accWrite, allowed, "")
		e.want(u, "c1", "#", accSubscribe, allowed, "")
		e.want(u, "c1", "a b", accWrite, allowed, "") // superusers are not bound by the scope alphabet
		e.want(u, "c1", "a/#/b", accSubscribe, invalid, "invalid_topic")
		e.want(u, "c1", "a/+", accWrite, invalid, "invalid_topic")
	}
	if d := e.a.superuserOf("alice"); d.outcome == allowed {
		t.Error("alice is a superuser")
	}
	if d := e.a.superuserOf("nobody"); d.outcome == allowed {
		t.Error("an unknown username is a superuser")
	}
	// A second client with the username: /superuser answers no, /acl
	// decides per client.
	_, rootNarrow := e.key("root", []string{"mqtt/topic/x:publish"})
	e.login("root", "c2", rootNarrow)
	if d := e.a.superuserOf("root"); d.outcome == allowed {
		t.Error("superuserOf answers for a username with two clients")
	}
	e.want("root", "c1", "y", accWrite, allowed, "")
	e.want("root", "c2", "y", accWrite, denied, "no_grant")
	// A revoked superuser key is no superuser's.
	e.revoke(adminID)
	e.want("root", "c1", "y", accWrite, denied, "revoked")

	none := newEnv(t, Config{})
	_, k := none.key("root", []string{"*"}, "mqtt-admin")
	none.login("root", "c1", k)
	if d := none.a.superuserOf("root"); d.outcome == allowed {
		t.Error("a superuser without superuser_role or superuser_scope configured")
	}
}

// TestSuperuserAfterEviction: once a binding has been evicted, a username
// with one binding left may have had another client: /superuser says no.
func TestSuperuserAfterEviction(t *testing.T) {
	e := newEnv(t, Config{SuperuserRole: "mqtt-admin", MaxBindings: 2})
	_, admin := e.key("root", nil, "mqtt-admin")
	_, narrow := e.key("root", []string{"mqtt/topic/x:publish"})
	e.login("root", "narrow", narrow)
	e.login("root", "admin", admin)
	_, other := e.key("alice", nil)
	e.login("alice", "c1", other) // evicts root/narrow
	if d := e.a.superuserOf("root"); d.outcome == allowed {
		t.Fatal("superuserOf answers after an eviction")
	}
	e.want("root", "narrow", "y", accWrite, noBinding, "no_binding")
	e.want("root", "admin", "y", accWrite, allowed, "")
}

// reloadingVerifier is the real verifier, whose policy is replaced (by an
// equal one) during the first reloads verifications.
type reloadingVerifier struct {
	*verify.Verifier
	src     string
	reloads int
}

func (r *reloadingVerifier) Verify(token, scope string) verify.Result {
	res := r.Verifier.Verify(token, scope)
	if r.reloads > 0 {
		r.reloads--
		p, err := rbac.ParsePolicy([]byte(r.src))
		if err != nil {
			panic(err)
		}
		r.SetPolicy(p)
	}
	return res
}

// TestPolicyChangeDuringWildcard: a wildcard filter's grant and ACLs are
// decided under one policy; a policy that keeps changing is refused.
func TestPolicyChangeDuringWildcard(t *testing.T) {
	for _, tc := range []struct {
		reloads int
		want    outcome
		reason  string
	}{{0, allowed, ""}, {2, allowed, ""}, {100, denied, "policy_changed"}} {
		e := newEnv(t, Config{})
		e.policy(aclPolicy)
		_, k := e.key("bob", nil)
		rv := &reloadingVerifier{Verifier: e.v, src: aclPolicy}
		a, err := New(Config{}, Options{Verifier: rv, Logger: quiet})
		if err != nil {
			t.Fatal(err)
		}
		if d := a.authenticate("bob", k, "c1", false); d.outcome != allowed {
			t.Fatal(d)
		}
		rv.reloads = tc.reloads
		if d := a.authorize("bob", "c1", "sensors/+", accSubscribe); d.outcome != tc.want || tc.reason != "" && d.reason != tc.reason {
			t.Errorf("%d reloads: %+v, want %s %s", tc.reloads, d, outcomeNames[tc.want], tc.reason)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	var c Config
	c.EnsureDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("the defaults: %v", err)
	}
	if c.Scope != DefaultScope || c.Username != UsernameMatch || c.ResponseMode != ResponseStatus || c.MaxBindings != DefaultMaxBindings || c.Enabled {
		t.Fatalf("defaults: %+v", c)
	}
	bad := Config{Scope: "x/{topic}", Username: "maybe", ResponseMode: "xml", SuperuserRole: " admin", SuperuserScope: "mqtt:*", MaxBindings: -1}
	err := bad.Validate()
	if err == nil {
		t.Fatal("an invalid config passed")
	}
	for _, want := range []string{"mqtt.scope", "mqtt.username", "mqtt.response_mode", "mqtt.superuser_role", "mqtt.superuser_scope", "mqtt.max_bindings"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %s: %v", want, err)
		}
	}
	if _, err := New(bad, Options{}); err == nil {
		t.Error("New without a verifier")
	}
}

// TestMetrics: requests are counted by endpoint and outcome.
func TestMetrics(t *testing.T) {
	e := newEnv(t, Config{})
	_, k := e.key("alice", sensorScopes)
	e.login("alice", "c1", k)
	e.a.observe(epACL, e.a.authorize("alice", "c1", "sensors/t", accWrite), "alice", "c1", "sensors/t")
	e.a.observe(epACL, e.a.authorize("alice", "c1", "other", accWrite), "alice", "c1", "other")
	e.a.observe(epACL, e.a.authorize("alice", "c9", "other", accWrite), "alice", "c9", "other")
	for _, tc := range []struct {
		outcome string
		want    float64
	}{{"allow", 1}, {"deny", 1}, {"no_binding", 1}, {"invalid", 0}} {
		var m dto.Metric
		if err := e.a.metrics[epACL][outcomeIndex(t, tc.outcome)].Write(&m); err != nil {
			t.Fatal(err)
		}
		if got := m.GetCounter().GetValue(); got != tc.want {
			t.Errorf("acl %s = %v, want %v", tc.outcome, got, tc.want)
		}
	}
	families, err := e.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if len(families) != 1 || families[0].GetName() != "verifyd_mqtt_requests_total" || len(families[0].GetMetric()) != int(numEndpoints)*int(numOutcomes) {
		t.Errorf("gathered %v, want verifyd_mqtt_requests_total for every endpoint and outcome", families)
	}
}

func outcomeIndex(t *testing.T, name string) outcome {
	for o, n := range outcomeNames {
		if n == name {
			return outcome(o)
		}
	}
	t.Fatalf("no outcome %q", name)
	return 0
}
