package rabbitmq

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verifyd/verifyd/ipc/httpapi"
	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify"
	"github.com/verifyd/verifyd/verify/credential"
)

// testEnv is an Adapter over a real verifier and store, mounted in the
// real HTTP server on loopback.
type testEnv struct {
	t    *testing.T
	v    *verify.Verifier
	m    *verify.Manager
	a    *Adapter
	reg  *prometheus.Registry
	base string
	log  *syncBuffer

	mu  sync.Mutex
	now time.Time // the adapter's clock
}

// syncBuffer collects the adapter's log.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// newTestEnv serves an Adapter made from cfg, deciding under policy (nil:
// the default policy).
func newTestEnv(t *testing.T, cfg Config, policy *rbac.Policy) *testEnv {
	t.Helper()
	reg := prometheus.NewRegistry()
	store, err := keystore.Open(t.TempDir(), &keystore.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ck, _ := credential.NewChecksumKey()
	minter, err := credential.NewMinter(ck)
	if err != nil {
		t.Fatal(err)
	}
	v, err := verify.New(store, minter, &verify.Options{Registerer: reg, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{t: t, v: v, m: verify.NewManager(store, minter, keystore.Sum("test-admin-key-0123456789"), nil), reg: reg, log: &syncBuffer{}, now: time.Now()}
	e.a, err = New(cfg, v, &Options{
		Registerer: reg,
		Logger:     slog.New(slog.NewTextHandler(e.log, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Now:        e.clock,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := httpapi.New(httpapi.Options{
		Verifier: v, Manager: e.m, Registerer: reg, MaxBodyBytes: 1 << 20, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Adapters: []httpapi.Adapter{{Prefix: Prefix, Route: Route, Handler: e.a.Handler}},
	})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	e.base = "http://" + ln.Addr().String()
	return e
}

func (e *testEnv) clock() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.now
}

func (e *testEnv) advance(d time.Duration) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.now = e.now.Add(d)
}

// key creates a key and returns its id and secret.
func (e *testEnv) key(spec verify.KeySpec) (string, string) {
	e.t.Helper()
	rec, secret, err := e.m.CreateKey(context.Background(), spec)
	if err != nil {
		e.t.Fatal(err)
	}
	return rec.ID, secret
}

// call sends fields to the endpoint path (under Prefix) with method GET
// (query string) or POST (form body), as RabbitMQ does, and checks the
// answer's shape: 200, text/plain, allow or deny.
func (e *testEnv) call(method, path string, fields url.Values) string {
	e.t.Helper()
	var req *http.Request
	var err error
	if method == http.MethodGet {
		req, err = http.NewRequest(method, e.base+Prefix+path+"?"+fields.Encode(), nil)
	} else {
		req, err = http.NewRequest(method, e.base+Prefix+path, strings.NewReader(fields.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if err != nil {
		e.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	body := string(b)
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/plain" {
		e.t.Fatalf("%s %s: status %d, Content-Type %q, want 200 text/plain", method, path, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if body != "deny" && body != "allow" && !strings.HasPrefix(body, "allow ") || strings.ContainsAny(body, "\r\n") {
		e.t.Fatalf("%s %s: body %q is not allow, allow <tags> or deny", method, path, body)
	}
	return body
}

// login logs username in with token and returns the tags of an allowed
// login ("" for a denied one).
func (e *testEnv) login(method, username, token string) (allowed bool, tags string) {
	e.t.Helper()
	body := e.call(method, "user", url.Values{"username": {username}, "password": {token}})
	if body == "deny" {
		return false, ""
	}
	return true, strings.TrimPrefix(strings.TrimPrefix(body, "allow"), " ")
}

// conn is one logged-in RabbitMQ connection: its later checks carry its
// username and tags.
type conn struct {
	e        *testEnv
	method   string
	username string
	tags     string
}

func (e *testEnv) connect(method, username, token string) *conn {
	e.t.Helper()
	ok, tags := e.login(method, username, token)
	if !ok {
		e.t.Fatalf("login of %s denied", username)
	}
	return &conn{e: e, method: method, username: username, tags: tags}
}

func (c *conn) vhost(vhost string) string {
	c.e.t.Helper()
	return c.e.call(c.method, "vhost", url.Values{"username": {c.username}, "vhost": {vhost}, "ip": {"127.0.0.1"}, "tags": {c.tags}})
}

func (c *conn) resource(vhost, resource, name, permission string) string {
	c.e.t.Helper()
	return c.e.call(c.method, "resource", url.Values{"username": {c.username}, "vhost": {vhost}, "resource": {resource},
		"name": {name}, "permission": {permission}, "tags": {c.tags}})
}

func (c *conn) topic(vhost, exchange, routingKey, permission string) string {
	c.e.t.Helper()
	return c.e.call(c.method, "topic", url.Values{"username": {c.username}, "vhost": {vhost}, "resource": {"topic"},
		"name": {exchange}, "permission": {permission}, "routing_key": {routingKey}, "tags": {c.tags},
		"variable_map.username": {c.username}, "variable_map.vhost": {vhost}})
}

// count returns verifyd_rabbitmq_requests_total{endpoint,outcome}.
func (e *testEnv) count(endpoint, outcome string) float64 {
	e.t.Helper()
	return gathered(e.t, e.reg, "verifyd_rabbitmq_requests_total", map[string]string{"endpoint": endpoint, "outcome": outcome})
}

// TestContract: both methods, the exact replies, tags from roles and the
// binding tag, and the checks of a connection decided by its credential's
// scopes.
func TestContract(t *testing.T) {
	for _, method := range []string{http.MethodPost, http.MethodGet} {
		t.Run(method, func(t *testing.T) {
			e := newTestEnv(t, Config{Tags: map[string][]string{"admin": {"administrator"}, "ops": {"management", "monitoring"}, "viewer": {"monitoring"}}}, nil)
			_, secret := e.key(verify.KeySpec{Subject: "alice", Roles: []string{"ops", "viewer", "other"}, Scopes: []string{
				"rabbitmq/vhost/%2F:access",
				"rabbitmq/vhost/%2F/queue/alice-*:*",
				"rabbitmq/vhost/%2F/exchange/amq.topic:*",
				"rabbitmq/vhost/%2F/exchange/:write",
				"rabbitmq/vhost/%2F/topic/amq.topic/orders.*:*",
			}})
			ok, tags := e.login(method, "alice", secret)
			if !ok {
				t.Fatal("alice's login is denied")
			}
			f := strings.Fields(tags)
			if len(f) != 3 || f[0] != "management" || f[1] != "monitoring" || !strings.HasPrefix(f[2], "verifyd-") || len(f[2]) != len("verifyd-")+32 {
				t.Fatalf("tags %q, want management monitoring verifyd-<32 hex>", tags)
			}
			c := &conn{e: e, method: method, username: "alice", tags: tags}
			for _, tc := range []struct {
				name, got, want string
			}{
				{"default vhost", c.vhost("/"), "allow"},
				{"other vhost", c.vhost("prod"), "deny"},
				{"own queue configure", c.resource("/", "queue", "alice-q1", "configure"), "allow"},
				{"own queue read", c.resource("/", "queue", "alice-q1", "read"), "allow"},
				{"other queue", c.resource("/", "queue", "bob-q1", "configure"), "deny"},
				{"own queue in another vhost", c.resource("prod", "queue", "alice-q1", "read"), "deny"},
				{"exchange read", c.resource("/", "exchange", "amq.topic", "read"), "allow"},
				{"default exchange write", c.resource("/", "exchange", "", "write"), "allow"},
				{"default exchange configure", c.resource("/", "exchange", "", "configure"), "deny"},
				{"publish to a granted key", c.topic("/", "amq.topic", "orders.created", "write"), "allow"},
				{"publish to another key", c.topic("/", "amq.topic", "payments.created", "write"), "deny"},
				{"bind a granted key", c.topic("/", "amq.topic", "orders.created", "read"), "allow"},
				{"bind orders.*", c.topic("/", "amq.topic", "orders.*", "read"), "allow"},
				{"bind orders.# (receives orders too)", c.topic("/", "amq.topic", "orders.#", "read"), "deny"},
				{"bind #", c.topic("/", "amq.topic", "#", "read"), "deny"},
				{"publish to a wildcard key", c.topic("/", "amq.topic", "orders.*", "write"), "deny"},
				{"queue name with '/'", c.resource("/", "queue", "alice-a/b", "read"), "allow"},
				{"queue name with ':'", c.resource("/", "queue", "alice-a:b", "read"), "deny"},
			} {
				if tc.got != tc.want {
					t.Errorf("%s: %s, want %s", tc.name, tc.got, tc.want)
				}
			}
			if n := e.count("user", "allow"); n != 1 {
				t.Errorf("user allow count %v, want 1", n)
			}
			if n := e.count("resource", "unmappable"); n != 1 {
				t.Errorf("resource unmappable count %v, want 1", n)
			}
			if n := e.count("topic", "deny"); n != 3 {
				t.Errorf("topic deny count %v, want 3", n)
			}
			if n := e.count("topic", "unmappable"); n != 1 {
				t.Errorf("topic unmappable count %v, want 1", n)
			}
			if n := gathered(t, e.reg, "verifyd_http_requests_total", map[string]string{"route": Route, "code": "200"}); n < 19 {
				t.Errorf("verifyd_http_requests_total{route=rabbitmq} = %v, want at least 19", n)
			}
		})
	}
}

// gathered returns the value of the series of the counter or gauge name
// whose labels include labels.
func gathered(t *testing.T, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metrics:
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if want, ok := labels[lp.GetName()]; ok && want != lp.GetValue() {
					continue metrics
				}
			}
			if m.GetGauge() != nil {
				return m.GetGauge().GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no series %s %v", name, labels)
	return 0
}

// TestLogin: who may log in, under both username rules.
func TestLogin(t *testing.T) {
	e := newTestEnv(t, Config{}, nil)
	_, alice := e.key(verify.KeySpec{Subject: "alice"})
	revokedID, revoked := e.key(verify.KeySpec{Subject: "alice"})
	if _, err := e.m.RevokeKey(context.Background(), revokedID); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, username, token string
		want                  bool
	}{
		{"own subject", "alice", alice, true},
		{"another username", "bob", alice, false},
		{"wrong token", "alice", alice + "x", false},
		{"random token", "alice", "not-a-credential", false},
		{"revoked", "alice", revoked, false},
	} {
		if ok, _ := e.login(http.MethodPost, tc.username, tc.token); ok != tc.want {
			t.Errorf("%s: login %v, want %v", tc.name, ok, tc.want)
		}
	}
	if e.count("user", "deny") != 4 {
		t.Errorf("user deny count %v, want 4", e.count("user", "deny"))
	}
	if out := e.log.String(); strings.Contains(out, alice) || strings.Contains(out, revoked) {
		t.Errorf("the log holds a token:\n%s", out)
	}

	ignore := newTestEnv(t, Config{Username: UsernameIgnore}, nil)
	_, key := ignore.key(verify.KeySpec{Subject: "alice", Scopes: []string{"rabbitmq/vhost/%2F:access"}})
	c := ignore.connect(http.MethodPost, "service-account", key)
	if got := c.vhost("/"); got != "allow" {
		t.Errorf("username ignore: vhost check %s, want allow", got)
	}
	c.username = "someone-else"
	if got := c.vhost("/"); got != "deny" {
		t.Errorf("username ignore: a check under another username than the login's: %s, want deny", got)
	}
}

// TestRevocationAndBindings: a revoked credential's open connection is
// denied at its next check; two connections of one user are decided for
// their own credentials; an unknown binding is denied.
func TestRevocationAndBindings(t *testing.T) {
	e := newTestEnv(t, Config{}, nil)
	wideID, wide := e.key(verify.KeySpec{Subject: "alice", Scopes: []string{"rabbitmq/vhost/%2F/queue/*:*"}})
	_, narrow := e.key(verify.KeySpec{Subject: "alice", Scopes: []string{"rabbitmq/vhost/%2F/queue/alice-q:read"}})
	cw := e.connect(http.MethodPost, "alice", wide)
	cn := e.connect(http.MethodPost, "alice", narrow)
	if cw.tags == cn.tags {
		t.Fatalf("two credentials got the same binding tag %q", cw.tags)
	}
	if got := cn.resource("/", "queue", "bob-q", "read"); got != "deny" {
		t.Errorf("the narrow credential's connection reads bob-q: %s (decided with the other credential?)", got)
	}
	if got := cw.resource("/", "queue", "bob-q", "read"); got != "allow" {
		t.Errorf("the wide credential's connection: %s, want allow", got)
	}
	if _, err := e.m.RevokeKey(context.Background(), wideID); err != nil {
		t.Fatal(err)
	}
	if got := cw.resource("/", "queue", "bob-q", "read"); got != "deny" {
		t.Errorf("after revocation: %s, want deny", got)
	}
	if n := e.count("resource", "deny"); n != 2 {
		t.Errorf("resource deny count %v, want 2", n)
	}
	if got := cw.resource("/", "queue", "bob-q", "read"); got != "deny" || e.count("resource", "no_binding") != 1 {
		t.Errorf("after revocation the binding is forgotten: %s, no_binding count %v", got, e.count("resource", "no_binding"))
	}
	if got := cn.resource("/", "queue", "alice-q", "read"); got != "allow" {
		t.Errorf("the other connection is unaffected: %s", got)
	}

	// A binding tag of another verifyd (or of this one before a restart),
	// none at all, and a forged one.
	other := newTestEnv(t, Config{}, nil)
	_, key := other.key(verify.KeySpec{Subject: "alice", Scopes: []string{"*"}})
	foreign := other.connect(http.MethodPost, "alice", key)
	for name, tags := range map[string]string{"foreign": foreign.tags, "none": "", "management only": "management", "forged": "verifyd-00000000000000000000000000000000", "two": cn.tags + " " + cw.tags} {
		c := &conn{e: e, method: http.MethodPost, username: "alice", tags: tags}
		if got := c.resource("/", "queue", "alice-q", "read"); got != "deny" {
			t.Errorf("binding %s: %s, want deny", name, got)
		}
	}
	if got := (&conn{e: e, method: http.MethodPost, username: "bob", tags: cn.tags}).resource("/", "queue", "alice-q", "read"); got != "deny" {
		t.Errorf("alice's binding under username bob: %s, want deny", got)
	}
}

// TestBindingLifetime: a binding lasts binding_ttl, at most until its
// credential expires, and at most max_bindings are kept.
func TestBindingLifetime(t *testing.T) {
	e := newTestEnv(t, Config{BindingTTL: time.Hour, MaxBindings: 2}, nil)
	scopes := []string{"rabbitmq/vhost/%2F:access"}
	_, forever := e.key(verify.KeySpec{Subject: "alice", Scopes: scopes})
	_, short := e.key(verify.KeySpec{Subject: "alice", Scopes: scopes, ExpiresIn: 10 * time.Minute})
	cf := e.connect(http.MethodPost, "alice", forever)
	cs := e.connect(http.MethodPost, "alice", short)
	e.advance(11 * time.Minute)
	if cf.vhost("/") != "allow" || cs.vhost("/") != "deny" {
		t.Errorf("after 11 minutes: forever %s, short %s; want allow, deny", cf.vhost("/"), cs.vhost("/"))
	}
	e.advance(50 * time.Minute)
	if got := cf.vhost("/"); got != "deny" {
		t.Errorf("after binding_ttl: %s, want deny", got)
	}
	// A new login renews it.
	cf = e.connect(http.MethodPost, "alice", forever)
	if got := cf.vhost("/"); got != "allow" {
		t.Errorf("after a new login: %s, want allow", got)
	}

	// Capacity: the least recently used binding goes first.
	_, k2 := e.key(verify.KeySpec{Subject: "bob", Scopes: []string{"rabbitmq/vhost/%2F:access"}})
	_, k3 := e.key(verify.KeySpec{Subject: "carol", Scopes: []string{"rabbitmq/vhost/%2F:access"}})
	c2 := e.connect(http.MethodPost, "bob", k2)
	cf.vhost("/") // alice is now more recent than bob
	c3 := e.connect(http.MethodPost, "carol", k3)
	if cf.vhost("/") != "allow" || c3.vhost("/") != "allow" || c2.vhost("/") != "deny" {
		t.Errorf("with max_bindings 2: alice %s, carol %s, bob %s; want allow, allow, deny", cf.vhost("/"), c3.vhost("/"), c2.vhost("/"))
	}
	if n := gathered(t, e.reg, "verifyd_rabbitmq_bindings", nil); n > 2 {
		t.Errorf("verifyd_rabbitmq_bindings %v, want at most 2", n)
	}
}

// TestBadRequests: every malformed request is answered 200 deny and
// counted as bad_request or unmappable.
func TestBadRequests(t *testing.T) {
	e := newTestEnv(t, Config{}, nil)
	_, key := e.key(verify.KeySpec{Subject: "alice", Scopes: []string{"*"}})
	c := e.connect(http.MethodPost, "alice", key)
	good := func() url.Values {
		return url.Values{"username": {"alice"}, "vhost": {"/"}, "resource": {"queue"}, "name": {"q"}, "permission": {"read"}, "tags": {c.tags}}
	}
	if got := e.call(http.MethodPost, "resource", good()); got != "allow" {
		t.Fatalf("the well-formed request: %s", got)
	}
	with := func(k string, vs ...string) url.Values {
		f := good()
		f[k] = vs
		return f
	}
	without := func(k string) url.Values {
		f := good()
		delete(f, k)
		return f
	}
	long := strings.Repeat("a", maxNameBytes+1)
	for _, tc := range []struct {
		name    string
		path    string
		fields  url.Values
		outcome string
	}{
		{"missing username", "resource", without("username"), "bad_request"},
		{"missing name", "resource", without("name"), "bad_request"},
		{"missing permission", "resource", without("permission"), "bad_request"},
		{"repeated name", "resource", with("name", "q", "other"), "bad_request"},
		{"oversize name", "resource", with("name", long), "bad_request"},
		{"empty username", "resource", with("username", ""), "bad_request"},
		{"unknown resource", "resource", with("resource", "stream"), "unmappable"},
		{"unknown permission", "resource", with("permission", "delete"), "unmappable"},
		{"upper-case permission", "resource", with("permission", "READ"), "unmappable"},
		{"name with '*'", "resource", with("name", "q*"), "unmappable"},
		{"name with a space", "resource", with("name", "a q"), "unmappable"},
		{"non-ASCII name", "resource", with("name", "qü"), "unmappable"},
		{"empty vhost", "resource", with("vhost", ""), "unmappable"},
		{"topic without routing key", "topic", with("resource", "topic"), "bad_request"},
		{"topic endpoint for a queue", "topic", with("routing_key", "k"), "bad_request"},
		{"routing key with ':'", "topic", func() url.Values { f := with("resource", "topic"); f["routing_key"] = []string{"a:b"}; return f }(), "unmappable"},
		{"binding key with five #", "topic", func() url.Values {
			f := with("resource", "topic")
			f["routing_key"] = []string{"#.#.#.#.#"}
			return f
		}(), "unmappable"},
		{"user without password", "user", url.Values{"username": {"alice"}}, "bad_request"},
		{"user with empty password", "user", url.Values{"username": {"alice"}, "password": {""}}, "bad_request"},
		{"oversize password", "user", url.Values{"username": {"alice"}, "password": {strings.Repeat("k", maxTokenBytes+1)}}, "bad_request"},
		{"unknown path", "users", good(), "bad_request"},
		{"path below an endpoint", "user/x", good(), "bad_request"},
	} {
		ep := tc.path
		if endpointOf([]byte(Prefix+ep)) == epOther {
			ep = "other"
		}
		before := e.count(ep, tc.outcome)
		if got := e.call(http.MethodPost, tc.path, tc.fields); got != "deny" {
			t.Errorf("%s: %s, want deny", tc.name, got)
		}
		if e.count(ep, tc.outcome) != before+1 {
			t.Errorf("%s: not counted as %s/%s", tc.name, ep, tc.outcome)
		}
	}
	// Other methods, and a POST whose body is not a form.
	for _, method := range []string{http.MethodPut, http.MethodDelete} {
		if got := e.call(method, "resource", good()); got != "deny" {
			t.Errorf("%s: %s, want deny", method, got)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, e.base+Prefix+"resource", strings.NewReader(`{"username":"alice"}`))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "deny" {
		t.Errorf("JSON body: %d %q, want 200 deny", resp.StatusCode, b)
	}
	// Unknown fields are ignored.
	f := good()
	f["client_id"] = []string{"mqtt-client"}
	f["variable_map.username"] = []string{"alice"}
	if got := e.call(http.MethodPost, "resource", f); got != "allow" {
		t.Errorf("with unknown fields: %s, want allow", got)
	}
	if !strings.Contains(e.log.String(), "outcome=bad_request") {
		t.Errorf("denials are not logged at debug:\n%s", e.log.String())
	}
}

// TestBindingKeyACL: a binding key's wildcards do not get around an ACL
// on a routing key it reaches.
func TestBindingKeyACL(t *testing.T) {
	policy, err := rbac.ParsePolicy([]byte(`mode: rbac
roles:
  reader: {scopes: ["rabbitmq/vhost/%2F/topic/amq.topic/*:read"]}
subjects:
  bob: {roles: [reader]}
  hr: {roles: [reader]}
acls:
  "rabbitmq/vhost/%2F/topic/amq.topic/payroll.monthly": {read: [hr]}
`))
	if err != nil {
		t.Fatal(err)
	}
	e := newTestEnv(t, Config{}, policy)
	_, bobKey := e.key(verify.KeySpec{Subject: "bob"})
	_, hrKey := e.key(verify.KeySpec{Subject: "hr"})
	bob := e.connect(http.MethodPost, "bob", bobKey)
	hr := e.connect(http.MethodPost, "hr", hrKey)
	for _, tc := range []struct {
		key       string
		bob, hrOK string
	}{
		{"orders.created", "allow", "allow"},
		{"payroll.monthly", "deny", "allow"},
		{"#", "deny", "allow"},
		{"payroll.*", "deny", "allow"},
		{"*.monthly", "deny", "allow"},
		{"payroll.#", "deny", "allow"},
		{"orders.#", "allow", "allow"},
		{"*.weekly", "allow", "allow"},
	} {
		if got := bob.topic("/", "amq.topic", tc.key, "read"); got != tc.bob {
			t.Errorf("bob binds %q: %s, want %s", tc.key, got, tc.bob)
		}
		if got := hr.topic("/", "amq.topic", tc.key, "read"); got != tc.hrOK {
			t.Errorf("hr binds %q: %s, want %s", tc.key, got, tc.hrOK)
		}
	}
	// A reload with other ACLs is followed.
	relaxed, err := rbac.ParsePolicy([]byte("mode: rbac\nroles:\n  reader: {scopes: [\"rabbitmq/vhost/%2F/topic/amq.topic/*:read\"]}\nsubjects:\n  bob: {roles: [reader]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	e.v.SetPolicy(relaxed)
	if got := bob.topic("/", "amq.topic", "#", "read"); got != "allow" {
		t.Errorf("after the ACL is gone: bob binds #: %s, want allow", got)
	}
}

// TestDocumentedPolicy: the policy of docs/integrations/rabbitmq.md
// grants each user its own queues and routing keys, not another's.
func TestDocumentedPolicy(t *testing.T) {
	page, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "integrations", "rabbitmq.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, ok := strings.Cut(string(page), "<!-- test: policy.yaml -->\n```yaml\n")
	if !ok {
		t.Fatal("rabbitmq.md has no policy.yaml block")
	}
	block, _, _ = strings.Cut(block, "```")
	policy, err := rbac.ParsePolicy([]byte(block))
	if err != nil {
		t.Fatalf("the documented policy: %v", err)
	}
	e := newTestEnv(t, Config{}, policy)
	_, key := e.key(verify.KeySpec{Subject: "carol", Roles: []string{"mq-user"}})
	c := e.connect(http.MethodPost, "carol", key)
	for _, tc := range []struct{ what, got, want string }{
		{"vhost", c.vhost("/"), "allow"},
		{"own queue", c.resource("/", "queue", "carol-jobs", "configure"), "allow"},
		{"another user's queue", c.resource("/", "queue", "dave-jobs", "configure"), "deny"},
		{"own MQTT queue", c.resource("/", "queue", "mqtt-subscription-carolqos1", "read"), "allow"},
		{"publish to amq.topic", c.resource("/", "exchange", "amq.topic", "write"), "allow"},
		{"own routing key", c.topic("/", "amq.topic", "users.carol.status", "write"), "allow"},
		{"own keys with # (also users.carol)", c.topic("/", "amq.topic", "users.carol.#", "read"), "deny"},
		{"own keys with *", c.topic("/", "amq.topic", "users.carol.*", "read"), "allow"},
		{"another user's routing key", c.topic("/", "amq.topic", "users.dave.status", "write"), "deny"},
		{"every user's status", c.topic("/", "amq.topic", "users.*.status", "read"), "deny"},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %s, want %s", tc.what, tc.got, tc.want)
		}
	}
}
