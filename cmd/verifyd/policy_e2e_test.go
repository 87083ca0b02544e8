package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/datadriven"

	"github.com/verifyd/verifyd/rbac"
)

const policyAdminKey = "policy-e2e-admin-key-0001"

// startPolicyDaemon runs verifyd with the policy file file, checked for
// changes every interval ("-1s": never), and a fixed admin key.
func startPolicyDaemon(t *testing.T, file, interval string) *daemon {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "verifyd.yaml")
	body := fmt.Sprintf("policy: %s\npolicy_check_interval: %s\n", file, interval)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return startDaemon(t, t.TempDir(), "VERIFYD_CONFIG="+cfg, "VERIFYD_ADMIN_KEY="+policyAdminKey)
}

// writePolicy writes a policy file the way editors and deploy tools do:
// a new file renamed over the old one.
func writePolicy(t *testing.T, file, body string) {
	t.Helper()
	tmp := file + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, file); err != nil {
		t.Fatal(err)
	}
}

// adminHTTP calls the admin API with the admin key and decodes the JSON
// answer into out (when not nil).
func (d *daemon) adminHTTP(method, path, body string, out any) int {
	d.t.Helper()
	req, err := http.NewRequest(method, "http://"+d.addr+path, strings.NewReader(body))
	if err != nil {
		d.t.Fatal(err)
	}
	req.Header.Set("X-Admin-Key", policyAdminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			d.t.Fatalf("%s %s: %q: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

// createKey creates a key from spec (the admin API's JSON body).
func (d *daemon) createKey(spec map[string]any) keyAnswer {
	d.t.Helper()
	b, _ := json.Marshal(spec)
	var k keyAnswer
	if code := d.adminHTTP("POST", "/v1/admin/keys", string(b), &k); code != 201 || k.Secret == "" {
		d.t.Fatalf("create %s: %d %+v", b, code, k)
	}
	return k
}

// policyVerifyAnswer is a verify answer with the policy's fields.
type policyVerifyAnswer struct {
	Status  int    `json:"-"`
	Allow   bool   `json:"allow"`
	State   string `json:"status"`
	Reason  string `json:"reason"`
	Grant   string `json:"grant"`
	Matched *struct {
		Role    string `json:"role"`
		Project string `json:"project"`
		Pattern string `json:"pattern"`
	} `json:"matched"`
}

// decision rebuilds the rbac.Decision the answer reports.
func (a policyVerifyAnswer) decision() (rbac.Decision, error) {
	r, ok := rbacReason(a.Reason)
	if !ok {
		return rbac.Decision{}, fmt.Errorf("answer %d %+v has no policy reason", a.Status, a)
	}
	d := rbac.Decision{Allowed: a.Allow, Reason: r}
	if a.Matched != nil {
		d.Role, d.Project, d.Pattern = a.Matched.Role, a.Matched.Project, a.Matched.Pattern
	}
	return d, nil
}

func rbacReason(name string) (rbac.Reason, bool) {
	for r := rbac.Reason(0); r < 64; r++ {
		if r.String() == name {
			return r, true
		}
	}
	return 0, false
}

var verifyClient = &http.Client{Timeout: 10 * time.Second}

// verifyPolicy calls POST /v1/verify; an error means no answer came.
func (d *daemon) verifyPolicy(token, scope string) (policyVerifyAnswer, error) {
	body, _ := json.Marshal(map[string]string{"token": token, "scope": scope})
	resp, err := verifyClient.Post("http://"+d.addr+"/v1/verify", "application/json", bytes.NewReader(body))
	if err != nil {
		return policyVerifyAnswer{}, err
	}
	defer resp.Body.Close()
	var a policyVerifyAnswer
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		return a, fmt.Errorf("verify answer: %w", err)
	}
	a.Status = resp.StatusCode
	return a, nil
}

// metric returns the value of one series of /metrics, or "" if absent.
func (d *daemon) metric(series string) string {
	d.t.Helper()
	resp, err := http.Get("http://" + d.addr + "/metrics")
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, series+" "); ok {
			return v
		}
	}
	return ""
}

// platformSecret is the HS256 secret of the trusted proxy that issues the
// JWT principals of the acceptance vectors.
var platformSecret = []byte("policy-e2e-proxy-secret-32-bytes")

// startPlatformDaemon runs verifyd with the policy file file and one trust
// source: an HS256 proxy whose tokens carry roles, realm and scope in the
// default claims.
func startPlatformDaemon(t *testing.T, file string) *daemon {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "verifyd.yaml")
	body := fmt.Sprintf(`policy: %s
policy_check_interval: -1s
trust:
  sources:
    - name: proxy
      hs256:
        - kid: proxy-1
          secret_env: PROXY_SECRET
      issuer: https://proxy.example
      audience: [verifyd]
`, file)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return startDaemon(t, t.TempDir(), "VERIFYD_CONFIG="+cfg, "VERIFYD_ADMIN_KEY="+policyAdminKey,
		"PROXY_SECRET="+b64url.EncodeToString(platformSecret))
}

// vectorPrincipal is a principal of the acceptance vectors as the daemon
// meets it: a stored key (key set) or a JWT from the trusted proxy (token
// set).
type vectorPrincipal struct {
	subject, realm string
	roles, scopes  []string
	key            keyAnswer
	token          string
}

// credential is what the principal presents to POST /v1/verify.
func (p *vectorPrincipal) credential() string {
	if p.token != "" {
		return p.token
	}
	return p.key.Secret
}

// TestPolicyPlatformsEndToEnd replays every acceptance vector of
// rbac/testdata/policy through the daemon. Each policy is written to the
// policy file and reloaded with the admin API. A principal of kind jwt
// becomes a token of the trusted proxy carrying its subject, realm, roles
// and scopes; any other becomes a stored key (a SuperMQ PAT's tuples mapped
// onto its scopes). Each decision is a POST /v1/verify whose status,
// reason and matched grant must give the vector's decision; a decision
// for "anonymous" comes from GET /v1/admin/policy/explain, and each
// explanation from POST /v1/admin/policy/explain with the credential
// (and, for a stored key, from GET with its key_id too).
func TestPolicyPlatformsEndToEnd(t *testing.T) {
	for _, platform := range []string{"ams", "agentmsg", "supermq", "aviso", "solace-agent-mesh"} {
		t.Run(platform, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "policy.yaml")
			writePolicy(t, file, "mode: deny_all\n")
			d := startPlatformDaemon(t, file)
			principals := map[string]*vectorPrincipal{}
			valid := "mode: deny_all\n"
			datadriven.RunTest(t, filepath.Join("..", "..", "rbac", "testdata", "policy", platform), func(t *testing.T, td *datadriven.TestData) string {
				switch td.Cmd {
				case "policy":
					out, ok := d.reloadPolicy(t, file, td.Input)
					if ok {
						valid = td.Input
					}
					return out
				case "default-policy":
					// The policy in force with none configured is deny_all.
					if p, err := rbac.ParsePolicy([]byte("mode: deny_all\n")); err != nil || !p.Equal(rbac.DefaultPolicy()) {
						td.Fatalf(t, "mode: deny_all is not the default policy (%v)", err)
					}
					out, ok := d.reloadPolicy(t, file, "mode: deny_all\n")
					if ok {
						valid = "mode: deny_all\n"
					}
					return out
				case "principal":
					var name string
					td.ScanArgs(t, "name", &name)
					principals[name] = d.vectorPrincipal(t, td)
					return "ok\n"
				case "decide":
					var name string
					td.ScanArgs(t, "principal", &name)
					var out strings.Builder
					for _, scope := range strings.Split(strings.TrimSpace(td.Input), "\n") {
						var dec rbac.Decision
						if name == "anonymous" {
							dec = d.explainPolicy(t, "scope="+url.QueryEscape(scope)).decision(t)
						} else {
							dec = d.decideOverHTTP(t, lookupVectorPrincipal(t, td, principals), scope)
						}
						fmt.Fprintf(&out, "%s: %s\n", scope, dec)
					}
					return out.String()
				case "explain":
					p := lookupVectorPrincipal(t, td, principals)
					scope := strings.TrimSpace(td.Input)
					var e explainAnswer
					if code := d.adminHTTP("POST", "/v1/admin/policy/explain", explainBody(p.credential(), scope), &e); code != 200 {
						td.Fatalf(t, "explain answered %d", code)
					}
					if p.token == "" {
						// A stored key is explained from its id as well.
						if byID := d.explainPolicy(t, "key_id="+p.key.ID+"&scope="+url.QueryEscape(scope)); byID.Text != e.Text {
							t.Errorf("explained by key id:\n%s\nby token:\n%s", byID.Text, e.Text)
						}
					}
					return e.Text + "\n"
				case "pat-scope":
					// The mapping of PAT tuples is a function of rbac, not
					// of the daemon: it is what vectorPrincipal uses to
					// store a PAT's scopes, and is checked the same way.
					var out strings.Builder
					for _, l := range strings.Split(strings.TrimSpace(td.Input), "\n") {
						f := strings.Fields(l)
						if len(f) != 4 {
							td.Fatalf(t, "pat-scope wants 4 fields: %q", l)
						}
						if p, err := rbac.PATScope(f[0], f[1], f[2], f[3]); err != nil {
							fmt.Fprintf(&out, "%s: %v\n", l, err)
						} else {
							fmt.Fprintf(&out, "%s: %s\n", l, p)
						}
					}
					return out.String()
				default:
					td.Fatalf(t, "command %q cannot run through the daemon", td.Cmd)
				}
				return ""
			})
			// A refused file left the last valid policy serving.
			var st struct {
				Mode      string `json:"mode"`
				LastError string `json:"last_error"`
			}
			d.adminHTTP("GET", "/v1/admin/policy", "", &st)
			want, err := rbac.ParsePolicy([]byte(valid))
			if err != nil || st.Mode != want.Mode().String() {
				t.Errorf("policy in force: %+v, want the last valid one (%v)", st, err)
			}
		})
	}
}

// reloadPolicy writes body to the policy file and reloads it through the
// admin API. It returns "ok" or the text of the rbac.PolicyError rebuilt
// from the problems of the refusal, and whether the policy was taken.
func (d *daemon) reloadPolicy(t *testing.T, file, body string) (string, bool) {
	writePolicy(t, file, body)
	var st struct {
		Problems []struct {
			Text string `json:"text"`
		} `json:"problems"`
	}
	switch code := d.adminHTTP("POST", "/v1/admin/policy/reload", "", &st); code {
	case 200:
		return "ok\n", true
	case 400:
		if len(st.Problems) == 1 {
			return "rbac: invalid policy: " + st.Problems[0].Text + "\n", false
		}
		var b strings.Builder
		fmt.Fprintf(&b, "rbac: invalid policy: %d problems", len(st.Problems))
		for _, p := range st.Problems {
			b.WriteString("\n\t" + p.Text)
		}
		return b.String() + "\n", false
	default:
		t.Fatalf("reload answered %d", code)
		return "", false
	}
}

// vectorPrincipal makes the principal of the vector td known to the
// daemon, from "key: value" lines: subject, kind, realm, roles, scopes,
// "project P: roles" and "pat: domain type operation id".
func (d *daemon) vectorPrincipal(t *testing.T, td *datadriven.TestData) *vectorPrincipal {
	p := &vectorPrincipal{}
	kind := ""
	projects := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(td.Input), "\n") {
		key, val, _ := strings.Cut(l, ":")
		val = strings.TrimSpace(val)
		switch {
		case key == "subject":
			p.subject = val
		case key == "kind":
			kind = val
		case key == "realm":
			p.realm = val
		case key == "roles":
			p.roles = append(p.roles, strings.Fields(val)...)
		case key == "scopes":
			p.scopes = append(p.scopes, strings.Fields(val)...)
		case key == "pat":
			f := strings.Fields(val)
			if len(f) != 4 {
				td.Fatalf(t, "pat wants 4 fields: %q", l)
			}
			s, err := rbac.PATScope(f[0], f[1], f[2], f[3])
			if err != nil {
				td.Fatalf(t, "%v", err)
			}
			p.scopes = append(p.scopes, s)
		case strings.HasPrefix(key, "project "):
			name := strings.TrimPrefix(key, "project ")
			projects[name] = append(projects[name], strings.Fields(val)...)
		default:
			td.Fatalf(t, "principal line %q has no meaning to the daemon", l)
		}
	}
	if kind == "jwt" {
		if len(projects) > 0 {
			td.Fatalf(t, "a JWT principal carries no project roles")
		}
		claims := jwtClaims(p.subject, time.Hour)
		claims["iss"] = "https://proxy.example"
		delete(claims, "roles")
		delete(claims, "scope")
		if len(p.roles) > 0 {
			claims["roles"] = p.roles
		}
		if len(p.scopes) > 0 {
			claims["scope"] = strings.Join(p.scopes, " ")
		}
		if p.realm != "" {
			claims["realm"] = p.realm
		}
		p.token = hs256(t, platformSecret, "proxy-1", claims)
		return p
	}
	if p.realm != "" {
		td.Fatalf(t, "a stored key has no realm")
	}
	spec := map[string]any{"subject": p.subject, "roles": p.roles, "scopes": p.scopes}
	// Imported keys take part in decisions like API keys.
	if kind != "" && kind != "imported" {
		spec["kind"] = kind
	}
	if len(projects) > 0 {
		spec["project_roles"] = projects
	}
	p.key = d.createKey(spec)
	return p
}

func lookupVectorPrincipal(t *testing.T, td *datadriven.TestData, principals map[string]*vectorPrincipal) *vectorPrincipal {
	var name string
	td.ScanArgs(t, "principal", &name)
	p, ok := principals[name]
	if !ok {
		td.Fatalf(t, "unknown principal %q", name)
	}
	return p
}

// decideOverHTTP asks POST /v1/verify for p and scope and rebuilds the
// decision from the answer, which must be consistent with itself.
func (d *daemon) decideOverHTTP(t *testing.T, p *vectorPrincipal, scope string) rbac.Decision {
	a, err := d.verifyPolicy(p.credential(), scope)
	if err != nil {
		t.Fatalf("%s: %v", scope, err)
	}
	dec, err := a.decision()
	if err != nil {
		t.Fatalf("%s: %v", scope, err)
	}
	if want := map[bool]int{true: 200, false: 403}[dec.Allowed]; a.Status != want || a.Grant != dec.Pattern {
		t.Errorf("%s: status %d grant %q for %v", scope, a.Status, a.Grant, dec)
	}
	return dec
}

// explainAnswer is the answer of GET /v1/admin/policy/explain.
type explainAnswer struct {
	Decision struct {
		Allowed bool   `json:"allowed"`
		Reason  string `json:"reason"`
		Role    string `json:"role"`
		Project string `json:"project"`
		Pattern string `json:"pattern"`
		Text    string `json:"text"`
	} `json:"decision"`
	Text string `json:"text"`
}

// decision rebuilds the rbac.Decision of the explanation.
func (e explainAnswer) decision(t *testing.T) rbac.Decision {
	r, ok := rbacReason(e.Decision.Reason)
	if !ok {
		t.Fatalf("explanation %+v has no policy reason", e)
	}
	dec := rbac.Decision{Allowed: e.Decision.Allowed, Reason: r, Role: e.Decision.Role, Project: e.Decision.Project, Pattern: e.Decision.Pattern}
	if dec.String() != e.Decision.Text {
		t.Errorf("explanation %+v: its text is not that of its decision %v", e, dec)
	}
	return dec
}

// explainBody is the body of POST /v1/admin/policy/explain.
func explainBody(token, scope string) string {
	b, _ := json.Marshal(map[string]string{"token": token, "scope": scope})
	return string(b)
}

// explainPolicy calls GET /v1/admin/policy/explain with the query q.
func (d *daemon) explainPolicy(t *testing.T, q string) explainAnswer {
	var e explainAnswer
	if code := d.adminHTTP("GET", "/v1/admin/policy/explain?"+q, "", &e); code != 200 {
		t.Fatalf("explain %s answered %d", q, code)
	}
	return e
}

// agentPolicy gives agents their own mailbox; readOnlyPolicy only its
// read action.
const (
	agentPolicy    = "mode: rbac\nroles:\n  agent: {scopes: [\"mailbox:${sub}:*\"]}\n"
	readOnlyPolicy = "mode: rbac\nroles:\n  agent: {scopes: [\"mailbox:${sub}:read\"]}\n"
)

// waitFor polls cond until it holds, for at most 15s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 15s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestPolicyReloads: an invalid file is refused (through the API and when
// the file changes) and the old policy keeps serving; a changed file is
// picked up within the check interval; SIGHUP reloads.
func TestPolicyReloads(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.yaml")
	writePolicy(t, file, agentPolicy)
	d := startPolicyDaemon(t, file, "200ms")
	agent := d.createKey(map[string]any{"subject": "agent-7", "kind": "agent", "roles": []string{"agent"}})
	send := func() policyVerifyAnswer {
		a, err := d.verifyPolicy(agent.Secret, "mailbox:agent-7:send")
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	if a := send(); a.Status != 200 || a.Reason != "granted" || a.Matched == nil || a.Matched.Role != "agent" || a.Matched.Pattern != "mailbox:agent-7:*" {
		t.Fatalf("under the agent policy: %+v", a)
	}
	if a, _ := d.verifyPolicy(agent.Secret, "mailbox:agent-8:send"); a.Status != 403 || a.Reason != "no_grant" || a.Matched != nil {
		t.Fatalf("another agent's mailbox: %+v", a)
	}

	// An invalid file, written while the daemon watches it.
	writePolicy(t, file, "mode: rbac\nroles:\n  agent: {scopes: [\"mailbox:${subject}:*\"], inherits: [ghost]}\n")
	waitFor(t, "the invalid file is noticed", func() bool { return d.metric(`verifyd_policy_reloads_total{result="invalid"}`) == "1" })
	var refused struct {
		Code     string `json:"code"`
		Message  string `json:"message"`
		Problems []struct {
			Line, Column int
			Path, Text   string
		} `json:"problems"`
	}
	if code := d.adminHTTP("POST", "/v1/admin/policy/reload", "", &refused); code != 400 || len(refused.Problems) != 2 || refused.Code != "BAD_REQUEST" {
		t.Fatalf("reload of an invalid file: %d %+v", code, refused)
	}
	for _, p := range refused.Problems {
		if p.Line != 3 || p.Column == 0 || !strings.HasPrefix(p.Path, "roles.agent.") {
			t.Errorf("problem %+v lacks its place", p)
		}
	}
	if a := send(); a.Status != 200 {
		t.Fatalf("the old policy stopped serving after an invalid reload: %+v", a)
	}
	var st struct {
		Mode      string `json:"mode"`
		File      string `json:"file"`
		LoadedAt  string `json:"loaded_at"`
		LastError string `json:"last_error"`
		Summary   struct{ Roles int }
	}
	if code := d.adminHTTP("GET", "/v1/admin/policy", "", &st); code != 200 || st.Mode != "rbac" || st.File != file || st.LastError == "" || st.LoadedAt == "" || st.Summary.Roles != 1 {
		t.Fatalf("status after the refusals: %d %+v", code, st)
	}
	if !strings.Contains(d.output(), "policy problem") {
		t.Errorf("the refused reload was not logged:\n%s", d.output())
	}

	// A valid change of the file is picked up by the watcher.
	writePolicy(t, file, readOnlyPolicy)
	waitFor(t, "the changed file is loaded", func() bool { return send().Status == 403 })
	if a, _ := d.verifyPolicy(agent.Secret, "mailbox:agent-7:read"); a.Status != 200 || a.Matched == nil || a.Matched.Pattern != "mailbox:agent-7:read" {
		t.Fatalf("under the read-only policy: %+v", a)
	}
	if v := d.metric(`verifyd_policy_reloads_total{result="changed"}`); v != "1" {
		t.Errorf("changed reloads = %q, want 1", v)
	}
	st.LastError = ""
	d.adminHTTP("GET", "/v1/admin/policy", "", &st)
	if st.LastError != "" {
		t.Errorf("last_error %q after a good reload", st.LastError)
	}

	// The same policy, reformatted: a reload keeps the policy in force.
	writePolicy(t, file, "# the same\n"+readOnlyPolicy)
	waitFor(t, "the reformatted file is read", func() bool { return d.metric(`verifyd_policy_reloads_total{result="unchanged"}`) == "1" })

	if code := d.terminate(); code != 0 {
		t.Errorf("exit %d", code)
	}
}

// TestPolicySIGHUP: without file checks, a changed file waits for SIGHUP.
func TestPolicySIGHUP(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.yaml")
	writePolicy(t, file, agentPolicy)
	d := startPolicyDaemon(t, file, "-1s")
	agent := d.createKey(map[string]any{"subject": "agent-7", "kind": "agent", "roles": []string{"agent"}})
	status := func() int {
		a, err := d.verifyPolicy(agent.Secret, "mailbox:agent-7:send")
		if err != nil {
			t.Fatal(err)
		}
		return a.Status
	}
	if s := status(); s != 200 {
		t.Fatalf("before: %d", s)
	}
	writePolicy(t, file, readOnlyPolicy)
	time.Sleep(500 * time.Millisecond)
	if s := status(); s != 200 {
		t.Fatalf("the file was reloaded without SIGHUP: %d", s)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "SIGHUP reloads", func() bool { return status() == 403 })
	if !strings.Contains(d.output(), "trigger=sighup") {
		t.Errorf("the reload was not logged with its trigger:\n%s", d.output())
	}
	// verifyctl sees the reloaded policy.
	if out, code := d.ctl(policyAdminKey, "policy", "show"); code != 0 || !strings.Contains(out, "rbac") || !strings.Contains(out, file) {
		t.Errorf("policy show: exit %d:\n%s", code, out)
	}
	if out, code := d.ctl(policyAdminKey, "policy", "explain", "--key", agent.ID, "--scope", "mailbox:agent-7:send"); code != 1 || !strings.Contains(out, "deny (no_grant)") || !strings.Contains(out, "mailbox:${sub}:read -> mailbox:agent-7:read: no match") {
		t.Errorf("policy explain: exit %d:\n%s", code, out)
	}
	if out, code := d.ctl(policyAdminKey, "policy", "reload"); code != 0 || !strings.Contains(out, "unchanged") {
		t.Errorf("policy reload: exit %d:\n%s", code, out)
	}
	if code := d.terminate(); code != 0 {
		t.Errorf("exit %d after SIGHUP and SIGTERM", code)
	}
}

// TestPolicyInvalidAtStart: verifyd refuses to start with an invalid
// policy file, listing every problem.
func TestPolicyInvalidAtStart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.yaml")
	writePolicy(t, file, "mode: rbac\nroles:\n  a: {inherits: [b]}\n  c: {scopes: [\"x::y\"]}\nstream_auth: false\nstreams:\n  s: {auth: {required: true}}\n")
	code, out := runOnce(t, []string{"VERIFYD_POLICY=" + file}, "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0")
	if code != exitConfig {
		t.Fatalf("exit %d, want %d:\n%s", code, exitConfig, out)
	}
	for _, want := range []string{`3:18: roles.a.inherits[0]`, `4:16: roles.c.scopes[0]`, "streams.s", "stream_auth is false", "3 problems"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	code, out = runOnce(t, []string{"VERIFYD_POLICY=" + filepath.Join(t.TempDir(), "absent.yaml")}, "--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0")
	if code != exitConfig || !strings.Contains(out, "absent.yaml") {
		t.Fatalf("missing file: exit %d:\n%s", code, out)
	}
}

// TestPolicyModeNone: mode none is announced loudly at start and on
// /readyz, and allows every scope to every valid credential.
func TestPolicyModeNone(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.yaml")
	writePolicy(t, file, "mode: none\n")
	d := startPolicyDaemon(t, file, "2s")
	if !strings.Contains(d.output(), "mode none") || !strings.Contains(d.output(), "level=WARN") {
		t.Errorf("no warning at start:\n%s", d.output())
	}
	resp, err := http.Get("http://" + d.addr + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), "mode none") {
		t.Errorf("readyz: %d %q", resp.StatusCode, b)
	}
	k := d.createKey(map[string]any{"subject": "dev"})
	if a, err := d.verifyPolicy(k.Secret, "anything:at:all"); err != nil || a.Status != 200 || a.Reason != "unrestricted" {
		t.Errorf("mode none: %+v %v", a, err)
	}
	if v := d.metric(`verifyd_policy_info{mode="none"}`); v != "1" {
		t.Errorf("policy info = %q", v)
	}
}

// TestPolicyReloadUnderLoad: verifications from several goroutines, over
// HTTP, while the policy is reloaded again and again: none fails or
// blocks, and each answer is the decision of one of the two policies.
func TestPolicyReloadUnderLoad(t *testing.T) {
	file := filepath.Join(t.TempDir(), "policy.yaml")
	writePolicy(t, file, agentPolicy)
	d := startPolicyDaemon(t, file, "-1s")
	var agents []keyAnswer
	for i := range 4 {
		agents = append(agents, d.createKey(map[string]any{"subject": fmt.Sprintf("agent-%d", i), "kind": "agent", "roles": []string{"agent"}}))
	}
	const (
		workers    = 4
		perWorker  = 150
		minReloads = 20
		sendScope  = "send" // agentPolicy allows it, readOnlyPolicy does not
		readScope  = "read" // both allow it
		otherScope = "peek" // as send
	)
	var wg sync.WaitGroup
	errs := make(chan error, workers*perWorker)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				n := (w + i) % len(agents)
				action := []string{sendScope, readScope, otherScope}[i%3]
				scope := fmt.Sprintf("mailbox:agent-%d:%s", n, action)
				a, err := d.verifyPolicy(agents[n].Secret, scope)
				switch {
				case err != nil:
					errs <- fmt.Errorf("%s: %w", scope, err)
				case a.Status == 200 && a.Reason == "granted" && a.Matched != nil && a.Matched.Pattern == fmt.Sprintf("mailbox:agent-%d:*", n):
					// agentPolicy
				case a.Status == 200 && action == readScope && a.Matched != nil && a.Matched.Pattern == scope:
					// readOnlyPolicy
				case a.Status == 403 && action != readScope && a.Reason == "no_grant":
					// readOnlyPolicy
				default:
					errs <- fmt.Errorf("%s: %d %+v is the answer of neither policy", scope, a.Status, a)
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	// Reload for as long as the workers verify (at least minReloads
	// times, at most a bounded number).
	reloads := 0
	for finished := false; reloads < minReloads || !finished; reloads++ {
		select {
		case <-done:
			finished = true
		default:
		}
		if reloads == 2000 {
			t.Fatal("verifications blocked while the policy was reloaded")
		}
		body := agentPolicy
		if reloads%2 == 0 {
			body = readOnlyPolicy
		}
		writePolicy(t, file, body)
		var st struct {
			Changed *bool `json:"changed"`
		}
		if code := d.adminHTTP("POST", "/v1/admin/policy/reload", "", &st); code != 200 || st.Changed == nil || !*st.Changed {
			t.Fatalf("reload %d: %d %+v", reloads, code, st)
		}
	}
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("verifications blocked while the policy was reloaded")
	}
	close(errs)
	n := 0
	for err := range errs {
		if n++; n <= 10 {
			t.Error(err)
		}
	}
	if n > 0 {
		t.Fatalf("%d of %d verifications failed", n, workers*perWorker)
	}
	if v := d.metric(`verifyd_policy_reloads_total{result="changed"}`); v != fmt.Sprint(reloads) {
		t.Errorf("changed reloads = %q, want %d", v, reloads)
	}
}
