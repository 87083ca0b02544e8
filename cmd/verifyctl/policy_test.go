package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/verifyd/verifyd/internal/adminclient"
	"github.com/verifyd/verifyd/internal/adminclient/admintest"
)

const cliPolicy = `mode: rbac
roles:
  publisher: {scopes: ["projects/${project}/topics/*:publish"]}
  agent: {scopes: ["mailbox:${sub}:*"]}
subjects:
  alice: {projects: {p1: [publisher]}}
acls:
  projects/p1/topics/orders: {publish: [bob]}
`

const invalidPolicy = "mode: rbac\nroles:\n  a: {inherits: [b]}\n  c: {scopes: [\"x::y\"]}\n"

func writeFile(t *testing.T, name, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// newPolicyDaemon returns a daemon with the policy file it returns.
func newPolicyDaemon(t *testing.T) (*daemon, string) {
	t.Helper()
	file := writeFile(t, "policy.yaml", cliPolicy)
	return newDaemonWith(t, &admintest.Options{PolicyFile: file}), file
}

func TestPolicyCheck(t *testing.T) {
	t.Parallel()
	valid := writeFile(t, "valid.yaml", cliPolicy)
	invalid := writeFile(t, "invalid.yaml", invalidPolicy)
	// No daemon, no admin key: policy check is offline.
	offline := []string{"VERIFYD_ADDR=http://127.0.0.1:1"}

	r := runBinary(t, invocation{env: offline, args: []string{"policy", "check", valid}})
	r.want(t, exitOK)
	if want := valid + ": valid policy, mode rbac: 2 roles, 2 patterns, 1 subject, 1 ACL, 0 streams\n"; r.stdout != want || r.stderr != "" {
		t.Errorf("valid file: stdout %q stderr %q", r.stdout, r.stderr)
	}

	r = runBinary(t, invocation{env: offline, args: []string{"policy", "check", invalid}})
	r.want(t, exitUsage)
	want := invalid + `:3:18: roles.a.inherits[0]: role "a" inherits unknown role "b"` + "\n" +
		invalid + `:4:16: roles.c.scopes[0]: invalid pattern "x::y": empty segment at byte 2` + "\n"
	if r.stdout != want {
		t.Errorf("invalid file: stdout\n%s\nwant\n%s", r.stdout, want)
	}
	if r.stderr != "verifyctl: "+invalid+": 2 problems\n" {
		t.Errorf("stderr %q", r.stderr)
	}

	r = runBinary(t, invocation{env: offline, args: []string{"policy", "check", "-o", "json", invalid}})
	r.want(t, exitUsage)
	var out struct {
		File     string
		Valid    bool
		Problems []adminclient.PolicyProblem
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Valid || len(out.Problems) != 2 || out.Problems[1].Line != 4 || out.Problems[1].Path != "roles.c.scopes[0]" {
		t.Errorf("json: %+v %v\n%s", out, err, r.stdout)
	}
	r = runBinary(t, invocation{env: offline, args: []string{"policy", "check", valid, "-o", "json"}})
	r.want(t, exitOK)
	if !strings.Contains(r.stdout, `"valid": true`) || !strings.Contains(r.stdout, `"mode": "rbac"`) || !strings.Contains(r.stdout, `"roles": 2`) {
		t.Errorf("json of a valid file:\n%s", r.stdout)
	}

	r = runBinary(t, invocation{env: offline, args: []string{"policy", "check", filepath.Join(t.TempDir(), "absent.yaml")}})
	r.want(t, exitUsage)
	if !strings.Contains(r.stderr, "absent.yaml") {
		t.Errorf("missing file: %q", r.stderr)
	}
	runBinary(t, invocation{env: offline, args: []string{"policy", "check"}}).want(t, exitUsage)
	runBinary(t, invocation{env: offline, args: []string{"policy", "check", valid, invalid}}).want(t, exitUsage)
}

func TestPolicyShowAndReload(t *testing.T) {
	t.Parallel()
	d, file := newPolicyDaemon(t)

	r := d.admin(t, "", "policy", "show")
	r.want(t, exitOK)
	for _, want := range []string{"mode:", "rbac", "file:", file, "roles:", "acls:", "last error:"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("show lacks %q:\n%s", want, r.stdout)
		}
	}

	r = d.admin(t, "", "policy", "reload")
	r.want(t, exitOK)
	if !strings.Contains(r.stdout, "unchanged") || !strings.Contains(r.stdout, "2 roles") {
		t.Errorf("reload of the same file:\n%s", r.stdout)
	}

	os.WriteFile(file, []byte(invalidPolicy), 0o600)
	r = d.admin(t, "", "policy", "reload")
	r.want(t, exitUsage)
	if !strings.Contains(r.stdout, file+`:3:18: roles.a.inherits[0]: role "a" inherits unknown role "b"`) || strings.Count(r.stdout, "\n") != 2 {
		t.Errorf("refused reload: stdout\n%s", r.stdout)
	}
	if !strings.Contains(r.stderr, "2 problems") || !strings.Contains(r.stderr, "keeps its policy") {
		t.Errorf("refused reload: stderr %q", r.stderr)
	}
	r = d.admin(t, "", "policy", "reload", "-o", "json")
	r.want(t, exitUsage)
	var ae adminclient.APIError
	if err := json.Unmarshal([]byte(r.stdout), &ae); err != nil || ae.Code != "BAD_REQUEST" || len(ae.Problems) != 2 {
		t.Errorf("refused reload, json: %+v %v\n%s", ae, err, r.stdout)
	}
	r = d.admin(t, "", "policy", "show")
	r.want(t, exitOK)
	if !strings.Contains(r.stdout, "rbac") || !strings.Contains(r.stdout, "problems of the last reload:") || !strings.Contains(r.stdout, "roles.c.scopes[0]") {
		t.Errorf("show after a refused reload:\n%s", r.stdout)
	}

	os.WriteFile(file, []byte("mode: none\n"), 0o600)
	r = d.admin(t, "", "policy", "reload")
	r.want(t, exitOK)
	if !strings.Contains(r.stdout, "a new policy is in force") || !strings.Contains(r.stdout, "mode none") {
		t.Errorf("reload of a new policy:\n%s", r.stdout)
	}
	r = d.admin(t, "", "policy", "show", "-o", "json")
	r.want(t, exitOK)
	var st adminclient.PolicyStatus
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Mode != "none" || st.File != file || st.LastError != "" {
		t.Errorf("show -o json: %+v %v", st, err)
	}
	if !strings.Contains(r.stderr, "mode none") {
		t.Errorf("no warning for mode none: %q", r.stderr)
	}
}

func TestPolicyReloadWithoutFile(t *testing.T) {
	t.Parallel()
	d := newDaemon(t)
	r := d.admin(t, "", "policy", "reload")
	r.want(t, exitRefused)
	if !strings.Contains(r.stderr, "no policy file") {
		t.Errorf("stderr %q", r.stderr)
	}
	r = d.admin(t, "", "policy", "show")
	r.want(t, exitOK)
	if !strings.Contains(r.stdout, "deny_all") {
		t.Errorf("show:\n%s", r.stdout)
	}
}

func TestPolicyExplain(t *testing.T) {
	t.Parallel()
	d, _ := newPolicyDaemon(t)

	r := d.admin(t, "", "policy", "explain", "--subject", "alice", "--scope", "projects/p1/topics/t:publish")
	r.want(t, exitOK)
	if !strings.HasPrefix(r.stdout, "projects/p1/topics/t:publish for subject alice under mode rbac: allow (granted, role publisher in p1, pattern projects/p1/topics/*:publish)\n  role publisher in p1 ") {
		t.Errorf("allowed:\n%s", r.stdout)
	}

	r = d.admin(t, "", "policy", "explain", "--subject", "alice", "--scope", "projects/p1/topics/orders:publish")
	r.want(t, exitRefused)
	if !strings.Contains(r.stdout, "deny (not_on_acl)") || !strings.Contains(r.stdout, "  acl projects/p1/topics/orders:publish: does not allow") {
		t.Errorf("denied:\n%s", r.stdout)
	}
	if r.stderr != "verifyctl: denied: not_on_acl\n" {
		t.Errorf("stderr %q", r.stderr)
	}

	r = d.admin(t, "", "policy", "explain", "--subject", "z", "--project", "p5", "--role", "publisher", "--role", "agent", "--scope", "projects/p5/topics/t:publish", "-o", "json")
	r.want(t, exitOK)
	var e adminclient.PolicyExplanation
	if err := json.Unmarshal([]byte(r.stdout), &e); err != nil || !e.Decision.Allowed || e.Decision.Project != "p5" || len(e.Steps) == 0 {
		t.Errorf("json: %+v %v", e, err)
	}

	k := d.createKey(t, adminclient.KeySpec{Subject: "agent-3", Roles: []string{"agent"}, Scopes: []string{"tool:x:*"}})
	r = d.admin(t, "", "policy", "explain", "--key", k.ID, "--scope", "mailbox:agent-3:in")
	r.want(t, exitOK)
	if !strings.Contains(r.stdout, "own tool:x:*: no match") || !strings.Contains(r.stdout, "role agent mailbox:${sub}:* -> mailbox:agent-3:*: match") {
		t.Errorf("key:\n%s", r.stdout)
	}

	// The principal of a credential, read from a file or standard input.
	tokenFile := writeFile(t, "token", k.Secret+"\n")
	r = d.admin(t, "", "policy", "explain", "--token-file", tokenFile, "--scope", "tool:x:run")
	r.want(t, exitOK)
	if !strings.Contains(r.stdout, "for subject agent-3 under mode rbac: allow (granted, pattern tool:x:*)") || strings.Contains(r.stdout+r.stderr, k.Secret) {
		t.Errorf("token file:\n%s", r.stdout)
	}
	r = d.admin(t, "vd_not_a_key_of_this_daemon_0000000000000", "policy", "explain", "--token-stdin", "--scope", "a:b")
	r.want(t, exitRefused)
	if !strings.Contains(r.stderr, "not a valid credential (unknown)") {
		t.Errorf("unknown token: %q", r.stderr)
	}

	for _, args := range [][]string{
		{"--subject", "a"},
		{"--token-file", tokenFile, "--subject", "a", "--scope", "a:b"},
		{"--token-file", tokenFile, "--token-stdin", "--scope", "a:b"},
		{"--token-file", filepath.Join(t.TempDir(), "absent"), "--scope", "a:b"},
		{"--key", k.ID, "--subject", "a", "--scope", "a:b"},
		{"--role", "x", "--scope", "a:b"},
		{"--subject", "a", "--project", "p", "--scope", "a:b"},
	} {
		r := d.admin(t, "", append([]string{"policy", "explain"}, args...)...)
		r.want(t, exitUsage)
	}
	if r := d.anon(t, "", "policy", "explain", "--subject", "a", "--scope", "a:b"); r.code != exitUsage || !strings.Contains(r.stderr, "admin key") {
		t.Errorf("without the admin key: %d %q", r.code, r.stderr)
	}
}

func TestVerifyShowsPolicyDecision(t *testing.T) {
	t.Parallel()
	d, _ := newPolicyDaemon(t)
	k := d.createKey(t, adminclient.KeySpec{Subject: "alice", Scopes: []string{"own:*"}})
	r := d.anon(t, "", "verify", k.Secret, "--scope", "projects/p1/topics/t:publish")
	r.want(t, exitOK)
	for _, want := range []string{"reason:", "granted", "matched:", "role publisher in p1, pattern projects/p1/topics/*:publish"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("allowed lacks %q:\n%s", want, r.stdout)
		}
	}
	r = d.anon(t, "", "verify", k.Secret, "--scope", "own:x")
	if !strings.Contains(r.stdout, "own scope own:*") {
		t.Errorf("own scope:\n%s", r.stdout)
	}
	r = d.anon(t, "", "verify", k.Secret, "--scope", "projects/p1/topics/orders:publish")
	r.want(t, exitRefused)
	if !strings.Contains(r.stdout, "not_on_acl") {
		t.Errorf("denied:\n%s", r.stdout)
	}
}

func TestPolicyHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help"}, {"help", "policy"}} {
		r := runBinary(t, invocation{args: args})
		r.want(t, exitOK)
		for _, want := range []string{"policy show", "policy reload", "policy explain", "policy check"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("%v lacks %q", args, want)
			}
		}
	}
	r := runBinary(t, invocation{args: []string{"policy"}})
	r.want(t, exitUsage)
	if !strings.Contains(r.stderr, "show, reload, explain or check") {
		t.Errorf("policy alone: %q", r.stderr)
	}
	r = runBinary(t, invocation{args: []string{"help", "policy", "check"}})
	r.want(t, exitOK)
	if !strings.Contains(r.stdout, "FILE:LINE:COLUMN") {
		t.Errorf("help policy check:\n%s", r.stdout)
	}
}
