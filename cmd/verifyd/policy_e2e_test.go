package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
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

// TestPolicyPlatformsEndToEnd replays the AMS and AgentMsg acceptance
// vectors of rbac/testdata/policy through the daemon: each policy is
// written to the policy file and reloaded with the admin API, each
// principal becomes a stored key, each decision is a POST /v1/verify whose
// status, reason and matched grant must give the vector's decision, and
// each explanation comes from GET /v1/admin/policy/explain?key_id=.
func TestPolicyPlatformsEndToEnd(t *testing.T) {
	for _, platform := range []string{"ams", "agentmsg"} {
		t.Run(platform, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "policy.yaml")
			writePolicy(t, file, "mode: deny_all\n")
			d := startPolicyDaemon(t, file, "-1s")
			keys := map[string]keyAnswer{}
			valid := ""
			datadriven.RunTest(t, filepath.Join("..", "..", "rbac", "testdata", "policy", platform), func(t *testing.T, td *datadriven.TestData) string {
				switch td.Cmd {
				case "policy":
					writePolicy(t, file, td.Input)
					var st struct {
						Mode     string `json:"mode"`
						Problems []struct {
							Text string `json:"text"`
						} `json:"problems"`
					}
					switch code := d.adminHTTP("POST", "/v1/admin/policy/reload", "", &st); code {
					case 200:
						valid = td.Input
						return "ok\n"
					case 400:
						// The text of rbac.PolicyError, from the problems.
						if len(st.Problems) == 1 {
							return "rbac: invalid policy: " + st.Problems[0].Text + "\n"
						}
						var b strings.Builder
						fmt.Fprintf(&b, "rbac: invalid policy: %d problems", len(st.Problems))
						for _, p := range st.Problems {
							b.WriteString("\n\t" + p.Text)
						}
						return b.String() + "\n"
					default:
						td.Fatalf(t, "reload answered %d", code)
					}
				case "principal":
					var name string
					td.ScanArgs(t, "name", &name)
					keys[name] = d.createKey(keySpecOf(t, td))
					return "ok\n"
				case "decide":
					k := principalKey(t, td, keys)
					var out strings.Builder
					for _, scope := range strings.Split(strings.TrimSpace(td.Input), "\n") {
						a, err := d.verifyPolicy(k.Secret, scope)
						if err != nil {
							td.Fatalf(t, "%s: %v", scope, err)
						}
						dec, err := a.decision()
						if err != nil {
							td.Fatalf(t, "%s: %v", scope, err)
						}
						if want := map[bool]int{true: 200, false: 403}[dec.Allowed]; a.Status != want || a.Grant != dec.Pattern {
							t.Errorf("%s: status %d grant %q for %v", scope, a.Status, a.Grant, dec)
						}
						fmt.Fprintf(&out, "%s: %s\n", scope, dec)
					}
					return out.String()
				case "explain":
					k := principalKey(t, td, keys)
					var e struct {
						Text string `json:"text"`
					}
					q := "key_id=" + k.ID + "&scope=" + strings.TrimSpace(td.Input)
					if code := d.adminHTTP("GET", "/v1/admin/policy/explain?"+q, "", &e); code != 200 {
						td.Fatalf(t, "explain answered %d", code)
					}
					return e.Text + "\n"
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

// keySpecOf turns a principal of the vectors into the body of a key
// creation: subject, roles, "project P: roles" and scopes. The kind does
// not take part in decisions: imported keys are created as API keys.
func keySpecOf(t *testing.T, td *datadriven.TestData) map[string]any {
	spec := map[string]any{}
	var roles, scopes []string
	projects := map[string][]string{}
	for _, l := range strings.Split(strings.TrimSpace(td.Input), "\n") {
		key, val, _ := strings.Cut(l, ":")
		val = strings.TrimSpace(val)
		switch {
		case key == "subject":
			spec["subject"] = val
		case key == "kind":
			if val != "imported" {
				spec["kind"] = val
			}
		case key == "roles":
			roles = append(roles, strings.Fields(val)...)
		case key == "scopes":
			scopes = append(scopes, strings.Fields(val)...)
		case strings.HasPrefix(key, "project "):
			p := strings.TrimPrefix(key, "project ")
			projects[p] = append(projects[p], strings.Fields(val)...)
		default:
			td.Fatalf(t, "principal line %q cannot be a stored key", l)
		}
	}
	spec["roles"], spec["scopes"] = roles, scopes
	if len(projects) > 0 {
		spec["project_roles"] = projects
	}
	return spec
}

func principalKey(t *testing.T, td *datadriven.TestData, keys map[string]keyAnswer) keyAnswer {
	var name string
	td.ScanArgs(t, "principal", &name)
	k, ok := keys[name]
	if !ok {
		td.Fatalf(t, "principal %q is not a stored key", name)
	}
	return k
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
