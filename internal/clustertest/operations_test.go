package clustertest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// sharedPolicy grants tool:data:read to the role viewer.
const sharedPolicy = `mode: rbac
roles:
  viewer:
    scopes: ["tool:data:read"]
`

// TestPolicySharedByReload: a policy reload on one node publishes that
// node's file to every node, and a node that starts later adopts it.
func TestPolicySharedByReload(t *testing.T) {
	c := newTestCluster(t, 1, "a", "b")
	a, b := c.node("a"), c.node("b")

	// a gets a policy file; b has none and runs the default (deny_all).
	policyFile := filepath.Join(a.dir, "policy.yaml")
	if err := os.WriteFile(policyFile, []byte(sharedPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	appendConfig(t, a, fmt.Sprintf("policy: %q\npolicy_check_interval: -1s\n", policyFile))
	a.stop(t)
	a.restart(t)

	// A viewer key with no scope of its own: only the policy can grant.
	code, body, err := a.call(http.MethodPost, "/v1/admin/keys", true, map[string]any{"subject": "vera", "roles": []string{"viewer"}})
	if err != nil || code != http.StatusCreated {
		t.Fatalf("create: %d %s %v", code, body, err)
	}
	var k key
	if err := json.Unmarshal(body, &k); err != nil {
		t.Fatal(err)
	}
	b.waitVerify(t, k.Secret, "forbidden", propagationBound, "unknown") // the key is there; its own scopes grant nothing
	if got := scopeStatus(t, b, k.Secret, "tool:data:read"); got != http.StatusForbidden {
		t.Fatalf("node b before the reload: %d, want 403 (deny_all grants nothing)", got)
	}

	code, body, err = a.call(http.MethodPost, "/v1/admin/policy/reload", true, nil)
	if err != nil || code != http.StatusOK || !strings.Contains(string(body), `"changed":true`) {
		t.Fatalf("reload on a: %d %s %v", code, body, err)
	}
	if got := scopeStatus(t, a, k.Secret, "tool:data:read"); got != http.StatusOK {
		t.Fatalf("node a right after its reload: %d, want 200", got)
	}
	waitUntil(t, propagationBound, "node b to grant tool:data:read under the shared policy", func() (bool, string) {
		got := scopeStatus(t, b, k.Secret, "tool:data:read")
		return got == http.StatusOK, fmt.Sprint(got)
	})
	if got := scopeStatus(t, b, k.Secret, "tool:data:write"); got != http.StatusForbidden {
		t.Fatalf("node b, a scope the policy does not grant: %d, want 403", got)
	}

	// A node that starts with an empty replica adopts the cluster's policy,
	// though it has no policy file.
	late := c.newNode(t, verifydBinary(t), "late")
	late.start(t)
	late.waitReady(t)
	waitUntil(t, propagationBound, "the late node to grant tool:data:read", func() (bool, string) {
		got := scopeStatus(t, late, k.Secret, "tool:data:read")
		return got == http.StatusOK, fmt.Sprint(got)
	})
	var st struct {
		Mode string `json:"mode"`
	}
	if err := late.getJSON("/v1/admin/policy", &st); err != nil || st.Mode != "rbac" {
		t.Fatalf("policy of the late node: %+v %v, want mode rbac", st, err)
	}
}

// TestVerifyctlClusterStatus drives the real verifyctl against a node:
// `cluster status` lists every node as ok at the latest revision, and
// `cluster fingerprint` prints the node's fingerprint.
func TestVerifyctlClusterStatus(t *testing.T) {
	c := newTestCluster(t, 1, "a", "b")
	a := c.node("a")
	a.mustCreateKey(t, "alice")
	c.waitConverged(t)
	ctl := verifyctlBinary(t)
	run := func(args ...string) string {
		cmd := exec.Command(ctl, append([]string{"--addr", "http://" + a.addr}, args...)...)
		cmd.Env = append(a.childEnv(), "NO_COLOR=1")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("verifyctl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	waitUntil(t, 15*time.Second, "verifyctl cluster status to list a and b as ok and up to date", func() (bool, string) {
		out := run("cluster", "status")
		okRows := 0
		for _, line := range strings.Split(out, "\n") {
			f := strings.Fields(line)
			if len(f) >= 4 && (f[0] == "a" || f[0] == "b") && f[1] == "ok" && f[3] == "0" {
				okRows++
			}
		}
		return okRows == 2, out
	})
	fp, err := a.fingerprint()
	if err != nil {
		t.Fatal(err)
	}
	if out := run("cluster", "fingerprint"); !strings.Contains(out, fp.Fingerprint) {
		t.Fatalf("verifyctl cluster fingerprint:\n%s\nwant the fingerprint %s", out, fp.Fingerprint)
	}
}

// scopeStatus verifies token for scope on n and returns the HTTP status.
func scopeStatus(t *testing.T, n *node, token, scope string) int {
	t.Helper()
	code, body, err := n.call(http.MethodPost, "/v1/verify", false, map[string]string{"token": token, "scope": scope})
	if err != nil {
		t.Fatalf("node %s: verify %s: %v (%s)", n.name, scope, err, body)
	}
	return code
}

// appendConfig appends YAML lines to the node's configuration file; they
// take effect at its next start.
func appendConfig(t *testing.T, n *node, lines string) {
	t.Helper()
	f, err := os.OpenFile(n.cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(lines); err != nil {
		t.Fatal(err)
	}
}

// TestMaxStalenessFailsClosed: with etcd gone, a node with max_staleness
// set fails closed once its replica has gone unconfirmed that long — every
// verification answers unavailable and /readyz 503 — while a node without
// it keeps answering from its replica; both serve again when etcd returns.
func TestMaxStalenessFailsClosed(t *testing.T) {
	c := newTestCluster(t, 1, "strict", "static")
	strict, static := c.node("strict"), c.node("static")
	appendConfig(t, strict, "  max_staleness: 2s\n") // under cluster:, the last section
	strict.stop(t)
	strict.restart(t)
	k := strict.mustCreateKey(t, "alice")
	static.waitVerify(t, k.Secret, "ok", propagationBound, "unknown")

	c.etcd.StopAll()
	down := time.Now()
	waitUntil(t, 30*time.Second, "node strict to fail closed", func() (bool, string) {
		code, status, err := strict.verify(k.Secret)
		if err != nil {
			return false, err.Error()
		}
		return code == http.StatusServiceUnavailable && status == "unavailable", fmt.Sprintf("%d %s", code, status)
	})
	closedAfter := time.Since(down)
	if closedAfter < 2*time.Second {
		t.Fatalf("node strict failed closed %v after etcd stopped, before its max_staleness of 2s", closedAfter)
	}
	t.Logf("node strict failed closed %v after etcd stopped", closedAfter.Round(time.Millisecond))
	if code, body, err := strict.readyz(); err != nil || code != http.StatusServiceUnavailable || !strings.Contains(body, "max_staleness") {
		t.Fatalf("node strict: /readyz %d %q %v, want 503 naming max_staleness", code, body, err)
	}
	static.expectVerify(t, k.Secret, "ok", "a valid key on the node without max_staleness")
	waitReadyz(t, static, "degraded", "degraded")
	static.expectVerify(t, k.Secret, "ok", "a valid key on the degraded node without max_staleness")

	c.etcd.RestartAll()
	waitReadyz(t, static, "ready", "ok")
	waitUntil(t, 30*time.Second, "node strict to serve again", func() (bool, string) {
		code, body, err := strict.readyz()
		if err != nil {
			return false, err.Error()
		}
		return code == http.StatusOK && strings.HasPrefix(body, "ready\n"), fmt.Sprintf("%d %q", code, body)
	})
	strict.expectVerify(t, k.Secret, "ok", "a valid key once etcd is back")
}
