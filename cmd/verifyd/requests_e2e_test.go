package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify"
)

// ticket is the answer to POST /v1/auth/request.
type ticket struct {
	RequestToken string `json:"request_token"`
	RequestID    string `json:"request_id"`
	Status       string `json:"status"`
	Code         string `json:"code"`
	Message      string `json:"message"`
}

// askAccess sends an access request (no credential) and returns the status
// and answer.
func (d *daemon) askAccess(body string) (int, ticket) {
	d.t.Helper()
	resp, err := http.Post("http://"+d.addr+"/v1/auth/request", "application/json", strings.NewReader(body))
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	var tk ticket
	if err := json.NewDecoder(resp.Body).Decode(&tk); err != nil {
		d.t.Fatalf("access request answer: %v", err)
	}
	return resp.StatusCode, tk
}

// requestState returns the status of the request whose token is token, as
// the agent sees it, and the raw answer.
func (d *daemon) requestState(token string) (int, string) {
	d.t.Helper()
	resp, err := http.Get("http://" + d.addr + "/v1/auth/status/" + token)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var st struct {
		Status string `json:"status"`
	}
	json.Unmarshal(b, &st)
	return resp.StatusCode, st.Status + " " + string(b)
}

// rawAdmin calls the admin API with the admin key and returns the status
// and the body.
func (d *daemon) rawAdmin(method, path, body string) (int, string) {
	d.t.Helper()
	var raw json.RawMessage
	code := d.adminHTTP(method, path, body, &raw)
	return code, string(raw)
}

type auditEntries struct {
	Entries []struct {
		Seq     uint64 `json:"seq"`
		Actor   string `json:"actor"`
		Action  string `json:"action"`
		Target  string `json:"target"`
		Outcome string `json:"outcome"`
		Detail  string `json:"detail"`
	} `json:"entries"`
}

func (d *daemon) audit(query string) auditEntries {
	d.t.Helper()
	var a auditEntries
	if code := d.adminHTTP("GET", "/v1/admin/audit"+query, "", &a); code != 200 {
		d.t.Fatalf("audit%s: %d", query, code)
	}
	return a
}

// configFile writes a verifyd configuration and returns its path.
func configFile(t *testing.T, body string) string {
	t.Helper()
	cfg := filepath.Join(t.TempDir(), "verifyd.yaml")
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestAccessRequestsEndToEnd runs the access-request flow through the
// daemon: bad input of every kind gets a clear 4xx and changes nothing,
// a repeat answers the same token, an agent with a live key cannot ask,
// a request is decided once, and an acknowledged approval survives kill -9.
func TestAccessRequestsEndToEnd(t *testing.T) {
	dataDir := t.TempDir()
	d := startDaemon(t, dataDir, "VERIFYD_ADMIN_KEY="+policyAdminKey)

	body := `{"agent_id":"agent-7","name":"Agent 7","description":"needs its mailbox","callback_url":"https://agent7.example/cb"}`
	code, tk := d.askAccess(body)
	if code != 201 || len(tk.RequestToken) != 43 || tk.Status != "pending" {
		t.Fatalf("request: %d %+v", code, tk)
	}
	if code, again := d.askAccess(body); code != 200 || again.RequestToken != tk.RequestToken {
		t.Fatalf("repeat: %d %+v, want the same token", code, again)
	}
	_, state := d.rawAdmin("GET", "/v1/admin/requests?status=all", "")
	_, keys := d.rawAdmin("GET", "/v1/admin/keys", "")
	for _, bad := range []struct {
		method, path, admin, body string
		want                      int
	}{
		{"POST", "/v1/auth/request", "", `{"agent_id":"agent-7","name":"Agent 7"}`, 409}, // other details while pending
		{"POST", "/v1/auth/request", "", `{"agent_id":"x/y"}`, 400},
		{"POST", "/v1/auth/request", "", `{"agent_id":"x","callback_url":"file:///etc/passwd"}`, 400},
		{"POST", "/v1/auth/request", "", `{"agent_id":"x","token":"y"}`, 400},
		{"POST", "/v1/auth/request", "", `not json`, 400},
		{"POST", "/v1/auth/request", "", `{"agent_id":"x","description":"` + strings.Repeat("d", 2000) + `"}`, 400},
		{"GET", "/v1/auth/status/" + strings.Repeat("Z", 43), "", ``, 404},
		{"GET", "/v1/auth/status/" + tk.RequestID, "", ``, 404},
		{"POST", "/v1/admin/requests/" + strings.Repeat("Z", 22) + "/approve", policyAdminKey, ``, 404},
		{"POST", "/v1/admin/requests/" + tk.RequestID + "/approve", policyAdminKey, `{"scopes":["a::b"]}`, 400},
		{"POST", "/v1/admin/requests/" + tk.RequestID + "/approve", policyAdminKey, `{"expires_in":"soon"}`, 400},
		{"POST", "/v1/admin/requests/" + tk.RequestID + "/approve", "", ``, 401},
		{"POST", "/v1/admin/requests/" + tk.RequestID + "/deny", "wrong-admin-key-0000000", ``, 401},
		{"DELETE", "/v1/admin/agents/agent-7", policyAdminKey, ``, 404},
		{"GET", "/v1/admin/requests?status=maybe", policyAdminKey, ``, 400},
	} {
		req, _ := http.NewRequest(bad.method, "http://"+d.addr+bad.path, strings.NewReader(bad.body))
		if bad.admin != "" {
			req.Header.Set("X-Admin-Key", bad.admin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != bad.want || !strings.Contains(string(b), `"message"`) {
			t.Errorf("%s %s %.60s: %d %s, want %d", bad.method, bad.path, bad.body, resp.StatusCode, b, bad.want)
		}
	}
	if _, after := d.rawAdmin("GET", "/v1/admin/requests?status=all", ""); after != state {
		t.Errorf("bad input changed the requests:\n%s\n%s", state, after)
	}
	if _, after := d.rawAdmin("GET", "/v1/admin/keys", ""); after != keys {
		t.Errorf("bad input changed the keys:\n%s\n%s", keys, after)
	}

	// The administrator approves with verifyctl; the key goes to stdout.
	out, code := d.ctl(policyAdminKey, "requests", "approve", tk.RequestID)
	agentKey := strings.TrimSpace(out)
	if code != 0 || len(agentKey) != 43 {
		t.Fatalf("requests approve: exit %d %q", code, out)
	}
	if a := d.verifyHTTP(agentKey, "mailbox:agent-7:send"); a.Status != 200 || a.Subject != "agent-7" || a.Kind != "agent" {
		t.Fatalf("the approved key: %+v", a)
	}
	if a := d.verifyHTTP(agentKey, "mailbox:agent-8:send"); a.Status != 403 {
		t.Errorf("the approved key reaches another mailbox: %+v", a)
	}
	if _, code := d.ctl(policyAdminKey, "requests", "approve", tk.RequestID); code != 1 {
		t.Errorf("approving twice: exit %d, want 1", code)
	}
	if code, _ := d.askAccess(`{"agent_id":"agent-7"}`); code != 409 {
		t.Errorf("request from an agent with a live key: %d, want 409", code)
	}

	// Acknowledged, then kill -9: the approval, its key and its audit
	// entry are all there after the restart.
	d.kill()
	d = startDaemon(t, dataDir, "VERIFYD_ADMIN_KEY="+policyAdminKey)
	if code, st := d.requestState(tk.RequestToken); code != 200 || !strings.HasPrefix(st, "approved ") || strings.Contains(st, agentKey) {
		t.Fatalf("status after kill -9: %d %s", code, st)
	}
	if a := d.verifyHTTP(agentKey, "mailbox:agent-7:send"); a.Status != 200 {
		t.Fatalf("the approved key after kill -9: %+v", a)
	}
	if a := d.audit("?action=request.approve&target=" + tk.RequestID); len(a.Entries) != 3 || a.Entries[1].Outcome != "ok" || a.Entries[0].Outcome != "conflict" {
		t.Fatalf("approval entries after kill -9: %+v", a)
	}

	// Revoke the agent, ask again (a new token), deny, then approve: 409.
	if out, code := d.ctl(policyAdminKey, "agents", "revoke", "agent-7"); code != 0 || !strings.Contains(out, "revoked 1") {
		t.Fatalf("agents revoke: exit %d %s", code, out)
	}
	if a := d.verifyHTTP(agentKey, ""); a.Status != 401 {
		t.Errorf("the revoked agent key: %+v", a)
	}
	code, tk2 := d.askAccess(`{"agent_id":"agent-7"}`)
	if code != 201 || tk2.RequestToken == tk.RequestToken {
		t.Fatalf("request after revocation: %d %+v", code, tk2)
	}
	if _, code := d.ctl(policyAdminKey, "requests", "deny", tk2.RequestID); code != 0 {
		t.Fatalf("requests deny: exit %d", code)
	}
	if _, code := d.ctl(policyAdminKey, "requests", "approve", tk2.RequestID); code != 1 {
		t.Errorf("approve after deny: exit %d, want 1", code)
	}
	if code, st := d.requestState(tk2.RequestToken); code != 200 || !strings.HasPrefix(st, "denied ") {
		t.Errorf("status after the denial: %d %s", code, st)
	}
	if code := d.terminate(); code != 0 {
		t.Errorf("exit %d:\n%s", code, d.output())
	}
}

// TestAccessRequestExpiryEndToEnd: a pending request expires after
// requests.ttl; it cannot be approved then, and the agent may ask again.
func TestAccessRequestExpiryEndToEnd(t *testing.T) {
	cfg := configFile(t, "requests:\n  ttl: 1s\n")
	d := startDaemon(t, t.TempDir(), "VERIFYD_CONFIG="+cfg, "VERIFYD_ADMIN_KEY="+policyAdminKey)
	code, tk := d.askAccess(`{"agent_id":"slow-agent"}`)
	if code != 201 {
		t.Fatalf("request: %d %+v", code, tk)
	}
	waitFor(t, "the request expires", func() bool {
		_, st := d.requestState(tk.RequestToken)
		return strings.HasPrefix(st, "expired ")
	})
	if out, code := d.ctl(policyAdminKey, "requests", "approve", tk.RequestID); code != 1 {
		t.Errorf("approve an expired request: exit %d %s", code, out)
	}
	if keys, _ := d.ctl(policyAdminKey, "keys", "list", "-o", "json"); strings.Contains(keys, "slow-agent") {
		t.Errorf("an expired request got a key: %s", keys)
	}
	if code, again := d.askAccess(`{"agent_id":"slow-agent"}`); code != 201 || again.RequestToken == tk.RequestToken {
		t.Errorf("asking after expiry: %d %+v", code, again)
	}
}

// TestAuditTrailEndToEnd performs every audited action through the daemon
// and checks the trail in the API, in verifyctl and in the mirror file:
// each action with its actor and outcome, policy reloads by API, SIGHUP and
// file change, failed admin keys only in a metric, the file reopened on
// SIGHUP, and no secret anywhere — neither in the answers, nor in the
// file, nor in any key or value of the store.
func TestAuditTrailEndToEnd(t *testing.T) {
	dir := t.TempDir()
	policyFile := filepath.Join(dir, "policy.yaml")
	writePolicy(t, policyFile, agentPolicy)
	auditFile := filepath.Join(dir, "audit.jsonl")
	cfg := configFile(t, fmt.Sprintf("policy: %s\npolicy_check_interval: 200ms\naudit:\n  file: %s\n", policyFile, auditFile))
	dataDir := filepath.Join(dir, "data")
	d := startDaemon(t, dataDir, "VERIFYD_CONFIG="+cfg, "VERIFYD_ADMIN_KEY="+policyAdminKey)
	admin := verify.AdminActor(keystore.Sum(policyAdminKey))
	secrets := []string{policyAdminKey}

	var created, rotated keyAnswer
	d.ctlJSON(policyAdminKey, &created, "keys", "create", "--subject", "alice")
	d.ctlJSON(policyAdminKey, &rotated, "keys", "rotate", created.ID, "--grace", "1m")
	const imported = "legacy-relay-secret-0123456789"
	var imp keyAnswer
	if code := d.adminHTTP("POST", "/v1/admin/keys/import", `{"subject":"legacy","secret":"`+imported+`"}`, &imp); code != 201 {
		t.Fatalf("import: %d", code)
	}
	d.ctlJSON(policyAdminKey, &keyAnswer{}, "keys", "revoke", created.ID)
	if _, code := d.ctl(policyAdminKey, "revoke", "jwt", "--jti", "jti-e2e"); code != 0 {
		t.Fatal("revoke jwt failed")
	}
	_, tk := d.askAccess(`{"agent_id":"agent-1"}`)
	out, code := d.ctl(policyAdminKey, "requests", "approve", tk.RequestToken)
	agentKey := strings.TrimSpace(out)
	if code != 0 || agentKey == "" {
		t.Fatalf("approve: exit %d", code)
	}
	_, tk2 := d.askAccess(`{"agent_id":"agent-2"}`)
	d.ctl(policyAdminKey, "requests", "deny", tk2.RequestID)
	d.ctl(policyAdminKey, "agents", "revoke", "agent-1")
	secrets = append(secrets, created.Secret, rotated.Secret, imported, tk.RequestToken, tk2.RequestToken, agentKey)

	// Policy reloads: API, file change, SIGHUP.
	if _, code := d.ctl(policyAdminKey, "policy", "reload"); code != 0 {
		t.Fatal("policy reload failed")
	}
	writePolicy(t, policyFile, readOnlyPolicy)
	waitFor(t, "the file change is audited", func() bool {
		return len(d.audit("?actor=system%3Afile_change").Entries) == 1
	})
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the SIGHUP reload is audited", func() bool {
		return len(d.audit("?actor=system%3Asighup").Entries) == 1
	})
	// A wrong admin key: refused, counted, not audited.
	if _, code := d.ctl("wrong-admin-key-000000000000", "keys", "list"); code == 0 {
		t.Fatal("a wrong admin key was accepted")
	}

	want := []string{
		admin + " key.create ok", admin + " key.rotate ok", admin + " key.import ok", admin + " key.revoke ok",
		admin + " jwt.revoke_token ok", admin + " request.approve ok", admin + " request.deny ok", admin + " agent.revoke ok",
		admin + " policy.reload ok", "system:file_change policy.reload ok", "system:sighup policy.reload ok",
	}
	a := d.audit("?order=oldest")
	var got []string
	for _, e := range a.Entries {
		got = append(got, e.Actor+" "+e.Action+" "+e.Outcome)
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("audit trail:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if e := a.Entries[9]; e.Target != policyFile || !strings.HasPrefix(e.Detail, "changed") {
		t.Errorf("file change entry %+v", e)
	}
	resp, err := http.Get("http://" + d.addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `verifyd_http_admin_auth_failures_total{reason="wrong"} 1`) {
		t.Errorf("the wrong admin key is not counted:\n%s", grepLines(string(metrics), "admin_auth"))
	}
	ctlOut, code := d.ctl(policyAdminKey, "audit", "--all")
	if code != 0 || strings.Count(ctlOut, admin) != 9 {
		t.Errorf("verifyctl audit: exit %d\n%s", code, ctlOut)
	}

	// The mirror file holds the same entries, one JSON line each.
	lines := readLines(t, auditFile)
	if len(lines) != len(want) {
		t.Fatalf("audit file: %d lines, want %d:\n%s", len(lines), len(want), strings.Join(lines, "\n"))
	}
	for i, l := range lines {
		var e struct {
			Seq    uint64 `json:"seq"`
			Action string `json:"action"`
		}
		if err := json.Unmarshal([]byte(l), &e); err != nil || e.Seq != a.Entries[i].Seq || e.Action != a.Entries[i].Action {
			t.Errorf("audit file line %d %q: %v, want %+v", i, l, err, a.Entries[i])
		}
	}
	// Rotation: rename the file, SIGHUP, and the next entry lands in a new
	// file.
	if err := os.Rename(auditFile, auditFile+".1"); err != nil {
		t.Fatal(err)
	}
	if err := d.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the audit file is reopened", func() bool { return strings.Count(d.output(), "audit file reopened") == 2 })
	var later keyAnswer
	d.ctlJSON(policyAdminKey, &later, "keys", "create", "--subject", "bob")
	secrets = append(secrets, later.Secret)
	if fresh := strings.Join(readLines(t, auditFile), "\n"); !strings.Contains(fresh, later.ID) {
		t.Errorf("the entry after the reopen is not in the new file:\n%s", fresh)
	}
	if old := strings.Join(readLines(t, auditFile+".1"), "\n"); strings.Contains(old, later.ID) {
		t.Error("the entry after the reopen went to the rotated file")
	}

	// No secret in any answer, line or stored byte.
	apiOut := fmt.Sprint(d.audit("?limit=1000"))
	fileOut := strings.Join(append(readLines(t, auditFile), readLines(t, auditFile+".1")...), "\n")
	if code := d.terminate(); code != 0 {
		t.Fatalf("exit %d:\n%s", code, d.output())
	}
	dump := dumpStore(t, dataDir)
	for _, s := range secrets {
		if s == "" {
			t.Fatal("an empty secret")
		}
		for where, text := range map[string]string{"audit API": apiOut, "verifyctl audit": ctlOut, "audit file": fileOut} {
			if strings.Contains(text, s) {
				t.Errorf("%s holds a secret", where)
			}
		}
		if bytes.Contains(dump, []byte(s)) {
			t.Errorf("the store holds the secret %.8s...", s)
		}
	}
	if !bytes.Contains(dump, []byte("agent-1")) || !bytes.Contains(dump, []byte("request.approve")) {
		t.Fatal("the store dump does not hold what it should: the check above proves nothing")
	}
}

// dumpStore returns every key and value of the store in dir, concatenated.
func dumpStore(t *testing.T, dir string) []byte {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	it, err := db.NewIter(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer it.Close()
	var out []byte
	n := 0
	for ok := it.First(); ok; ok = it.Next() {
		out = append(append(append(out, it.Key()...), '\n'), it.Value()...)
		n++
	}
	if err := it.Error(); err != nil || n == 0 {
		t.Fatalf("dump: %d entries, %v", n, err)
	}
	return out
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
