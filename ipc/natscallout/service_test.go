package natscallout

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify"
	"github.com/verifyd/verifyd/verify/credential"
)

// docBlock returns the fenced block of docs/integrations/nats.md that the
// line "<!-- test: which -->" right before it marks; the page must have
// exactly one.
func docBlock(t *testing.T, which string) string {
	t.Helper()
	file := filepath.Join("..", "..", "docs", "integrations", "nats.md")
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	marker := "<!-- test: " + which + " -->"
	_, rest, ok := strings.Cut(string(b), marker+"\n```")
	if !ok || strings.Count(string(b), marker) != 1 {
		t.Fatalf("%s: want exactly one %s followed by a fence", file, marker)
	}
	_, rest, _ = strings.Cut(rest, "\n") // the fence's language
	body, _, ok := strings.Cut(rest, "\n```\n")
	if !ok {
		t.Fatalf("%s: the block after %s is not closed", file, marker)
	}
	return body + "\n"
}

// replaceOnce replaces the documented text old, which must occur once.
func replaceOnce(t *testing.T, text, old, new string) string {
	t.Helper()
	if strings.Count(text, old) != 1 {
		t.Fatalf("the documented configuration does not hold %q once:\n%s", old, text)
	}
	return strings.Replace(text, old, new, 1)
}

// testEnv is a verifier over a real store, the keys of a callout issuer
// and the callout user's password.
type testEnv struct {
	t         *testing.T
	v         *verify.Verifier
	mgr       *verify.Manager
	past      *verify.Manager // creates keys two hours in the past
	minter    *credential.Minter
	issuer    nkeys.KeyPair
	issuerPub string
	xkey      nkeys.KeyPair
	xkeyPub   string
	password  string
	dir       string
}

func newTestEnv(t *testing.T, policy string) *testEnv {
	t.Helper()
	store, err := keystore.Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ck, _ := credential.NewChecksumKey()
	minter, err := credential.NewMinter(ck)
	if err != nil {
		t.Fatal(err)
	}
	var p *rbac.Policy
	if policy != "" {
		if p, err = rbac.ParsePolicy([]byte(policy)); err != nil {
			t.Fatal(err)
		}
	}
	v, err := verify.New(store, minter, &verify.Options{Policy: p})
	if err != nil {
		t.Fatal(err)
	}
	e := &testEnv{
		t:        t,
		v:        v,
		minter:   minter,
		mgr:      verify.NewManager(store, minter, keystore.Sum("admin-key-for-tests"), nil),
		past:     verify.NewManager(store, minter, keystore.Sum("admin-key-for-tests"), func() time.Time { return time.Now().Add(-2 * time.Hour) }),
		password: "callout-" + fmt.Sprint(time.Now().UnixNano()),
		dir:      t.TempDir(),
	}
	e.issuer, _ = nkeys.CreateAccount()
	e.issuerPub, _ = e.issuer.PublicKey()
	e.xkey, _ = nkeys.CreateCurveKeys()
	e.xkeyPub, _ = e.xkey.PublicKey()
	return e
}

// unknownKey returns a well-formed API key that is not stored.
func (e *testEnv) unknownKey() string {
	e.t.Helper()
	k, err := e.minter.NewAPIKey()
	if err != nil {
		e.t.Fatal(err)
	}
	return k
}

// key creates a key and returns its secret.
func (e *testEnv) key(m *verify.Manager, spec verify.KeySpec) (keystore.Record, string) {
	e.t.Helper()
	rec, secret, err := m.CreateKey(context.Background(), spec)
	if err != nil {
		e.t.Fatal(err)
	}
	return rec, secret
}

// config returns the service's configuration for the NATS server at url:
// the issuer seed in a file, the password in an environment variable.
func (e *testEnv) config(url string, withXKey bool) Config {
	e.t.Helper()
	seed, _ := e.issuer.Seed()
	issuerFile := filepath.Join(e.dir, "issuer.nk")
	if err := os.WriteFile(issuerFile, append(seed, '\n'), 0o600); err != nil {
		e.t.Fatal(err)
	}
	c := Config{
		Enabled:        true,
		URL:            url,
		User:           "verifyd",
		PasswordEnv:    "TEST_CALLOUT_PASSWORD",
		IssuerSeedFile: issuerFile,
		Account:        "APP",
	}
	if withXKey {
		c.XKeySeedEnv = "TEST_CALLOUT_XKEY"
	}
	return c
}

func (e *testEnv) getenv(name string) string {
	switch name {
	case "TEST_CALLOUT_PASSWORD":
		return e.password
	case "TEST_CALLOUT_XKEY":
		seed, _ := e.xkey.Seed()
		return string(seed)
	}
	return ""
}

// service starts the callout service for cfg and closes it at cleanup.
func (e *testEnv) service(cfg Config) (*Service, *prometheus.Registry) {
	e.t.Helper()
	reg := prometheus.NewRegistry()
	s, err := New(cfg, &Options{Verifier: e.v, Registerer: reg, Getenv: e.getenv, ReconnectWait: 50 * time.Millisecond})
	if err != nil {
		e.t.Fatal(err)
	}
	s.Start()
	e.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Close(ctx); err != nil {
			e.t.Errorf("Close: %v", err)
		}
	})
	return s, reg
}

// startNATS starts an embedded nats-server from the documented
// configuration, listening on addr ("127.0.0.1:-1": a free port).
func (e *testEnv) startNATS(addr string, withXKey bool) *server.Server {
	e.t.Helper()
	conf := docBlock(e.t, "nats-server.conf")
	conf = replaceOnce(e.t, conf, "127.0.0.1:4222", addr)
	conf = replaceOnce(e.t, conf, "ISSUER_PUBLIC_KEY", e.issuerPub)
	conf = replaceOnce(e.t, conf, "CALLOUT_PASSWORD", e.password)
	if withXKey {
		conf = replaceOnce(e.t, conf, `# xkey: "XKEY_PUBLIC_KEY"`, `xkey: "`+e.xkeyPub+`"`)
	}
	file := filepath.Join(e.t.TempDir(), "nats-server.conf")
	if err := os.WriteFile(file, []byte(conf), 0o600); err != nil {
		e.t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(file)
	if err != nil {
		e.t.Fatalf("the documented nats-server configuration: %v\n%s", err, conf)
	}
	opts.NoSigs, opts.NoLog = true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		e.t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		e.t.Fatal("nats-server not ready in 10s")
	}
	e.t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	return ns
}

// waitFor polls cond until it holds, for at most 15s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metric returns the value of the series of reg named name whose labels
// (name=value pairs) include labels.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					found = found || lp.GetName() == labels[i] && lp.GetValue() == labels[i+1]
				}
				if !found {
					continue series
				}
			}
			if g := m.GetGauge(); g != nil {
				return g.GetValue()
			}
			return m.GetCounter().GetValue()
		}
	}
	t.Fatalf("no series %s%v", name, labels)
	return 0
}

// client is a NATS client connection that collects its asynchronous
// errors.
type client struct {
	nc   *nats.Conn
	errs chan error
}

// connect connects a client to url; it is closed at cleanup.
func connect(t *testing.T, url string, opts ...nats.Option) (*client, error) {
	t.Helper()
	c := &client{errs: make(chan error, 16)}
	opts = append(opts, nats.NoReconnect(), nats.Timeout(10*time.Second),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { c.errs <- err }))
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		return nil, err
	}
	c.nc = nc
	t.Cleanup(nc.Close)
	return c, nil
}

// mustConnect connects a client that must be admitted.
func mustConnect(t *testing.T, url string, opts ...nats.Option) *client {
	t.Helper()
	c, err := connect(t, url, opts...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	return c
}

// refused checks that a client with opts is refused at connect.
func refused(t *testing.T, url string, opts ...nats.Option) {
	t.Helper()
	c, err := connect(t, url, opts...)
	if err == nil {
		c.nc.Close()
		t.Fatal("connected, want an authorization violation")
	}
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("connect: %v, want %v", err, nats.ErrAuthorization)
	}
}

// roundTrip subscribes to subject, publishes to it and requires the
// message back.
func (c *client) roundTrip(t *testing.T, subject string) {
	t.Helper()
	sub, err := c.nc.SubscribeSync(subject)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := c.nc.Publish(subject, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := sub.NextMsg(10 * time.Second); err != nil {
		t.Fatalf("%s: no message back: %v (async errors: %v)", subject, err, c.drainErrs())
	}
}

// violation requires a permissions violation naming subject among the
// asynchronous errors, once the server has processed what was sent.
func (c *client) violation(t *testing.T, what, subject string) {
	t.Helper()
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(10 * time.Second)
	for {
		select {
		case err := <-c.errs:
			msg := strings.ToLower(err.Error())
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(msg, "for "+what+" to \""+subject+"\"") {
				return
			}
			t.Logf("other asynchronous error: %v", err)
		case <-timeout:
			t.Fatalf("no permissions violation for %s %q", what, subject)
		}
	}
}

// noViolation requires that no asynchronous error arrived so far.
func (c *client) noViolation(t *testing.T) {
	t.Helper()
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	if errs := c.drainErrs(); len(errs) > 0 {
		t.Fatalf("asynchronous errors: %v", errs)
	}
}

func (c *client) drainErrs() []error {
	var out []error
	for {
		select {
		case err := <-c.errs:
			out = append(out, err)
		default:
			return out
		}
	}
}

// TestCallout drives the documented server configuration: allowed
// clients get exactly their grants, and unknown, revoked and expired
// credentials are refused at connect.
func TestCallout(t *testing.T) {
	e := newTestEnv(t, "")
	ns := e.startNATS("127.0.0.1:-1", false)
	url := ns.ClientURL()
	_, reg := e.service(e.config(url, false))
	waitFor(t, "connected", func() bool { return metric(t, reg, "verifyd_nats_callout_connected") == 1 })

	_, alice := e.key(e.mgr, verify.KeySpec{Subject: "alice", Scopes: []string{
		"nats/orders.*:publish", "nats/orders.*:subscribe", "nats/status:subscribe",
	}})
	t.Run("allowed", func(t *testing.T) {
		c := mustConnect(t, url, nats.Token(alice))
		c.roundTrip(t, "orders.new")
		c.roundTrip(t, "orders.eu.created")
		if _, err := c.nc.SubscribeSync("status"); err != nil {
			t.Fatal(err)
		}
		c.noViolation(t)
		if err := c.nc.Publish("admin.delete", []byte("x")); err != nil {
			t.Fatal(err)
		}
		c.violation(t, "publish", "admin.delete")
		if err := c.nc.Publish("status", []byte("x")); err != nil {
			t.Fatal(err)
		}
		c.violation(t, "publish", "status")
		if _, err := c.nc.SubscribeSync("admin.>"); err != nil {
			t.Fatal(err)
		}
		c.violation(t, "subscription", "admin.>")
		if _, err := c.nc.SubscribeSync(">"); err != nil {
			t.Fatal(err)
		}
		c.violation(t, "subscription", ">")
	})
	t.Run("password", func(t *testing.T) {
		c := mustConnect(t, url, nats.UserInfo("anyone", alice))
		c.roundTrip(t, "orders.new")
	})
	t.Run("no grants", func(t *testing.T) {
		_, bare := e.key(e.mgr, verify.KeySpec{Subject: "bare", Scopes: []string{"tool:data:read"}})
		c := mustConnect(t, url, nats.Token(bare))
		if err := c.nc.Publish("orders.new", []byte("x")); err != nil {
			t.Fatal(err)
		}
		c.violation(t, "publish", "orders.new")
		if _, err := c.nc.SubscribeSync("orders.new"); err != nil {
			t.Fatal(err)
		}
		c.violation(t, "subscription", "orders.new")
	})
	t.Run("unknown", func(t *testing.T) {
		refused(t, url, nats.Token(e.unknownKey()))
		refused(t, url, nats.Token("not a credential"))
	})
	t.Run("revoked", func(t *testing.T) {
		rec, secret := e.key(e.mgr, verify.KeySpec{Subject: "mallory", Scopes: []string{"nats/*:publish"}})
		mustConnect(t, url, nats.Token(secret))
		if _, err := e.mgr.RevokeKey(context.Background(), rec.ID); err != nil {
			t.Fatal(err)
		}
		refused(t, url, nats.Token(secret))
	})
	t.Run("expired", func(t *testing.T) {
		_, secret := e.key(e.past, verify.KeySpec{Subject: "old", Scopes: []string{"nats/*:publish"}, ExpiresIn: time.Hour})
		refused(t, url, nats.Token(secret))
	})
	t.Run("no token", func(t *testing.T) {
		refused(t, url)
		refused(t, url, nats.Token(alice), nats.UserInfo("alice", alice))
	})
	t.Run("callout user", func(t *testing.T) {
		c := mustConnect(t, url, nats.UserInfo("verifyd", e.password))
		c.roundTrip(t, "anything.at.all")
		refused(t, url, nats.UserInfo("verifyd", "wrong-password"))
	})
	for outcome, want := range map[string]float64{"allowed": 4, "unknown": 1, "malformed": 1, "revoked": 1, "expired": 1, "no_token": 2} {
		if got := metric(t, reg, "verifyd_nats_callout_requests_total", "outcome", outcome); got != want {
			t.Errorf("requests_total{outcome=%q} = %v, want %v", outcome, got, want)
		}
	}
}

// TestCalloutPolicy: role patterns (templates filled) grant, and an ACL
// of the policy narrows an own scope.
func TestCalloutPolicy(t *testing.T) {
	e := newTestEnv(t, `mode: rbac
roles:
  sensor: {scopes: ["nats/telemetry.${sub}.*:publish", "nats/telemetry.*:subscribe"]}
acls:
  "nats/orders.audit": {publish: [auditor]}
`)
	ns := e.startNATS("127.0.0.1:-1", false)
	url := ns.ClientURL()
	_, reg := e.service(e.config(url, false))
	waitFor(t, "connected", func() bool { return metric(t, reg, "verifyd_nats_callout_connected") == 1 })

	_, dev1 := e.key(e.mgr, verify.KeySpec{Subject: "dev1", Roles: []string{"sensor"}, Scopes: []string{"nats/orders.*:publish"}})
	c := mustConnect(t, url, nats.Token(dev1))
	c.roundTrip(t, "telemetry.dev1.temp")
	if err := c.nc.Publish("orders.new", nil); err != nil {
		t.Fatal(err)
	}
	c.noViolation(t)
	for _, subject := range []string{"telemetry.dev2.temp", "orders.audit"} {
		if err := c.nc.Publish(subject, nil); err != nil {
			t.Fatal(err)
		}
		c.violation(t, "publish", subject)
	}

	_, auditor := e.key(e.mgr, verify.KeySpec{Subject: "auditor", Scopes: []string{"nats/orders.*:publish", "nats/orders.*:subscribe"}})
	a := mustConnect(t, url, nats.Token(auditor))
	a.roundTrip(t, "orders.audit")
}

// TestCalloutEncrypted: with auth_callout.xkey, requests and responses are
// encrypted, and a service without the xkey cannot answer.
func TestCalloutEncrypted(t *testing.T) {
	e := newTestEnv(t, "")
	ns := e.startNATS("127.0.0.1:-1", true)
	url := ns.ClientURL()
	_, reg := e.service(e.config(url, true))
	waitFor(t, "connected", func() bool { return metric(t, reg, "verifyd_nats_callout_connected") == 1 })

	_, key := e.key(e.mgr, verify.KeySpec{Subject: "alice", Scopes: []string{"nats/orders.*:publish", "nats/orders.*:subscribe"}})
	c := mustConnect(t, url, nats.Token(key))
	c.roundTrip(t, "orders.new")
	refused(t, url, nats.Token(e.unknownKey()))
	if got := metric(t, reg, "verifyd_nats_callout_requests_total", "outcome", "allowed"); got != 1 {
		t.Errorf("allowed = %v, want 1", got)
	}
}

// TestCalloutSurvivesRestart: the service starts while no server runs,
// connects when one comes up, and reconnects after a restart; Close
// drains and disconnects.
func TestCalloutSurvivesRestart(t *testing.T) {
	e := newTestEnv(t, "")
	first := e.startNATS("127.0.0.1:-1", false)
	addr := first.Addr().String()
	url := first.ClientURL()
	first.Shutdown()
	first.WaitForShutdown()

	s, reg := e.service(e.config(url, false))
	if got := metric(t, reg, "verifyd_nats_callout_connected"); got != 0 {
		t.Fatalf("connected = %v with no server", got)
	}
	_, key := e.key(e.mgr, verify.KeySpec{Subject: "alice", Scopes: []string{"nats/orders.*:publish", "nats/orders.*:subscribe"}})
	for round := range 2 {
		ns := e.startNATS(addr, false)
		waitFor(t, "connected", func() bool { return metric(t, reg, "verifyd_nats_callout_connected") == 1 })
		s.mu.Lock()
		nc := s.nc
		s.mu.Unlock()
		if err := nc.Flush(); err != nil { // the resent subscription reached the server
			t.Fatal(err)
		}
		c := mustConnect(t, url, nats.Token(key))
		c.roundTrip(t, "orders.new")
		c.nc.Close()
		ns.Shutdown()
		ns.WaitForShutdown()
		waitFor(t, fmt.Sprintf("disconnected after round %d", round), func() bool { return metric(t, reg, "verifyd_nats_callout_connected") == 0 })
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatalf("Close while the server is down: %v", err)
	}
	select {
	case <-s.closed:
	default:
		t.Fatal("the connection is not closed after Close")
	}
}

// TestCloseDrains: Close on a connected service returns once the
// connection is closed.
func TestCloseDrains(t *testing.T) {
	e := newTestEnv(t, "")
	ns := e.startNATS("127.0.0.1:-1", false)
	s, reg := e.service(e.config(ns.ClientURL(), false))
	waitFor(t, "connected", func() bool { return metric(t, reg, "verifyd_nats_callout_connected") == 1 })
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := metric(t, reg, "verifyd_nats_callout_connected"); got != 0 {
		t.Fatalf("connected = %v after Close", got)
	}
	if err := s.Close(ctx); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// request is an authorization request as a server with key server sends
// it for issuer, carrying connect options co.
func request(t *testing.T, srv nkeys.KeyPair, issuer string, co jwt.ConnectOptions, edit func(*jwt.AuthorizationRequestClaims)) (req []byte, userPub, serverID string) {
	t.Helper()
	serverID, _ = srv.PublicKey()
	user, _ := nkeys.CreateUser()
	userPub, _ = user.PublicKey()
	c := jwt.NewAuthorizationRequestClaims(issuer)
	c.Audience = requestAudience
	c.UserNkey = userPub
	c.Server = jwt.ServerID{Name: "test", ID: serverID}
	c.ConnectOptions = co
	c.Expires = time.Now().Add(2 * time.Second).Unix()
	if edit != nil {
		edit(c)
	}
	tok, err := c.Encode(srv)
	if err != nil {
		t.Fatal(err)
	}
	return []byte(tok), userPub, serverID
}

// signJWT signs claims with kp as nats-io/jwt would, without its check
// of the signer's kind.
func signJWT(t *testing.T, kp nkeys.KeyPair, claims any) []byte {
	t.Helper()
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := base64.RawURLEncoding.EncodeToString([]byte(`{"typ":"JWT","alg":"ed25519-nkey"}`)) + "." + base64.RawURLEncoding.EncodeToString(payload)
	sig, err := kp.Sign([]byte(input))
	if err != nil {
		t.Fatal(err)
	}
	return []byte(input + "." + base64.RawURLEncoding.EncodeToString(sig))
}

// decodeResponse checks a response's envelope and returns it.
func decodeResponse(t *testing.T, e *testEnv, b []byte, userPub, serverID string) *jwt.AuthorizationResponseClaims {
	t.Helper()
	rc, err := jwt.DecodeAuthorizationResponseClaims(string(b))
	if err != nil {
		t.Fatalf("response: %v", err)
	}
	vr := jwt.CreateValidationResults()
	rc.Validate(vr)
	if len(vr.Issues) > 0 || rc.Issuer != e.issuerPub || rc.Subject != userPub || rc.Audience != serverID {
		t.Fatalf("response: issues %v, iss %s sub %s aud %s", vr.Issues, rc.Issuer, rc.Subject, rc.Audience)
	}
	return rc
}

// TestAuthorize checks requests and responses without a server: what is
// refused without an answer, what is answered with an error, and the user
// JWT of an allowed credential.
func TestAuthorize(t *testing.T) {
	e := newTestEnv(t, "")
	s, err := New(e.config("nats://127.0.0.1:4222", false), &Options{Verifier: e.v, Getenv: e.getenv})
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := nkeys.CreateServer()
	other, _ := nkeys.CreateServer()
	otherAccount, _ := nkeys.CreateAccount()
	otherAccountPub, _ := otherAccount.PublicKey()
	rec, key := e.key(e.mgr, verify.KeySpec{Subject: "alice", Scopes: []string{"nats/orders.*:publish", "nats/*:subscribe"}, ExpiresIn: 90 * time.Second})
	_, forever := e.key(e.mgr, verify.KeySpec{Subject: "bob", Scopes: []string{"nats/x:publish"}})
	tok := jwt.ConnectOptions{Token: key}

	t.Run("allowed", func(t *testing.T) {
		req, userPub, serverID := request(t, srv, e.issuerPub, tok, nil)
		resp, outcome := s.authorize(req, "")
		if outcome != outcomeAllowed {
			t.Fatalf("outcome %s", outcome)
		}
		rc := decodeResponse(t, e, resp, userPub, serverID)
		if rc.Error != "" {
			t.Fatalf("error %q", rc.Error)
		}
		uc, err := jwt.DecodeUserClaims(rc.Jwt)
		if err != nil {
			t.Fatal(err)
		}
		if uc.Issuer != e.issuerPub || uc.Subject != userPub || uc.Audience != "APP" || uc.Name != "alice" || uc.IssuerAccount != "" {
			t.Errorf("user JWT iss %s sub %s aud %s name %s issuer_account %q", uc.Issuer, uc.Subject, uc.Audience, uc.Name, uc.IssuerAccount)
		}
		if uc.Expires > rec.ExpiresAt.Unix() || uc.Expires < rec.ExpiresAt.Unix()-1 {
			t.Errorf("user JWT exp %d, want the key's expiry %d", uc.Expires, rec.ExpiresAt.Unix())
		}
		want := jwt.Permissions{Pub: jwt.Permission{Allow: jwt.StringList{"orders.>"}}, Sub: jwt.Permission{Allow: jwt.StringList{">"}}}
		if fmt.Sprint(uc.Permissions) != fmt.Sprint(want) {
			t.Errorf("permissions %+v, want %+v", uc.Permissions, want)
		}
	})
	t.Run("max_ttl", func(t *testing.T) {
		req, userPub, serverID := request(t, srv, e.issuerPub, jwt.ConnectOptions{Username: "bob", Password: forever}, nil)
		before := time.Now()
		resp, outcome := s.authorize(req, "")
		rc := decodeResponse(t, e, resp, userPub, serverID)
		uc, err := jwt.DecodeUserClaims(rc.Jwt)
		if outcome != outcomeAllowed || err != nil {
			t.Fatalf("outcome %s, %v", outcome, err)
		}
		if lo, hi := before.Add(DefaultMaxTTL).Unix()-1, time.Now().Add(DefaultMaxTTL).Unix(); uc.Expires < lo || uc.Expires > hi {
			t.Errorf("exp %d, want now + max_ttl in [%d, %d]", uc.Expires, lo, hi)
		}
		if fmt.Sprint(uc.Permissions.Sub) != fmt.Sprint(jwt.Permission{Deny: jwt.StringList{">"}}) {
			t.Errorf("subscribe permission %+v, want deny >", uc.Permissions.Sub)
		}
	})
	for _, tc := range []struct {
		name    string
		co      jwt.ConnectOptions
		outcome string
		message string
	}{
		{"unknown", jwt.ConnectOptions{Token: e.unknownKey()}, "unknown", verify.Unknown.Message()},
		{"malformed", jwt.ConnectOptions{Token: "x"}, "malformed", verify.Malformed.Message()},
		{"no token", jwt.ConnectOptions{Username: "alice"}, outcomeNoToken, "present a verifyd credential"},
		{"token and password", jwt.ConnectOptions{Token: key, Password: key}, outcomeNoToken, "present a verifyd credential"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, userPub, serverID := request(t, srv, e.issuerPub, tc.co, nil)
			resp, outcome := s.authorize(req, "")
			if outcome != tc.outcome {
				t.Fatalf("outcome %s, want %s", outcome, tc.outcome)
			}
			rc := decodeResponse(t, e, resp, userPub, serverID)
			if rc.Jwt != "" || !strings.Contains(rc.Error, tc.message) || strings.Contains(rc.Error, key) {
				t.Fatalf("response jwt %q error %q", rc.Jwt, rc.Error)
			}
		})
	}
	for _, tc := range []struct {
		name string
		req  func() []byte
	}{
		{"wrong audience", func() []byte {
			b, _, _ := request(t, srv, e.issuerPub, tok, func(c *jwt.AuthorizationRequestClaims) { c.Audience = "someone-else" })
			return b
		}},
		{"another issuer", func() []byte {
			b, _, _ := request(t, srv, otherAccountPub, tok, nil)
			return b
		}},
		{"signed by another server", func() []byte {
			b, _, _ := request(t, other, e.issuerPub, tok, func(c *jwt.AuthorizationRequestClaims) { c.Server.ID, _ = srv.PublicKey() })
			return b
		}},
		{"expired", func() []byte {
			b, _, _ := request(t, srv, e.issuerPub, tok, func(c *jwt.AuthorizationRequestClaims) { c.Expires = time.Now().Add(-time.Minute).Unix() })
			return b
		}},
		{"no expiry", func() []byte {
			b, _, _ := request(t, srv, e.issuerPub, tok, func(c *jwt.AuthorizationRequestClaims) { c.Expires = 0 })
			return b
		}},
		{"bad user key", func() []byte {
			b, _, _ := request(t, srv, e.issuerPub, tok, func(c *jwt.AuthorizationRequestClaims) { c.UserNkey = otherAccountPub })
			return b
		}},
		{"signed by an account", func() []byte {
			b, _, _ := request(t, srv, e.issuerPub, tok, nil)
			c, _ := jwt.DecodeAuthorizationRequestClaims(string(b))
			c.Issuer = otherAccountPub
			c.Server.ID = otherAccountPub
			return signJWT(t, otherAccount, c)
		}},
		{"tampered", func() []byte {
			b, _, _ := request(t, srv, e.issuerPub, tok, nil)
			parts := strings.Split(string(b), ".")
			c, _ := jwt.DecodeAuthorizationRequestClaims(string(b))
			c.ConnectOptions.Token = forever
			forged, _ := c.Encode(other)
			return []byte(parts[0] + "." + strings.Split(forged, ".")[1] + "." + parts[2])
		}},
		{"not a JWT", func() []byte { return []byte("hello") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, outcome := s.authorize(tc.req(), "")
			if resp != nil || outcome != outcomeInvalid {
				t.Fatalf("answered %q, outcome %s; want no answer, invalid_request", resp, outcome)
			}
		})
	}
	t.Run("encrypted without xkey", func(t *testing.T) {
		req, _, _ := request(t, srv, e.issuerPub, tok, nil)
		serverX, _ := nkeys.CreateCurveKeys()
		serverXPub, _ := serverX.PublicKey()
		sealed, _ := serverX.Seal(req, e.xkeyPub)
		if resp, outcome := s.authorize(sealed, serverXPub); resp != nil || outcome != outcomeInvalid {
			t.Fatalf("answered %q, outcome %s", resp, outcome)
		}
	})
}

// TestAuthorizeXKey: with an xkey, an encrypted request gets an encrypted
// answer, and an unencrypted one an error.
func TestAuthorizeXKey(t *testing.T) {
	e := newTestEnv(t, "")
	s, err := New(e.config("nats://127.0.0.1:4222", true), &Options{Verifier: e.v, Getenv: e.getenv})
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := nkeys.CreateServer()
	serverX, _ := nkeys.CreateCurveKeys()
	serverXPub, _ := serverX.PublicKey()
	_, key := e.key(e.mgr, verify.KeySpec{Subject: "alice", Scopes: []string{"nats/a:publish"}})

	req, userPub, serverID := request(t, srv, e.issuerPub, jwt.ConnectOptions{Token: key}, nil)
	sealed, _ := serverX.Seal(req, e.xkeyPub)
	resp, outcome := s.authorize(sealed, serverXPub)
	if outcome != outcomeAllowed {
		t.Fatalf("outcome %s", outcome)
	}
	if strings.HasPrefix(string(resp), "eyJ") {
		t.Fatal("the response is not encrypted")
	}
	opened, err := serverX.Open(resp, e.xkeyPub)
	if err != nil {
		t.Fatal(err)
	}
	if rc := decodeResponse(t, e, opened, userPub, serverID); rc.Jwt == "" {
		t.Fatalf("no user JWT: %q", rc.Error)
	}

	req, userPub, serverID = request(t, srv, e.issuerPub, jwt.ConnectOptions{Token: key}, nil)
	resp, outcome = s.authorize(req, "")
	if outcome != outcomeInvalid {
		t.Fatalf("unencrypted request: outcome %s", outcome)
	}
	if rc := decodeResponse(t, e, resp, userPub, serverID); rc.Jwt != "" || rc.Error == "" {
		t.Fatalf("unencrypted request answered jwt %q error %q", rc.Jwt, rc.Error)
	}

	if resp, outcome := s.authorize([]byte("garbage"), serverXPub); resp != nil || outcome != outcomeInvalid {
		t.Fatalf("undecryptable request: answered %q, outcome %s", resp, outcome)
	}
}
