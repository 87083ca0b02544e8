package main

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"
)

// patTuple is a PAT scope tuple as the API and verifyctl -o json show it.
type patTuple struct {
	Domain     string `json:"optional_domain_id"`
	EntityType string `json:"entity_type"`
	Operation  string `json:"operation"`
	EntityID   string `json:"entity_id"`
}

// patJSON is a PAT as the API and verifyctl -o json show it.
type patJSON struct {
	ID         string     `json:"id"`
	Subject    string     `json:"subject"`
	Name       string     `json:"name"`
	Status     string     `json:"status"`
	Secret     string     `json:"secret"`
	Creator    string     `json:"creator"`
	Version    uint64     `json:"version"`
	Scopes     []patTuple `json:"scopes"`
	Patterns   []string   `json:"patterns"`
	ExpiresAt  time.Time  `json:"expires_at"`
	LastUsedAt *time.Time `json:"last_used_at"`
	PATs       []patJSON  `json:"pats"`
	Code       string     `json:"code"`
	Message    string     `json:"message"`
}

// request sends a request to d with headers (name, value pairs) and
// decodes the JSON answer into out (when not nil).
func (d *daemon) request(method, path, body string, out any, headers ...string) (int, http.Header) {
	d.t.Helper()
	req, err := http.NewRequest(method, "http://"+d.addr+path, strings.NewReader(body))
	if err != nil {
		d.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			d.t.Fatalf("%s %s: %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode, resp.Header
}

// pat calls the PAT API and requires status want.
func (d *daemon) pat(method, path, body string, want int, headers ...string) patJSON {
	d.t.Helper()
	var p patJSON
	if code, _ := d.request(method, path, body, &p, headers...); code != want {
		d.t.Fatalf("%s %s %s: %d %+v, want %d", method, path, body, code, p, want)
	}
	return p
}

const patCorsOrigin = "https://console.example"

// startPATDaemon runs verifyd with an HS256 trust source, a PAT maximum
// of 2000h and CORS for patCorsOrigin, on dataDir.
func startPATDaemon(t *testing.T, dataDir string, secret []byte) *daemon {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "verifyd.yaml")
	body := `
http:
  cors:
    allowed_origins: [` + patCorsOrigin + `]
pats:
  max_duration: 2000h
trust:
  sources:
    - name: proxy
      hs256:
        - kid: hs-1
          secret_env: PROXY_SECRET
      issuer: https://issuer.example
      audience: [verifyd]
`
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return startDaemon(t, dataDir, "VERIFYD_CONFIG="+cfg, "VERIFYD_ADMIN_KEY="+policyAdminKey, "PROXY_SECRET="+b64url.EncodeToString(secret))
}

// TestPATsEndToEnd drives personal access tokens through the daemon: an
// owner with an API key and another with a JWT manage their own PATs over
// HTTP, the admin with verifyctl; bad input changes nothing; the tuples
// and the reset secret survive a restart.
func TestPATsEndToEnd(t *testing.T) {
	secret := make([]byte, 32)
	rand.Read(secret)
	dataDir := t.TempDir()
	d := startPATDaemon(t, dataDir, secret)
	alice := d.createKey(map[string]any{"subject": "alice"}).Secret
	asAlice := []string{"Authorization", "Bearer " + alice}
	bobJWT := hs256(t, secret, "hs-1", jwtClaims("bob", time.Hour))
	asBob := []string{"Authorization", "Bearer " + bobJWT}

	// Alice creates a PAT with her API key.
	p := d.pat("POST", "/v1/pats", `{"name":"ci","duration":"240h","scopes":[
		{"optional_domain_id":"d1","entity_type":"clients","operation":"create","entity_id":"*"},
		{"optional_domain_id":"d1","entity_type":"channels","operation":"publish","entity_id":"ch-42"}]}`, 201, asAlice...)
	if p.Subject != "alice" || p.Creator != "subject:alice" || !strings.HasPrefix(p.Secret, "pat_"+p.ID+"_") {
		t.Fatalf("created = %+v", p)
	}
	token := p.Secret
	if a := d.verifyHTTP(token, "domains/d1/channels/ch-42:publish"); a.Status != 200 || a.Kind != "pat" || a.KeyID != p.ID {
		t.Fatalf("PAT verify: %+v", a)
	}
	if a := d.verifyHTTP(token, "domains/d1/channels/ch-43:publish"); a.Status != 403 {
		t.Errorf("PAT beyond its scopes: %+v", a)
	}
	// last_used_at appears once the use is noted (asynchronously).
	for i := 0; ; i++ {
		if got := d.pat("GET", "/v1/pats/"+p.ID, "", 200, asAlice...); got.LastUsedAt != nil {
			break
		}
		if i == 200 {
			t.Fatal("last_used_at never appeared after a use")
		}
		time.Sleep(50 * time.Millisecond)
	}

	// Bob, with a JWT, has his own PATs; neither sees the other's.
	bp := d.pat("POST", "/v1/pats", `{"name":"bob's"}`, 201, asBob...)
	if bp.Subject != "bob" {
		t.Errorf("bob's PAT = %+v", bp)
	}
	d.pat("GET", "/v1/pats/"+bp.ID, "", 404, asAlice...)
	d.pat("DELETE", "/v1/pats/"+p.ID, "", 404, asBob...)
	if l := d.pat("GET", "/v1/pats", "", 200, asBob...).PATs; len(l) != 1 || l[0].ID != bp.ID {
		t.Errorf("bob's list: %+v", l)
	}
	// A PAT cannot make PATs.
	d.pat("POST", "/v1/pats", `{"name":"x"}`, 403, "Authorization", "Bearer "+token)

	// The admin, with verifyctl.
	admin := policyAdminKey
	var list struct {
		PATs []patJSON `json:"pats"`
	}
	d.ctlJSON(admin, &list, "pats", "list", "--subject", "alice")
	if len(list.PATs) != 1 || list.PATs[0].ID != p.ID || list.PATs[0].Secret != "" {
		t.Fatalf("pats list --subject alice: %+v", list)
	}
	var got patJSON
	d.ctlJSON(admin, &got, "pats", "add-scope", p.ID, "--scope", "d1:messages:subscribe:ch-42", "--scope", "d1:dashboards:view:*")
	if a := d.verifyHTTP(token, "domains/d1/dashboards/db-3:read"); a.Status != 200 {
		t.Errorf("after add-scope: %+v", a)
	}
	d.ctlJSON(admin, &got, "pats", "remove-scope", p.ID, "--scope", "d1:channels:publish:ch-42")
	if a := d.verifyHTTP(token, "domains/d1/channels/ch-42:publish"); a.Status != 403 {
		t.Errorf("after remove-scope: %+v", a)
	}
	var scopes struct {
		Scopes   []patTuple `json:"scopes"`
		Patterns []string   `json:"patterns"`
	}
	d.ctlJSON(admin, &scopes, "pats", "scopes", p.ID)
	wantTuples := []patTuple{{"d1", "clients", "create", "*"}, {"d1", "messages", "subscribe", "ch-42"}, {"d1", "dashboards", "view", "*"}}
	wantPatterns := []string{"domains/d1/clients:create", "domains/d1/channels/ch-42:subscribe", "domains/d1/dashboards/*:read"}
	if !reflect.DeepEqual(scopes.Scopes, wantTuples) || !reflect.DeepEqual(scopes.Patterns, wantPatterns) {
		t.Errorf("pats scopes = %+v, want %v and %q", scopes, wantTuples, wantPatterns)
	}
	out, code := d.ctl(admin, "pats", "scopes", p.ID)
	if code != 0 || !strings.Contains(out, "d1:dashboards:view:*") || !strings.Contains(out, "domains/d1/dashboards/*:read") {
		t.Errorf("pats scopes table: exit %d:\n%s", code, out)
	}

	// Bad input: a clear 4xx, and nothing changes.
	before := d.pat("GET", "/v1/pats/"+p.ID, "", 200, asAlice...)
	for _, bad := range []struct {
		method, path, body string
		want               int
		message            string
	}{
		{"PATCH", "/v1/pats/" + p.ID + "/scope/add", `{"scopes":[{"optional_domain_id":"d1","entity_type":"clients","operation":"read","entity_id":"*"},{"optional_domain_id":"d1","entity_type":"robots","operation":"read","entity_id":"*"}]}`, 400, "scopes[1]: PAT scope"},
		{"PATCH", "/v1/pats/" + p.ID + "/scope/remove", `{"scopes":[{"optional_domain_id":"d1","entity_type":"clients","operation":"explode","entity_id":"*"}]}`, 400, "operation not valid for clients"},
		{"PATCH", "/v1/pats/" + p.ID + "/scope/add", `{"scopes":"all"}`, 400, "invalid JSON"},
		{"POST", "/v1/pats/" + p.ID + "/reset", `{"duration":"2001h"}`, 400, "longer than the maximum of 2000h0m0s"},
		{"POST", "/v1/pats", `{"name":"long","duration":"2001h"}`, 400, "longer than the maximum"},
		{"POST", "/v1/pats", `{"description":"no name"}`, 400, "name is required"},
		{"POST", "/v1/pats", `{"name":"x","subject":"bob"}`, 403, "own subject"},
		{"GET", "/v1/pats?subject=bob", "", 403, "own subject"},
		{"PUT", "/v1/pats/" + p.ID, "", 405, "not allowed"},
	} {
		a := d.pat(bad.method, bad.path, bad.body, bad.want, asAlice...)
		if !strings.Contains(a.Message, bad.message) {
			t.Errorf("%s %s: %q, want it to name %q", bad.method, bad.path, a.Message, bad.message)
		}
	}
	if _, code := d.ctl(admin, "pats", "add-scope", p.ID, "--scope", "d1:clients:fly:*"); code != 2 {
		t.Errorf("verifyctl add-scope of a bad scope: exit %d, want 2", code)
	}
	after := d.pat("GET", "/v1/pats/"+p.ID, "", 200, asAlice...)
	if after.Version != before.Version || !reflect.DeepEqual(after.Scopes, before.Scopes) || !reflect.DeepEqual(after.Patterns, before.Patterns) {
		t.Errorf("bad input changed the PAT: %+v, was %+v", after, before)
	}
	if l := d.pat("GET", "/v1/pats", "", 200, "X-Admin-Key", admin).PATs; len(l) != 2 {
		t.Errorf("%d PATs after the bad input, want 2", len(l))
	}

	// Reset with verifyctl: the new token alone on stdout, the old refused.
	out, code = d.ctl(admin, "pats", "reset", p.ID, "--duration", "100h")
	newToken := strings.TrimSpace(out)
	if code != 0 || !strings.HasPrefix(newToken, "pat_"+p.ID+"_") || newToken == token {
		t.Fatalf("pats reset: exit %d: %q", code, out)
	}
	if a := d.verifyHTTP(token, ""); a.Status != 401 {
		t.Errorf("old token after reset: %+v", a)
	}
	if a := d.verifyHTTP(newToken, "domains/d1/clients:create"); a.Status != 200 {
		t.Errorf("new token: %+v", a)
	}

	// A browser page of the allowed origin may call the PAT API.
	code2, h := d.request("OPTIONS", "/v1/pats", "", nil, "Origin", patCorsOrigin, "Access-Control-Request-Method", "PATCH")
	if code2 != 204 || h.Get("Access-Control-Allow-Origin") != patCorsOrigin {
		t.Errorf("preflight: %d %v", code2, h)
	}
	code2, h = d.request("OPTIONS", "/v1/pats", "", nil, "Origin", "https://elsewhere.example", "Access-Control-Request-Method", "PATCH")
	if code2 != 403 || h.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("preflight from another origin: %d %v", code2, h)
	}

	// The tuples, in their order, and the reset token survive a restart.
	if st := d.terminate(); st != 0 {
		t.Fatalf("exit %d:\n%s", st, d.output())
	}
	d = startPATDaemon(t, dataDir, secret)
	d.ctlJSON(admin, &scopes, "pats", "scopes", p.ID)
	if !reflect.DeepEqual(scopes.Scopes, wantTuples) {
		t.Errorf("after restart: %+v", scopes.Scopes)
	}
	if a := d.verifyHTTP(newToken, "domains/d1/dashboards/db-9:read"); a.Status != 200 {
		t.Errorf("reset token after restart: %+v", a)
	}
	if a := d.verifyHTTP(token, ""); a.Status != 401 {
		t.Errorf("old token after restart: %+v", a)
	}

	// Revoke with verifyctl.
	d.ctlJSON(admin, &got, "pats", "revoke", p.ID)
	if got.Status != "revoked" {
		t.Errorf("pats revoke: %+v", got)
	}
	if a := d.verifyHTTP(newToken, ""); a.Status != 401 || a.Reason != "revoked" {
		t.Errorf("revoked PAT: %+v", a)
	}
}

// TestPATAndCORSConfigInvalid: a bad origin or PAT maximum stops verifyd
// at start with exit status 2, naming the problem.
func TestPATAndCORSConfigInvalid(t *testing.T) {
	for body, want := range map[string]string{
		"http:\n  cors:\n    allowed_origins: [\"*\"]\n":                  `http.cors.allowed_origins[0]: "*" is not allowed`,
		"http:\n  cors:\n    allowed_origins: [\"https://a.example/\"]\n": "no path",
		"pats:\n  max_duration: -1h\n":                                    "pats.max_duration must be a positive duration",
		"http:\n  cors:\n    allowed_origin: [\"https://a.example\"]\n":   "allowed_origin",
	} {
		cfg := filepath.Join(t.TempDir(), "verifyd.yaml")
		if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		code, out := runOnce(t, []string{"VERIFYD_CONFIG=" + cfg}, "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0")
		if code != exitConfig || !strings.Contains(out, want) {
			t.Errorf("%q: exit %d, want %d naming %q:\n%s", body, code, exitConfig, want, out)
		}
	}
}

// adminRouteRow matches a row of the README's HTTP API table that
// documents an admin endpoint.
var adminRouteRow = regexp.MustCompile("^\\| `([A-Z]+) (/v1/admin/[^` ]*)`")

// readmeAdminRoutes returns the admin endpoints README.md documents, with
// each {parameter} replaced by id.
func readmeAdminRoutes(t *testing.T, id string) [][2]string {
	t.Helper()
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var routes [][2]string
	param := regexp.MustCompile(`\{[^}]*\}`)
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := adminRouteRow.FindStringSubmatch(sc.Text()); m != nil {
			routes = append(routes, [2]string{m[1], param.ReplaceAllString(m[2], id)})
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return routes
}

// TestAdminRoutesNeedTheAdminKey walks every admin endpoint README.md
// documents, through the daemon, without the admin key and with wrong
// ones, in the embedded default configuration (a generated admin key) and
// with CORS, a policy file and the admin key from the environment: each
// answers 401. Nothing admin-level is open in any configuration.
func TestAdminRoutesNeedTheAdminKey(t *testing.T) {
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	writePolicy(t, policy, "mode: none\n")
	cfg := filepath.Join(t.TempDir(), "verifyd.yaml")
	if err := os.WriteFile(cfg, []byte(fmt.Sprintf("policy: %s\nhttp:\n  cors:\n    allowed_origins: [%s]\n", policy, patCorsOrigin)), 0o600); err != nil {
		t.Fatal(err)
	}
	daemons := map[string]func() *daemon{
		"default": func() *daemon { return startDaemon(t, t.TempDir()) },
		"cors, policy, env key": func() *daemon {
			return startDaemon(t, t.TempDir(), "VERIFYD_CONFIG="+cfg, "VERIFYD_ADMIN_KEY="+policyAdminKey)
		},
	}
	for name, start := range daemons {
		t.Run(name, func(t *testing.T) {
			d := start()
			key := keyAnswer{}
			d.request("POST", "/v1/admin/keys", `{"subject":"alice","scopes":["*"]}`, &key, "X-Admin-Key", adminKeyOf(d))
			if key.Secret == "" {
				t.Fatalf("no key created:\n%s", d.output())
			}
			routes := readmeAdminRoutes(t, key.ID)
			documented := map[string]bool{}
			for _, r := range routes {
				documented[r[0]+" "+strings.SplitN(r[1], "?", 2)[0]] = true
			}
			for _, must := range []string{"POST /v1/admin/keys", "GET /v1/admin/keys", "POST /v1/admin/keys/import", "DELETE /v1/admin/keys/" + key.ID,
				"POST /v1/admin/keys/" + key.ID + "/rotate", "POST /v1/admin/revocations", "GET /v1/admin/trust", "POST /v1/admin/policy/reload", "POST /v1/admin/policy/explain"} {
				if !documented[must] {
					t.Errorf("README.md does not document %s (the walk read %d routes)", must, len(routes))
				}
			}
			for _, r := range routes {
				for _, cred := range [][]string{nil, {"X-Admin-Key", "wrong-admin-key-0123456789"}, {"X-Admin-Key", key.Secret}, {"Authorization", "Bearer " + key.Secret}, {"Origin", patCorsOrigin}} {
					var a patJSON
					code, _ := d.request(r[0], r[1], `{"subject":"mallory"}`, &a, cred...)
					if code != 401 || a.Code != "UNAUTHORIZED" {
						t.Errorf("%s %s with %q: %d %+v", r[0], r[1], cred, code, a)
					}
				}
			}
			var keys struct {
				Keys []keyAnswer `json:"keys"`
			}
			d.request("GET", "/v1/admin/keys", "", &keys, "X-Admin-Key", adminKeyOf(d))
			if len(keys.Keys) != 1 || keys.Keys[0].Status != "active" {
				t.Errorf("keys after the walk: %+v", keys.Keys)
			}
			if a := d.verifyHTTP(key.Secret, ""); a.Status != 200 {
				t.Errorf("the key after the walk: %+v", a)
			}
		})
	}
}

// adminKeyOf returns the admin key of d: the fixed one, or the one it
// generated and printed.
func adminKeyOf(d *daemon) string {
	if strings.Contains(strings.Join(d.cmd.Env, "\n"), "VERIFYD_ADMIN_KEY="+policyAdminKey) {
		return policyAdminKey
	}
	return d.adminKey()
}
