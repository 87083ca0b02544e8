package main

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// natsDoc returns the fenced block of docs/integrations/nats.md that the
// line "<!-- test: which -->" right before it marks; the page must have
// exactly one.
func natsDoc(t *testing.T, which string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "integrations", "nats.md"))
	if err != nil {
		t.Fatal(err)
	}
	marker := "<!-- test: " + which + " -->"
	_, rest, ok := strings.Cut(string(b), marker+"\n```")
	if !ok || strings.Count(string(b), marker) != 1 {
		t.Fatalf("nats.md: want exactly one %s followed by a fence", marker)
	}
	_, rest, _ = strings.Cut(rest, "\n") // the fence's language
	body, _, ok := strings.Cut(rest, "\n```\n")
	if !ok {
		t.Fatalf("nats.md: the block after %s is not closed", marker)
	}
	return body + "\n"
}

// natsReplace replaces the documented text old, which must occur once.
func natsReplace(t *testing.T, text, old, new string) string {
	t.Helper()
	if strings.Count(text, old) != 1 {
		t.Fatalf("the documented configuration does not hold %q once:\n%s", old, text)
	}
	return strings.Replace(text, old, new, 1)
}

// TestNATSCalloutEndToEnd runs the documented nats-server configuration
// embedded in the test and the documented verifyd configuration in the
// real daemon: a client with a key gets exactly its grants, an unknown or
// revoked key is refused at connect, and SIGTERM drains the callout.
func TestNATSCalloutEndToEnd(t *testing.T) {
	dir := t.TempDir()
	issuer, _ := nkeys.CreateAccount()
	issuerPub, _ := issuer.PublicKey()
	seed, _ := issuer.Seed()
	issuerFile := filepath.Join(dir, "nats-issuer.nk")
	passwordFile := filepath.Join(dir, "nats-callout-password")
	const password = "nats-e2e-callout-password"
	for file, body := range map[string][]byte{issuerFile: seed, passwordFile: []byte(password + "\n")} {
		if err := os.WriteFile(file, body, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	conf := natsDoc(t, "nats-server.conf")
	conf = natsReplace(t, conf, "127.0.0.1:4222", "127.0.0.1:-1")
	conf = natsReplace(t, conf, "ISSUER_PUBLIC_KEY", issuerPub)
	conf = natsReplace(t, conf, "CALLOUT_PASSWORD", password)
	confFile := filepath.Join(dir, "nats-server.conf")
	if err := os.WriteFile(confFile, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	opts, err := server.ProcessConfigFile(confFile)
	if err != nil {
		t.Fatalf("the documented nats-server configuration: %v", err)
	}
	opts.NoSigs, opts.NoLog = true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready in 10s")
	}
	t.Cleanup(func() { ns.Shutdown(); ns.WaitForShutdown() })
	url := ns.ClientURL()

	cfg := natsDoc(t, "verifyd.yaml")
	cfg = natsReplace(t, cfg, "nats://127.0.0.1:4222", url)
	cfg = natsReplace(t, cfg, "/etc/verifyd/nats-callout-password", passwordFile)
	cfg = natsReplace(t, cfg, "/etc/verifyd/nats-issuer.nk", issuerFile)
	cfgFile := filepath.Join(dir, "verifyd.yaml")
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, t.TempDir(), "VERIFYD_CONFIG="+cfgFile, "VERIFYD_ADMIN_KEY="+policyAdminKey)
	waitFor(t, "the callout connects", func() bool { return d.metric("verifyd_nats_callout_connected") == "1" })

	alice := d.createKey(map[string]any{"subject": "alice", "scopes": []string{"nats/orders.*:publish", "nats/orders.*:subscribe"}})
	errs := make(chan error, 16)
	nc, err := nats.Connect(url, nats.Token(alice.Secret), nats.NoReconnect(),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { errs <- err }))
	if err != nil {
		t.Fatalf("connect with a key: %v\n%s", err, d.output())
	}
	defer nc.Close()
	sub, err := nc.SubscribeSync("orders.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("orders.new", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if m, err := sub.NextMsg(10 * time.Second); err != nil || string(m.Data) != "hello" {
		t.Fatalf("orders.new: %v", err)
	}
	if err := nc.Publish("admin.delete", nil); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errs:
		if !errors.Is(err, nats.ErrPermissionViolation) || !strings.Contains(err.Error(), `"admin.delete"`) {
			t.Fatalf("asynchronous error %v, want a permissions violation for admin.delete", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no permissions violation for admin.delete")
	}

	refusedAtConnect := func(what, token string) {
		t.Helper()
		c, err := nats.Connect(url, nats.Token(token), nats.NoReconnect())
		if err == nil {
			c.Close()
			t.Fatalf("%s: connected", what)
		}
		if !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("%s: %v, want %v", what, err, nats.ErrAuthorization)
		}
	}
	refusedAtConnect("an unknown token", "not-a-verifyd-key")
	if code := d.adminHTTP("DELETE", "/v1/admin/keys/"+alice.ID, "", nil); code != 200 {
		t.Fatalf("revoke: %d", code)
	}
	refusedAtConnect("a revoked key", alice.Secret)

	for outcome, want := range map[string]string{"allowed": "1", "unknown": "1", "revoked": "1"} {
		if got := d.metric(`verifyd_nats_callout_requests_total{outcome="` + outcome + `"}`); got != want {
			t.Errorf("requests_total{outcome=%q} = %q, want %s", outcome, got, want)
		}
	}
	if code := d.terminate(); code != 0 {
		t.Fatalf("exit status %d after SIGTERM:\n%s", code, d.output())
	}
	if out := d.output(); !strings.Contains(out, "stopped cleanly") || strings.Contains(out, password) || strings.Contains(out, string(seed)) {
		t.Fatalf("the daemon did not stop cleanly, or logged a secret:\n%s", out)
	}
}

// TestNATSCalloutServerDown: verifyd starts and serves while no NATS
// server can be reached, and stops cleanly.
func TestNATSCalloutServerDown(t *testing.T) {
	dir := t.TempDir()
	issuer, _ := nkeys.CreateAccount()
	seed, _ := issuer.Seed()
	cfgFile := filepath.Join(dir, "verifyd.yaml")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg := "nats_callout:\n  enabled: true\n  url: nats://" + addr + "\n  user: verifyd\n  password_env: NATS_E2E_PASSWORD\n  issuer_seed_env: NATS_E2E_ISSUER\n  account: APP\n"
	if err := os.WriteFile(cfgFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, t.TempDir(), "VERIFYD_CONFIG="+cfgFile, "NATS_E2E_PASSWORD=pw", "NATS_E2E_ISSUER="+string(seed))
	if got := d.metric("verifyd_nats_callout_connected"); got != "0" {
		t.Fatalf("verifyd_nats_callout_connected = %q with no NATS server", got)
	}
	waitFor(t, "the failure is logged", func() bool {
		return strings.Contains(d.output(), "nats auth callout: cannot connect; retrying in the background")
	})
	if code := d.terminate(); code != 0 {
		t.Fatalf("exit status %d after SIGTERM:\n%s", code, d.output())
	}
}
