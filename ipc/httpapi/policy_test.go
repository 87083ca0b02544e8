package httpapi

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify"
)

// fakePolicyAdmin reloads from a string instead of a file, as cmd/verifyd
// does from its file.
type fakePolicyAdmin struct {
	v        *verify.Verifier
	mu       sync.Mutex
	file     string // the "file" content; "" means no file configured
	loadedAt time.Time
	last     time.Time
	lastErr  error
}

func (f *fakePolicyAdmin) ReloadPolicy() (PolicyStatus, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.file == "" {
		return f.status(false), ErrNoPolicyFile
	}
	f.last = time.Now()
	p, err := rbac.ParsePolicy([]byte(f.file))
	f.lastErr = err
	if err != nil {
		return f.status(false), err
	}
	changed := !p.Equal(f.v.Policy())
	if changed {
		f.v.SetPolicy(p)
		f.loadedAt = f.last
	}
	return f.status(changed), nil
}

func (f *fakePolicyAdmin) PolicyStatus() PolicyStatus {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.status(false)
}

func (f *fakePolicyAdmin) status(changed bool) PolicyStatus {
	return PolicyStatus{Policy: f.v.Policy(), File: "/etc/verifyd/policy.yaml", LoadedAt: f.loadedAt, LastReload: f.last, LastError: f.lastErr, Changed: changed}
}

func (f *fakePolicyAdmin) set(file string) {
	f.mu.Lock()
	f.file = file
	f.mu.Unlock()
}

const amsPolicy = `mode: rbac
roles:
  service_admin: {scopes: ["*"], acl_exempt: true}
  publisher: {scopes: ["projects/${project}/topics/*:publish"]}
  agent: {scopes: ["mailbox:${sub}:*"]}
subjects:
  A: {projects: {p2: [publisher]}}
  S: {roles: [service_admin]}
acls:
  projects/p2/topics/payroll: {publish: [C]}
streams:
  public: {}
`

type policyAnswer struct {
	Mode       string  `json:"mode"`
	File       string  `json:"file"`
	LoadedAt   *string `json:"loaded_at"`
	Changed    *bool   `json:"changed"`
	LastReload *string `json:"last_reload"`
	LastError  string  `json:"last_error"`
	Summary    struct {
		Roles, Patterns, Subjects, ACLs, Streams int
	} `json:"summary"`
	Problems []struct {
		Line, Column  int
		Path, Message string
		Text          string
	} `json:"problems"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

type verifyPolicyAnswer struct {
	Allow   bool   `json:"allow"`
	Status  string `json:"status"`
	Reason  string `json:"reason"`
	Grant   string `json:"grant"`
	Matched *struct {
		Role    *string `json:"role"`
		Project *string `json:"project"`
		Pattern *string `json:"pattern"`
	} `json:"matched"`
}

func TestPolicyReloadAndStatus(t *testing.T) {
	var fake *fakePolicyAdmin
	s := newTestServerOpts(t, nil, func(v *verify.Verifier) PolicyAdmin {
		fake = &fakePolicyAdmin{v: v}
		return fake
	})

	var st policyAnswer
	if code := s.do("GET", "/v1/admin/policy", adminKey, "", &st); code != 200 || st.Mode != "deny_all" || st.File != "/etc/verifyd/policy.yaml" {
		t.Fatalf("status before any reload: %d %+v", code, st)
	}
	// No file configured: 409.
	if code := s.do("POST", "/v1/admin/policy/reload", adminKey, "", &st); code != 409 || st.Code != "CONFLICT" {
		t.Fatalf("reload without a file: %d %+v", code, st)
	}

	fake.set(amsPolicy)
	st = policyAnswer{}
	if code := s.do("POST", "/v1/admin/policy/reload", adminKey, "", &st); code != 200 || st.Mode != "rbac" || st.Changed == nil || !*st.Changed || st.LoadedAt == nil {
		t.Fatalf("reload: %d %+v", code, st)
	}
	if st.Summary.Roles != 3 || st.Summary.Subjects != 2 || st.Summary.ACLs != 1 || st.Summary.Streams != 1 || st.Summary.Patterns != 3 {
		t.Errorf("summary %+v", st.Summary)
	}
	st = policyAnswer{}
	if code := s.do("POST", "/v1/admin/policy/reload", adminKey, "{}", &st); code != 200 || st.Changed == nil || *st.Changed {
		t.Fatalf("reload of the same policy: %d %+v", code, st)
	}

	// An invalid file: 400 with every problem; the policy in force stays.
	fake.set("mode: rbac\nroles:\n  a: {inherits: [b]}\n  c: {scopes: [\"x::y\"]}\n")
	st = policyAnswer{}
	if code := s.do("POST", "/v1/admin/policy/reload", adminKey, "", &st); code != 400 || st.Code != "BAD_REQUEST" || len(st.Problems) != 2 {
		t.Fatalf("invalid reload: %d %+v", code, st)
	}
	if p := st.Problems[0]; p.Line != 3 || p.Path == "" || !strings.HasPrefix(p.Text, "3:") || !strings.Contains(st.Message, "unchanged") {
		t.Errorf("problem %+v, message %q", p, st.Message)
	}
	st = policyAnswer{}
	if code := s.do("GET", "/v1/admin/policy", adminKey, "", &st); code != 200 || st.Mode != "rbac" || st.LastError == "" || len(st.Problems) != 2 || st.LastReload == nil {
		t.Fatalf("status after a failed reload: %d %+v", code, st)
	}

	for _, c := range []struct{ method, path string }{
		{"POST", "/v1/admin/policy"}, {"GET", "/v1/admin/policy/reload"}, {"PUT", "/v1/admin/policy/explain"},
	} {
		if code := s.do(c.method, c.path, adminKey, "", nil); code != 405 {
			t.Errorf("%s %s: %d, want 405", c.method, c.path, code)
		}
	}
	if code := s.do("GET", "/v1/admin/policy/nope", adminKey, "", nil); code != 404 {
		t.Errorf("unknown policy endpoint: %d", code)
	}
	if code := s.do("POST", "/v1/admin/policy/reload", adminKey, "{\"x\":1}", nil); code != 400 {
		t.Errorf("reload with an unknown field: %d", code)
	}
	for _, path := range []string{"/v1/admin/policy", "/v1/admin/policy/reload", "/v1/admin/policy/explain?scope=a:b"} {
		method := "GET"
		if strings.HasSuffix(path, "reload") {
			method = "POST"
		}
		if code := s.do(method, path, "", "", nil); code != 401 {
			t.Errorf("%s without the admin key: %d", path, code)
		}
	}
}

// TestPolicyStatusWithoutAdmin: without a policy file the status shows
// the verifier's policy, and a reload answers 409.
func TestPolicyStatusWithoutAdmin(t *testing.T) {
	s := newTestServer(t)
	var st policyAnswer
	if code := s.do("GET", "/v1/admin/policy", adminKey, "", &st); code != 200 || st.Mode != "deny_all" || st.File != "" {
		t.Fatalf("%d %+v", code, st)
	}
	if code := s.do("POST", "/v1/admin/policy/reload", adminKey, "", &st); code != 409 {
		t.Fatalf("reload: %d", code)
	}
}

func TestVerifyAnswersMatchedAndReason(t *testing.T) {
	s := newTestServer(t)
	s.v.SetPolicy(mustParse(t, amsPolicy))
	a := s.create(`{"subject":"A","scopes":["own:*"],"roles":["agent"]}`)
	cases := []struct {
		scope, status, reason  string
		code                   int
		role, project, pattern string
	}{
		{"own:x", "ok", "granted", 200, "", "", "own:*"},
		{"projects/p2/topics/t:publish", "ok", "granted", 200, "publisher", "p2", "projects/p2/topics/*:publish"},
		{"mailbox:A:in", "ok", "granted", 200, "agent", "", "mailbox:A:*"},
		{"streams/public:read", "ok", "stream_open", 200, "", "", ""},
		{"projects/p2/topics/payroll:publish", "forbidden", "not_on_acl", 403, "", "", ""},
		{"projects/p3/topics/t:publish", "forbidden", "no_grant", 403, "", "", ""},
		{"", "ok", "authenticated", 200, "", "", ""},
	}
	for _, c := range cases {
		var got verifyPolicyAnswer
		code := s.do("POST", "/v1/verify", "", `{"token":"`+a.Secret+`","scope":"`+c.scope+`"}`, &got)
		if code != c.code || got.Status != c.status || got.Reason != c.reason {
			t.Errorf("%q: %d %+v, want %d %s %s", c.scope, code, got, c.code, c.status, c.reason)
			continue
		}
		switch {
		case code != 200 || c.scope == "":
			if got.Matched != nil {
				t.Errorf("%q: matched %+v in a denial or without a scope", c.scope, got.Matched)
			}
		case got.Matched == nil || got.Matched.Role == nil || got.Matched.Project == nil || got.Matched.Pattern == nil:
			t.Errorf("%q: matched lacks a field: %+v", c.scope, got.Matched)
		case *got.Matched.Role != c.role || *got.Matched.Project != c.project || *got.Matched.Pattern != c.pattern || got.Grant != c.pattern:
			t.Errorf("%q: matched %q %q %q grant %q, want %q %q %q", c.scope, *got.Matched.Role, *got.Matched.Project, *got.Matched.Pattern, got.Grant, c.role, c.project, c.pattern)
		}
	}
	var got verifyPolicyAnswer
	if code := s.do("POST", "/v1/verify", "", `{"token":"`+strings.Repeat("z", 43)+`","scope":"own:x"}`, &got); code != 401 || got.Reason != "unknown" {
		t.Errorf("unknown key: %d %+v", code, got)
	}
}

func mustParse(t *testing.T, src string) *rbac.Policy {
	t.Helper()
	p, err := rbac.ParsePolicy([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type explainAnswer struct {
	Scope     string `json:"scope"`
	Mode      string `json:"mode"`
	Subject   string `json:"subject"`
	Anonymous bool   `json:"anonymous"`
	Decision  struct {
		Allowed                bool
		Reason                 string
		Role, Project, Pattern string
		Text                   string
	} `json:"decision"`
	Steps []struct {
		Kind, Role, Via, Project, Pattern, Filled, Note, Text string
		Matched                                               bool
	} `json:"steps"`
	Text    string `json:"text"`
	Message string `json:"message"`
}

func TestPolicyExplain(t *testing.T) {
	s := newTestServer(t)
	s.v.SetPolicy(mustParse(t, amsPolicy))
	explain := func(q url.Values) (int, explainAnswer) {
		var e explainAnswer
		code := s.do("GET", "/v1/admin/policy/explain?"+q.Encode(), adminKey, "", &e)
		return code, e
	}

	code, e := explain(url.Values{"subject": {"A"}, "scope": {"projects/p2/topics/payroll:publish"}})
	if code != 200 || e.Mode != "rbac" || e.Subject != "A" || e.Decision.Allowed || e.Decision.Reason != "not_on_acl" {
		t.Fatalf("%d %+v", code, e)
	}
	want := s.v.Policy().Explain(&rbac.Principal{Subject: "A", Profile: &rbac.Profile{}}, "projects/p2/topics/payroll:publish")
	if e.Text != want.String() || len(e.Steps) != len(want.Steps) {
		t.Errorf("text:\n%s\nwant:\n%s", e.Text, want.String())
	}
	if last := e.Steps[len(e.Steps)-1]; last.Kind != "acl" || last.Matched || !strings.Contains(last.Note, "not A") {
		t.Errorf("acl step %+v", last)
	}

	// Roles the request carries, per project.
	code, e = explain(url.Values{"subject": {"Z"}, "project": {"p9"}, "role": {"publisher"}, "scope": {"projects/p9/topics/t:publish"}})
	if code != 200 || !e.Decision.Allowed || e.Decision.Role != "publisher" || e.Decision.Project != "p9" || e.Decision.Pattern != "projects/p9/topics/*:publish" {
		t.Fatalf("project role: %d %+v", code, e.Decision)
	}
	// Global roles, repeated.
	code, e = explain(url.Values{"subject": {"Z"}, "role": {"agent", "service_admin"}, "scope": {"x:y"}})
	if code != 200 || !e.Decision.Allowed || e.Decision.Role != "service_admin" {
		t.Fatalf("global roles: %d %+v", code, e.Decision)
	}
	// A stored key's principal: its own scopes, roles and project roles.
	k := s.create(`{"subject":"K","scopes":["own:*"],"roles":["agent"],"project_roles":{"p4":["publisher"]}}`)
	code, e = explain(url.Values{"key_id": {k.ID}, "scope": {"projects/p4/topics/t:publish"}})
	if code != 200 || e.Subject != "K" || !e.Decision.Allowed || e.Decision.Project != "p4" {
		t.Fatalf("key: %d %+v", code, e)
	}
	if e.Steps[0].Kind != "own" || e.Steps[0].Pattern != "own:*" {
		t.Errorf("the key's own scope is not a step: %+v", e.Steps)
	}
	if code, _ := explain(url.Values{"key_id": {"nosuchkey"}, "scope": {"a:b"}}); code != 404 {
		t.Errorf("unknown key: %d", code)
	}
	// Anonymous.
	code, e = explain(url.Values{"scope": {"streams/public:read"}})
	if code != 200 || !e.Anonymous || !e.Decision.Allowed || e.Decision.Reason != "stream_open" {
		t.Fatalf("anonymous: %d %+v", code, e)
	}

	for name, q := range map[string]url.Values{
		"no scope":             {"subject": {"A"}},
		"role without subject": {"role": {"agent"}, "scope": {"a:b"}},
		"project without role": {"subject": {"A"}, "project": {"p1"}, "scope": {"a:b"}},
		"empty role":           {"subject": {"A"}, "role": {""}, "scope": {"a:b"}},
		"long subject":         {"subject": {strings.Repeat("s", 2000)}, "scope": {"a:b"}},
		"key and subject":      {"key_id": {"abc"}, "subject": {"A"}, "scope": {"a:b"}},
	} {
		if code, e := explain(q); code != 400 || e.Message == "" {
			t.Errorf("%s: %d %+v", name, code, e)
		}
	}
}

// TestPolicyExplainToken: POST /v1/admin/policy/explain explains the
// principal of a credential as verification sees it, and refuses a
// credential that is not valid.
func TestPolicyExplainToken(t *testing.T) {
	s := newTestServer(t)
	s.v.SetPolicy(mustParse(t, amsPolicy))
	k := s.create(`{"subject":"K","scopes":["own:*"],"project_roles":{"p4":["publisher"]}}`)
	explain := func(body string) (int, explainAnswer) {
		var e explainAnswer
		code := s.do("POST", "/v1/admin/policy/explain", adminKey, body, &e)
		return code, e
	}
	code, e := explain(`{"token":"` + k.Secret + `","scope":"projects/p4/topics/t:publish"}`)
	if code != 200 || e.Subject != "K" || !e.Decision.Allowed || e.Decision.Role != "publisher" || e.Decision.Project != "p4" {
		t.Fatalf("valid key: %d %+v", code, e)
	}
	if e.Steps[0].Kind != "own" || e.Steps[0].Pattern != "own:*" {
		t.Errorf("the key's own scope is not a step: %+v", e.Steps)
	}
	code, e = explain(`{"token":"` + k.Secret + `","scope":"projects/p5/topics/t:publish"}`)
	if code != 200 || e.Decision.Allowed || e.Decision.Reason != "no_grant" {
		t.Fatalf("denied scope: %d %+v", code, e)
	}
	if strings.Contains(e.Text, k.Secret) {
		t.Error("the explanation carries the secret")
	}
	var refused struct {
		Code, Status, Message string
	}
	if code := s.do("POST", "/v1/admin/policy/explain", adminKey, `{"token":"vd_nosuchkeynosuchkeynosuchkeynosuchkey00000","scope":"a:b"}`, &refused); code != 422 || refused.Code != "INVALID_CREDENTIAL" || refused.Status != "unknown" {
		t.Errorf("unknown token: %d %+v", code, refused)
	}
	for name, body := range map[string]string{
		"no token":      `{"scope":"a:b"}`,
		"no scope":      `{"token":"` + k.Secret + `"}`,
		"unknown field": `{"token":"x","scope":"a:b","subject":"K"}`,
		"not JSON":      `token=x`,
	} {
		if code, e := explain(body); code != 400 || e.Message == "" || strings.Contains(e.Message, k.Secret) {
			t.Errorf("%s: %d %+v", name, code, e)
		}
	}
	if code := s.do("POST", "/v1/admin/policy/explain", "", `{"token":"x","scope":"a:b"}`, nil); code != 401 {
		t.Errorf("without the admin key: %d", code)
	}
}

func TestReadyzWarnsInModeNone(t *testing.T) {
	s := newTestServer(t)
	body := func() (int, string) {
		resp, err := http.Get(s.base + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, b := body(); code != 200 || b != "ready\n" {
		t.Fatalf("%d %q", code, b)
	}
	s.v.SetPolicy(mustParse(t, "mode: none\n"))
	if code, b := body(); code != 200 || !strings.Contains(b, "mode none") || !strings.HasPrefix(b, "ready\n") {
		t.Fatalf("mode none: %d %q", code, b)
	}
}
