package adminclient_test

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/verifyd/verifyd/internal/adminclient"
	"github.com/verifyd/verifyd/internal/adminclient/admintest"
)

const testPolicy = `mode: rbac
roles:
  publisher: {scopes: ["projects/${project}/topics/*:publish"]}
  agent: {scopes: ["mailbox:${sub}:*"]}
subjects:
  alice: {projects: {p1: [publisher]}}
acls:
  projects/p1/topics/orders: {publish: [bob]}
`

// newPolicyClient starts a server with the policy file it returns.
func newPolicyClient(t *testing.T) (*adminclient.Client, string) {
	t.Helper()
	file := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(file, []byte(testPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := admintest.NewServerWith(testAdminKey, &admintest.Options{PolicyFile: file})
	t.Cleanup(srv.Close)
	c, err := adminclient.New(srv.URL, testAdminKey, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c, file
}

func TestPolicyStatusAndReload(t *testing.T) {
	t.Parallel()
	c, file := newPolicyClient(t)
	st, err := c.PolicyStatus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode != "rbac" || st.File != file || st.LoadedAt.IsZero() || st.Changed != nil || st.LastError != "" ||
		st.Summary != (adminclient.PolicySummary{Roles: 2, Patterns: 2, Subjects: 1, ACLs: 1}) {
		t.Fatalf("PolicyStatus = %+v", st)
	}

	st, err = c.ReloadPolicy(t.Context())
	if err != nil || st.Changed == nil || *st.Changed || st.LastReload.IsZero() {
		t.Fatalf("reload of the same file = %+v, %v", st, err)
	}

	os.WriteFile(file, []byte("mode: rbac\nroles:\n  a: {inherits: [b]}\n  c: {scopes: [\"x::y\"]}\n"), 0o600)
	_, err = c.ReloadPolicy(t.Context())
	var ae *adminclient.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusBadRequest || ae.Code != adminclient.CodeBadRequest || len(ae.Problems) != 2 {
		t.Fatalf("reload of an invalid file: %v (%+v)", err, ae)
	}
	if p := ae.Problems[0]; p.Line != 3 || p.Column != 18 || p.Path != "roles.a.inherits[0]" || p.Message == "" || p.Text == "" {
		t.Errorf("problem %+v", p)
	}
	st, err = c.PolicyStatus(t.Context())
	if err != nil || st.Mode != "rbac" || st.LastError == "" || len(st.Problems) != 2 {
		t.Fatalf("status after a refused reload = %+v, %v", st, err)
	}

	os.WriteFile(file, []byte("mode: none\n"), 0o600)
	if st, err = c.ReloadPolicy(t.Context()); err != nil || st.Changed == nil || !*st.Changed || st.Mode != "none" || st.LastError != "" {
		t.Fatalf("reload of a new policy = %+v, %v", st, err)
	}
}

func TestReloadWithoutPolicyFile(t *testing.T) {
	t.Parallel()
	c, _ := newTestClient(t)
	_, err := c.ReloadPolicy(t.Context())
	var ae *adminclient.APIError
	if !errors.As(err, &ae) || ae.Status != http.StatusConflict || ae.Code != adminclient.CodeConflict {
		t.Fatalf("reload without a policy file: %v", err)
	}
	st, err := c.PolicyStatus(t.Context())
	if err != nil || st.Mode != "deny_all" || st.File != "" {
		t.Fatalf("PolicyStatus = %+v, %v", st, err)
	}
}

func TestExplainPolicyAndVerifyMatched(t *testing.T) {
	t.Parallel()
	c, _ := newPolicyClient(t)
	e, err := c.ExplainPolicy(t.Context(), adminclient.PolicyExplainRequest{Subject: "alice", Scope: "projects/p1/topics/orders:publish"})
	if err != nil {
		t.Fatal(err)
	}
	if e.Mode != "rbac" || e.Subject != "alice" || e.Decision.Allowed || e.Decision.Reason != adminclient.ReasonNotOnACL || len(e.Steps) == 0 || e.Text == "" {
		t.Errorf("explain = %+v", e)
	}
	e, err = c.ExplainPolicy(t.Context(), adminclient.PolicyExplainRequest{Subject: "z", Project: "p7", Roles: []string{"publisher", "agent"}, Scope: "projects/p7/topics/t:publish"})
	if err != nil || !e.Decision.Allowed || e.Decision.Role != "publisher" || e.Decision.Project != "p7" {
		t.Errorf("explain with project roles = %+v, %v", e.Decision, err)
	}

	k, err := c.CreateKey(t.Context(), adminclient.KeySpec{Subject: "agent-1", Roles: []string{"agent"}})
	if err != nil {
		t.Fatal(err)
	}
	e, err = c.ExplainPolicy(t.Context(), adminclient.PolicyExplainRequest{KeyID: k.ID, Scope: "mailbox:agent-1:in"})
	if err != nil || !e.Decision.Allowed || e.Decision.Pattern != "mailbox:agent-1:*" {
		t.Errorf("explain of a key = %+v, %v", e.Decision, err)
	}
	res, err := c.Verify(t.Context(), k.Secret, "mailbox:agent-1:in")
	if err != nil || !res.Allow || res.Reason != adminclient.ReasonGranted || res.Matched == nil ||
		*res.Matched != (adminclient.PolicyMatch{Role: "agent", Pattern: "mailbox:agent-1:*"}) {
		t.Errorf("Verify = %+v, %v", res, err)
	}
	res, err = c.Verify(t.Context(), k.Secret, "mailbox:agent-2:in")
	if err != nil || res.Allow || res.Reason != adminclient.ReasonNoGrant || res.Matched != nil {
		t.Errorf("Verify of another mailbox = %+v, %v", res, err)
	}

	for _, bad := range []adminclient.PolicyExplainRequest{{Subject: "a"}, {KeyID: "bad id!", Scope: "a:b"}} {
		if _, err := c.ExplainPolicy(t.Context(), bad); !errors.Is(err, adminclient.ErrInvalidArgument) {
			t.Errorf("ExplainPolicy(%+v) = %v, want ErrInvalidArgument", bad, err)
		}
	}
	var ae *adminclient.APIError
	if _, err := c.ExplainPolicy(t.Context(), adminclient.PolicyExplainRequest{Realm: "r", Scope: "a:b"}); !errors.As(err, &ae) || ae.Status != 400 {
		t.Errorf("realm without subject: %v", err)
	}
}
