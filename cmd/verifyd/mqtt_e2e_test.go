package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// No MQTT broker runs here for these adapters: mosquitto-go-auth is not
// available from the Go module proxy (its repository is archived) and EMQX
// is not packaged in Debian. The test drives the daemon binary with the
// requests the plugin and EMQX send for the configuration of
// docs/integrations/mqtt.md and emqx.md, read from the pages.

// mqttDocBlock returns the fenced block after <!-- test: name --> on a page
// of docs/integrations.
func mqttDocBlock(t *testing.T, page, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "integrations", page))
	if err != nil {
		t.Fatal(err)
	}
	_, after, ok := strings.Cut(string(b), "<!-- test: "+name+" -->\n")
	if !ok {
		t.Fatalf("%s has no block %s", page, name)
	}
	_, rest, _ := strings.Cut(after, "\n")
	block, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatalf("%s: the block %s is not closed", page, name)
	}
	return block
}

// mqttPaths returns the path of each auth_opt_http_*_uri of a mosquitto.conf
// and of each url of EMQX blocks.
func mqttPaths(t *testing.T) map[string]string {
	t.Helper()
	paths := map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(mqttDocBlock(t, "mqtt.md", "mosquitto.conf")))
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 2 && strings.HasSuffix(f[0], "_uri") {
			paths[strings.TrimPrefix(f[0], "auth_opt_http_")] = f[1]
		}
	}
	for _, name := range []string{"emqx-authn.conf", "emqx-authz.conf"} {
		sc := bufio.NewScanner(strings.NewReader(mqttDocBlock(t, "emqx.md", name)))
		for sc.Scan() {
			if v, ok := strings.CutPrefix(strings.TrimSpace(sc.Text()), "url = "); ok {
				u, err := url.Parse(strings.Trim(v, `"`))
				if err != nil {
					t.Fatal(err)
				}
				paths[name] = u.Path
			}
		}
	}
	for _, k := range []string{"getuser_uri", "superuser_uri", "aclcheck_uri", "emqx-authn.conf", "emqx-authz.conf"} {
		if paths[k] == "" {
			t.Fatalf("the documented configuration has no %s: %v", k, paths)
		}
	}
	return paths
}

// goAuthPost sends what mosquitto-go-auth sends in JSON mode and reads the
// answer as its status response mode does: any 2xx allows.
func goAuthPost(t *testing.T, d *daemon, path string, body map[string]any) bool {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+d.addr+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "mosquitto-2.0.11")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 500 {
		t.Fatalf("%s: %d", path, resp.StatusCode)
	}
	return resp.StatusCode >= 200 && resp.StatusCode < 300
}

// emqxPost sends what EMQX renders from the documented body template and
// returns the result it reads (any status but 200 or 204 is "ignore").
func emqxPost(t *testing.T, d *daemon, path string, body map[string]string) string {
	t.Helper()
	b, _ := json.Marshal(body)
	resp, err := http.Post("http://"+d.addr+path, "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		return "ignore"
	}
	var r struct {
		Result string `json:"result"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.Result == "" {
		return "ignore"
	}
	return r.Result
}

// TestMQTTEndToEnd runs the daemon with the configuration and policy of
// docs/integrations/mqtt.md and answers mosquitto-go-auth's and EMQX's
// requests: logins, publishes, wildcard subscriptions under an ACL,
// superusers, and a revocation that the next check enforces.
func TestMQTTEndToEnd(t *testing.T) {
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yaml")
	writePolicy(t, policyFile, mqttDocBlock(t, "mqtt.md", "policy.yaml"))
	conf := mqttDocBlock(t, "mqtt.md", "verifyd.yaml")
	if !strings.Contains(conf, "/etc/verifyd/policy.yaml") {
		t.Fatal("the documented verifyd.yaml names no /etc/verifyd/policy.yaml")
	}
	confFile := filepath.Join(dir, "verifyd.yaml")
	if err := os.WriteFile(confFile, []byte(strings.Replace(conf, "/etc/verifyd/policy.yaml", policyFile, 1)), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, t.TempDir(), "VERIFYD_CONFIG="+confFile, "VERIFYD_ADMIN_KEY="+policyAdminKey)
	paths := mqttPaths(t)
	thermo := d.createKey(map[string]any{"subject": "thermo1"})
	alice := d.createKey(map[string]any{"subject": "alice"})
	bob := d.createKey(map[string]any{"subject": "bob"})
	root := d.createKey(map[string]any{"subject": "root", "roles": []string{"mqtt-admin"}})

	user := func(name, secret, client string) bool {
		return goAuthPost(t, d, paths["getuser_uri"], map[string]any{"username": name, "password": secret, "clientid": client})
	}
	superuser := func(name string) bool {
		return goAuthPost(t, d, paths["superuser_uri"], map[string]any{"username": name})
	}
	acl := func(name, client, topic string, acc int) bool {
		return goAuthPost(t, d, paths["aclcheck_uri"], map[string]any{"username": name, "clientid": client, "topic": topic, "acc": acc})
	}
	for _, c := range []struct {
		name    string
		got     bool
		allowed bool
	}{
		{"thermo1 logs in", user("thermo1", thermo.Secret, "thermo1-pub"), true},
		{"alice logs in", user("alice", alice.Secret, "alice-sub"), true},
		{"bob logs in", user("bob", bob.Secret, "bob-sub"), true},
		{"root logs in", user("root", root.Secret, "console"), true},
		{"a key under another username", user("bob", alice.Secret, "x1"), false},
		{"a wrong key", user("alice", "vk_wrong", "x2"), false},
		{"thermo1 publishes its own topic", acl("thermo1", "thermo1-pub", "sensors/thermo1/temp", 2), true},
		{"thermo1 publishes another sensor's", acl("thermo1", "thermo1-pub", "sensors/thermo2/temp", 2), false},
		{"alice subscribes to sensors/+/temp", acl("alice", "alice-sub", "sensors/+/temp", 4), true},
		{"alice receives sensors/thermo1/temp", acl("alice", "alice-sub", "sensors/thermo1/temp", 1), true},
		{"alice subscribes to sensors/# (an ACL under it)", acl("alice", "alice-sub", "sensors/#", 4), false},
		{"alice subscribes to sensors/vault/+", acl("alice", "alice-sub", "sensors/vault/+", 4), false},
		{"alice receives sensors/vault/door", acl("alice", "alice-sub", "sensors/vault/door", 1), false},
		{"bob subscribes to sensors/#", acl("bob", "bob-sub", "sensors/#", 4), true},
		{"bob receives sensors/vault/door", acl("bob", "bob-sub", "sensors/vault/door", 1), true},
		{"an unknown client", acl("alice", "elsewhere", "sensors/thermo1/temp", 1), false},
		{"an invalid filter", acl("bob", "bob-sub", "sensors/#/x", 4), false},
		{"root is a superuser", superuser("root"), true},
		{"alice is not", superuser("alice"), false},
		{"root publishes anywhere", acl("root", "console", "any/topic", 2), true},
	} {
		if c.got != c.allowed {
			t.Errorf("%s: allowed %v, want %v", c.name, c.got, c.allowed)
		}
	}

	// EMQX, with the documented templates.
	authn := func(name, secret, client string) string {
		return emqxPost(t, d, paths["emqx-authn.conf"], map[string]string{"username": name, "password": secret, "clientid": client})
	}
	authz := func(name, client, action, topic string) string {
		return emqxPost(t, d, paths["emqx-authz.conf"], map[string]string{"username": name, "clientid": client, "action": action, "topic": topic})
	}
	for _, c := range []struct{ name, got, want string }{
		{"alice logs in to EMQX", authn("alice", alice.Secret, "alice-emqx"), "allow"},
		{"a wrong key", authn("alice", "vk_wrong", "alice-emqx2"), "deny"},
		{"alice subscribes to sensors/+", authz("alice", "alice-emqx", "subscribe", "sensors/+"), "allow"},
		{"alice subscribes to #", authz("alice", "alice-emqx", "subscribe", "#"), "deny"},
		{"alice publishes", authz("alice", "alice-emqx", "publish", "sensors/thermo1/temp"), "deny"},
		{"an unknown client", authz("alice", "nobody", "subscribe", "sensors/+"), "deny"},
	} {
		if c.got != c.want {
			t.Errorf("EMQX: %s: %s, want %s", c.name, c.got, c.want)
		}
	}

	// A revocation reaches the clients' next checks, on both contracts.
	for _, id := range []string{thermo.ID, alice.ID} {
		if code := d.adminHTTP("DELETE", "/v1/admin/keys/"+id, "", nil); code != http.StatusOK {
			t.Fatalf("revoke %s: %d", id, code)
		}
	}
	if acl("thermo1", "thermo1-pub", "sensors/thermo1/temp", 2) {
		t.Error("a revoked key still publishes")
	}
	if acl("alice", "alice-sub", "sensors/thermo1/temp", 1) {
		t.Error("a revoked key still receives")
	}
	if got := authz("alice", "alice-emqx", "subscribe", "sensors/+"); got != "deny" {
		t.Errorf("EMQX: a revoked key still subscribes: %s", got)
	}
	if acl("bob", "bob-sub", "sensors/thermo1/temp", 1) != true {
		t.Error("bob's key was not revoked, yet he is refused")
	}

	for series, want := range map[string]string{
		`verifyd_mqtt_requests_total{endpoint="user",outcome="allow"}`:       "4",
		`verifyd_mqtt_requests_total{endpoint="user",outcome="deny"}`:        "2",
		`verifyd_mqtt_requests_total{endpoint="superuser",outcome="allow"}`:  "1",
		`verifyd_mqtt_requests_total{endpoint="acl",outcome="allow"}`:        "7",
		`verifyd_mqtt_requests_total{endpoint="acl",outcome="deny"}`:         "6",
		`verifyd_mqtt_requests_total{endpoint="acl",outcome="no_binding"}`:   "1",
		`verifyd_mqtt_requests_total{endpoint="acl",outcome="invalid"}`:      "1",
		`verifyd_mqtt_requests_total{endpoint="emqx_authz",outcome="allow"}`: "1",
		`verifyd_http_requests_total{code="403",route="mqtt"}`:               "11",
		`verifyd_http_requests_total{code="200",route="emqx"}`:               "7",
	} {
		if got := d.metric(series); got != want {
			t.Errorf("%s = %q, want %s", series, got, want)
		}
	}
}

// TestMQTTConfigInvalid: an invalid mqtt section stops verifyd at start,
// with every problem named.
func TestMQTTConfigInvalid(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "verifyd.yaml")
	body := "mqtt:\n  enabled: true\n  scope: \"mqtt/{topic}\"\n  response_mode: xml\n"
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out := runOnce(t, []string{"VERIFYD_CONFIG=" + conf}, "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0")
	if code != exitConfig {
		t.Fatalf("exit %d, want %d:\n%s", code, exitConfig, out)
	}
	for _, want := range []string{"mqtt.scope", "mqtt.response_mode"} {
		if !strings.Contains(out, want) {
			t.Errorf("the output does not name %s:\n%s", want, out)
		}
	}
}
