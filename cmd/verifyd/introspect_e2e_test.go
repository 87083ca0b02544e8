package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// npmIntrospectionClients are the RFC 7662 client libraries the
// introspection test installs from the npm registry.
const npmIntrospectionClients = "oauth4webapi@3 openid-client@6"

// needNodeAndNPM returns the paths of node and npm. When they are missing
// it installs them (nodejs, npm) as root with apt-get; failing that the
// test skips, loudly, except under CI=true, where it fails.
func needNodeAndNPM(t *testing.T) (node, npm string) {
	t.Helper()
	look := func() bool {
		var err1, err2 error
		node, err1 = exec.LookPath("node")
		npm, err2 = exec.LookPath("npm")
		return err1 == nil && err2 == nil
	}
	if look() {
		return node, npm
	}
	if _, err := exec.LookPath("apt-get"); err == nil && os.Geteuid() == 0 {
		t.Log("node or npm is missing: installing nodejs and npm with apt-get")
		install := "apt-get install -y -qq --no-install-recommends nodejs npm"
		cmd := exec.Command("sh", "-c", install+" || { apt-get update -qq && "+install+"; }")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Logf("apt-get install nodejs npm: %v\n%s", err, out)
		}
		if look() {
			return node, npm
		}
	}
	msg := "!!! node or npm not found: the RFC 7662 introspection endpoint is NOT tested against real clients; install nodejs and npm (make deps does it as root)"
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return "", ""
}

// npmModules installs npmIntrospectionClients once per machine, into a
// directory under os.TempDir() named after the version ranges, and
// returns its node_modules. A new install goes to a fresh directory that
// is renamed into place, so that concurrent runs never see half of one.
func npmModules(t *testing.T, npm string) string {
	t.Helper()
	key := strings.NewReplacer("@", "", " ", "-", "/", "_").Replace(npmIntrospectionClients)
	dir := filepath.Join(os.TempDir(), "verifyd-npm-"+key)
	modules := filepath.Join(dir, "node_modules")
	installed := func(root string) bool {
		for _, pkg := range []string{"oauth4webapi", "openid-client"} {
			if _, err := os.Stat(filepath.Join(root, "node_modules", pkg, "package.json")); err != nil {
				return false
			}
		}
		return true
	}
	if installed(dir) {
		return modules
	}
	tmp, err := os.MkdirTemp(os.TempDir(), "verifyd-npm-install-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(tmp)
	if err := os.WriteFile(filepath.Join(tmp, "package.json"), []byte(`{"private": true}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := append([]string{"install", "--no-audit", "--no-fund"}, strings.Fields(npmIntrospectionClients)...)
	cmd := exec.CommandContext(ctx, npm, args...)
	cmd.Dir = tmp
	start := time.Now()
	if out, err := cmd.CombinedOutput(); err != nil {
		msg := fmt.Sprintf("!!! npm install %s failed, so the introspection endpoint is NOT tested against real clients: %v\n%s", npmIntrospectionClients, err, out)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Logf("npm install %s: %v", npmIntrospectionClients, time.Since(start).Round(time.Millisecond))
	if !installed(tmp) {
		t.Fatalf("npm install %s left no oauth4webapi or openid-client in %s", npmIntrospectionClients, tmp)
	}
	if err := os.Rename(tmp, dir); err != nil && !installed(dir) {
		t.Fatalf("moving the npm install into place: %v (remove %s, which holds an incomplete install)", err, dir)
	}
	return modules
}

// introspectionRun is one introspection made by the Node script.
type introspectionRun struct {
	Client string         `json:"client"`
	Method string         `json:"method"`
	Lib    string         `json:"lib"`
	Token  string         `json:"token"`
	Result map[string]any `json:"result"`
	Error  *struct {
		Name    string `json:"name"`
		Code    string `json:"code"`
		Status  int    `json:"status"`
		Message string `json:"message"`
	} `json:"error"`
}

// TestIntrospectionWithRFC7662Clients drives the daemon's POST
// /v1/introspect with oauth4webapi and openid-client, the RFC 7662 client
// libraries of the npm registry, each with client_secret_basic (which
// form-urlencodes id and secret) and client_secret_post, for two clients
// whose secrets need that encoding: one from the environment, one from a
// file.
func TestIntrospectionWithRFC7662Clients(t *testing.T) {
	node, npm := needNodeAndNPM(t)
	modules := npmModules(t, npm)

	hsSecret := make([]byte, 32)
	rand.Read(hsSecret)
	const rsSecret = "rs-secret-~.()*!'0123" // every character oauth4webapi escapes beyond encodeURIComponent
	const gwSecret = "gw secret+/%:=&?#0123"
	dir := t.TempDir()
	gwFile := filepath.Join(dir, "gw.secret")
	if err := os.WriteFile(gwFile, []byte(gwSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "verifyd.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf(`
introspection:
  clients:
    - id: rs
      secret_env: RS_INTROSPECTION_SECRET
    - id: gw
      secret_file: %s
trust:
  sources:
    - name: proxy
      hs256:
        - kid: hs-1
          secret_env: PROXY_SECRET
      issuer: https://issuer.example
      audience: [verifyd]
`, gwFile)), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, t.TempDir(), "VERIFYD_CONFIG="+cfg, "RS_INTROSPECTION_SECRET="+rsSecret, "PROXY_SECRET="+b64url.EncodeToString(hsSecret))
	admin := d.adminKey()

	var alice, revoked keyAnswer
	created := time.Now().Truncate(time.Second)
	d.ctlJSON(admin, &alice, "keys", "create", "--subject", "alice", "--kind", "pat", "--scope", "tool:data:*", "--scope", "mailbox:alice:*", "--role", "publisher", "--expires-in", "1h")
	d.ctlJSON(admin, &revoked, "keys", "create", "--subject", "bob")
	d.ctlJSON(admin, &keyAnswer{}, "keys", "revoke", revoked.ID)
	createdBy := time.Now()
	claims := jwtClaims("carol", time.Hour)
	claims["azp"] = "gateway-7"
	jwt := hs256(t, hsSecret, "hs-1", claims)
	revokedJWT := hs256(t, hsSecret, "hs-1", jwtClaims("dave", time.Hour))
	if out, code := d.ctl(admin, "revoke", "jwt", "--jti", "jti-dave"); code != 0 {
		t.Fatalf("revoke jwt: exit %d: %s", code, out)
	}

	script, err := os.ReadFile(filepath.Join("testdata", "introspect_client.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	js := t.TempDir()
	if err := os.WriteFile(filepath.Join(js, "introspect_client.mjs"), script, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(modules, filepath.Join(js, "node_modules")); err != nil {
		t.Fatal(err)
	}
	in, _ := json.Marshal(map[string]any{
		"endpoint": "http://" + d.addr + "/v1/introspect",
		"clients":  []map[string]string{{"id": "rs", "secret": rsSecret}, {"id": "gw", "secret": gwSecret}},
		"tokens": map[string]string{
			"active": alice.Secret, "jwt": jwt, "unknown": strings.Repeat("u", 43),
			"revoked": revoked.Secret, "revoked_jwt": revokedJWT,
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(js, "introspect_client.mjs"))
	cmd.Dir = js
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node introspect_client.mjs: %v\n%s\ndaemon:\n%s", err, stderr.String(), d.output())
	}
	var runs []introspectionRun
	if err := json.Unmarshal(stdout.Bytes(), &runs); err != nil {
		t.Fatalf("the script printed %q: %v", stdout.String(), err)
	}

	iat := claims["iat"].(int64)
	exp := claims["exp"].(int64)
	wantJWT := map[string]any{
		"active": true, "sub": "carol", "scope": "mailbox:carol:*", "client_id": "gateway-7", "token_type": "Bearer",
		"exp": float64(exp), "iat": float64(iat), "iss": "https://issuer.example", "aud": "verifyd",
		"jti": "jti-carol", "kind": "jwt", "roles": []any{"agent"},
	}
	inactive := map[string]any{"active": false}
	// Two libraries, two methods, two clients, five tokens, plus one wrong
	// secret per library and method.
	if len(runs) != 2*2*(2*5+1) {
		t.Fatalf("the script made %d introspections, want %d: %s", len(runs), 2*2*(2*5+1), stdout.String())
	}
	seen := map[string]bool{}
	for _, r := range runs {
		name := r.Lib + " " + r.Method + " " + r.Client + " " + r.Token
		seen[r.Lib+" "+r.Method] = true
		if r.Token == "wrong_secret" {
			if r.Error == nil || r.Error.Name != "WWWAuthenticateChallengeError" || r.Error.Status != 401 {
				t.Errorf("%s: %+v, want a 401 WWWAuthenticateChallengeError", name, r)
			}
			continue
		}
		if r.Error != nil {
			t.Errorf("%s: the client refused the answer: %+v", name, *r.Error)
			continue
		}
		switch r.Token {
		case "active":
			exp, _ := r.Result["exp"].(float64)
			iat, _ := r.Result["iat"].(float64)
			want := map[string]any{
				"active": true, "sub": "alice", "scope": "tool:data:* mailbox:alice:*", "client_id": alice.ID,
				"token_type": "Bearer", "exp": exp, "iat": iat, "kind": "pat", "roles": []any{"publisher"},
			}
			issued := time.Unix(int64(iat), 0)
			if !reflect.DeepEqual(r.Result, want) || exp-iat < 3599 || exp-iat > 3600 || issued.Before(created) || issued.After(createdBy) {
				t.Errorf("%s: %v\nwant %v, iat when the key was created (%v to %v), exp an hour later", name, r.Result, want, created, createdBy)
			}
		case "jwt":
			if !reflect.DeepEqual(r.Result, wantJWT) {
				t.Errorf("%s: %v\nwant %v", name, r.Result, wantJWT)
			}
		default:
			if !reflect.DeepEqual(r.Result, inactive) {
				t.Errorf("%s: %v, want exactly {\"active\":false}", name, r.Result)
			}
		}
	}
	for _, m := range []string{"oauth4webapi basic", "oauth4webapi post", "openid-client basic", "openid-client post"} {
		if !seen[m] {
			t.Errorf("no introspection with %s", m)
		}
	}

	if code := d.terminate(); code != 0 {
		t.Errorf("exit %d", code)
	}
	out := d.output()
	if !strings.Contains(out, "POST /v1/introspect is open") {
		t.Errorf("the daemon did not log that introspection is open:\n%s", out)
	}
	for _, secret := range []string{rsSecret, gwSecret, alice.Secret, jwt} {
		if strings.Contains(out, secret) {
			t.Errorf("the daemon logged a secret or a token")
		}
	}
}

// TestIntrospectionClosedAndInvalidConfig: without clients the daemon says
// at start that introspection is closed; a client whose secret is missing
// or short stops it with exit status 2, naming every problem and no
// secret.
func TestIntrospectionClosedAndInvalidConfig(t *testing.T) {
	d := startDaemon(t, t.TempDir())
	resp, err := http.Post("http://"+d.addr+"/v1/introspect", "application/x-www-form-urlencoded",
		strings.NewReader("token=x&client_id=rs&client_secret=rs-secret-0123456789"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") == "" {
		t.Errorf("closed endpoint answered %d, WWW-Authenticate %q; want 401 with a challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	if out := d.output(); !strings.Contains(out, "POST /v1/introspect is closed") {
		t.Errorf("the daemon did not log that introspection is closed:\n%s", out)
	}

	cfg := filepath.Join(t.TempDir(), "verifyd.yaml")
	if err := os.WriteFile(cfg, []byte(`
introspection:
  clients:
    - id: rs
      secret_env: RS_SECRET
    - id: rs
      secret_env: UNSET_SECRET
    - id: both
      secret_env: RS_SECRET
      secret_file: /nonexistent
`), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, "verifyd"), "--data-dir", t.TempDir(), "--socket", "off", "--http-addr", "127.0.0.1:0")
	cmd.Env = append(cleanEnv(), "VERIFYD_CONFIG="+cfg, "RS_SECRET=tiny-sec")
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != exitConfig {
		t.Fatalf("exit %d (%v), want %d:\n%s", code, err, exitConfig, out)
	}
	for _, want := range []string{
		`clients[0] (rs): the secret in environment variable RS_SECRET is 8 bytes, shorter than 16`,
		`clients[1]: id \"rs\" is used by an earlier client`,
		`clients[1] (rs): environment variable UNSET_SECRET is not set or empty`,
		`clients[2] (both): exactly one of secret_env and secret_file must be set`,
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("the output lacks %q:\n%s", want, out)
		}
	}
	if bytes.Contains(out, []byte("tiny-sec")) {
		t.Errorf("the output quotes the secret:\n%s", out)
	}
}
