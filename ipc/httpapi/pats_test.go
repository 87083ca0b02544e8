package httpapi

import (
	"encoding/json"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
)

// call sends a request with headers (name, value pairs) and decodes a
// JSON answer into out (when not nil).
func (s *testServer) call(method, path, body string, out any, headers ...string) (int, http.Header) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: answer %q is not JSON: %v", method, path, b, err)
		}
	}
	return resp.StatusCode, resp.Header
}

// patAnswer is a PAT, a PAT list, a scope list or an error as the API
// answers them.
type patAnswer struct {
	ID         string         `json:"id"`
	Subject    string         `json:"subject"`
	Name       string         `json:"name"`
	Status     string         `json:"status"`
	Secret     string         `json:"secret"`
	Creator    string         `json:"creator"`
	Version    uint64         `json:"version"`
	Scopes     []patScopeBody `json:"scopes"`
	Patterns   []string       `json:"patterns"`
	CreatedAt  time.Time      `json:"created_at"`
	ExpiresAt  *time.Time     `json:"expires_at"`
	LastUsedAt *time.Time     `json:"last_used_at"`
	PATs       []patAnswer    `json:"pats"`
	Code       string         `json:"code"`
	Message    string         `json:"message"`
}

func withBearer(token string) []string { return []string{"Authorization", "Bearer " + token} }
func withAdmin() []string              { return []string{"X-Admin-Key", adminKey} }

func (s *testServer) pat(method, path, body string, want int, headers []string) patAnswer {
	s.t.Helper()
	var a patAnswer
	if code, _ := s.call(method, path, body, &a, headers...); code != want {
		s.t.Fatalf("%s %s %s: %d %+v, want %d", method, path, body, code, a, want)
	}
	return a
}

// allPATs lists every PAT through the admin.
func (s *testServer) allPATs() []patAnswer {
	s.t.Helper()
	return s.pat("GET", "/v1/pats", "", 200, withAdmin()).PATs
}

func TestPATLifecycleAsOwner(t *testing.T) {
	s := newTestServer(t)
	alice := s.create(`{"subject":"alice","scopes":["tool:data:read"]}`).Secret
	owner := withBearer(alice)

	p := s.pat("POST", "/v1/pats", `{"name":"ci","description":"pipeline","duration":"48h","scopes":[
		{"optional_domain_id":"d1","entity_type":"clients","operation":"create","entity_id":"*"},
		{"optional_domain_id":"d1","entity_type":"dashboards","operation":"view","entity_id":"db-1"}]}`, 201, owner)
	if p.Subject != "alice" || p.Creator != "subject:alice" || p.Status != "active" || !strings.HasPrefix(p.Secret, "pat_"+p.ID+"_") {
		t.Fatalf("created PAT = %+v", p)
	}
	if p.ExpiresAt == nil || p.ExpiresAt.Sub(p.CreatedAt) != 48*time.Hour {
		t.Errorf("expiry %v after creation %v, want 48h", p.ExpiresAt, p.CreatedAt)
	}
	if want := []string{"domains/d1/clients:create", "domains/d1/dashboards/db-1:read"}; !slices.Equal(p.Patterns, want) {
		t.Errorf("patterns = %q, want %q", p.Patterns, want)
	}
	token := p.Secret
	verifyStatus := func(token, scope string) int {
		code, _ := s.call("POST", "/v1/verify", `{"token":"`+token+`","scope":"`+scope+`"}`, nil)
		return code
	}
	if c := verifyStatus(token, "domains/d1/clients:create"); c != 200 {
		t.Errorf("PAT verifies %d for its scope", c)
	}

	if l := s.pat("GET", "/v1/pats", "", 200, owner).PATs; len(l) != 1 || l[0].ID != p.ID || l[0].Secret != "" {
		t.Errorf("owner's list = %+v", l)
	}
	got := s.pat("GET", "/v1/pats/"+p.ID, "", 200, owner)
	if got.Secret != "" || got.Name != "ci" || len(got.Scopes) != 2 || got.Scopes[1].Operation != "view" {
		t.Errorf("GET = %+v", got)
	}

	// Add: the very next verification is allowed.
	const publish = "domains/d1/channels/ch-42:publish"
	if c := verifyStatus(token, publish); c != 403 {
		t.Fatalf("before add: %d", c)
	}
	s.pat("PATCH", "/v1/pats/"+p.ID+"/scope/add", `{"scopes":[{"optional_domain_id":"d1","entity_type":"messages","operation":"publish","entity_id":"ch-42"}]}`, 200, owner)
	if c := verifyStatus(token, publish); c != 200 {
		t.Errorf("after add: %d", c)
	}
	sc := s.pat("GET", "/v1/pats/"+p.ID+"/scopes", "", 200, owner)
	want := []patScopeBody{{"d1", "clients", "create", "*"}, {"d1", "dashboards", "view", "db-1"}, {"d1", "messages", "publish", "ch-42"}}
	if !reflect.DeepEqual(sc.Scopes, want) || len(sc.Patterns) != 3 {
		t.Errorf("scopes = %+v / %q, want %+v", sc.Scopes, sc.Patterns, want)
	}

	// Remove, by the channel's spelling of the same grant.
	s.pat("PATCH", "/v1/pats/"+p.ID+"/scope/remove", `{"scopes":[{"optional_domain_id":"d1","entity_type":"channels","operation":"publish","entity_id":"ch-42"}]}`, 200, owner)
	if c := verifyStatus(token, publish); c != 403 {
		t.Errorf("after remove: %d", c)
	}

	// Reset: a new secret, the old one refused at once.
	r := s.pat("POST", "/v1/pats/"+p.ID+"/reset", `{"duration":"1h"}`, 200, owner)
	if r.ID != p.ID || r.Secret == "" || r.Secret == token || r.ExpiresAt == nil || time.Until(*r.ExpiresAt) > time.Hour {
		t.Fatalf("reset = %+v", r)
	}
	if c := verifyStatus(token, ""); c != 401 {
		t.Errorf("old secret after reset: %d", c)
	}
	if c := verifyStatus(r.Secret, "domains/d1/clients:create"); c != 200 {
		t.Errorf("new secret: %d", c)
	}

	d := s.pat("DELETE", "/v1/pats/"+p.ID, "", 200, owner)
	if d.Status != "revoked" {
		t.Errorf("after DELETE: %+v", d)
	}
	if c := verifyStatus(r.Secret, ""); c != 401 {
		t.Errorf("revoked PAT verifies %d", c)
	}
	s.pat("DELETE", "/v1/pats/"+p.ID, "", 200, owner) // idempotent
	if a := s.pat("POST", "/v1/pats/"+p.ID+"/reset", "", 409, owner); a.Code != "CONFLICT" {
		t.Errorf("reset of a revoked PAT: %+v", a)
	}
}

func TestPATAuthentication(t *testing.T) {
	s := newTestServer(t)
	alice := s.create(`{"subject":"alice"}`).Secret
	bob := s.create(`{"subject":"bob"}`).Secret
	mine := s.pat("POST", "/v1/pats", `{"name":"a"}`, 201, withBearer(alice))
	theirs := s.pat("POST", "/v1/pats", `{"name":"b"}`, 201, withBearer(bob))

	// No credential, a bad one, a wrong admin key (which is not bypassed
	// by a good Bearer credential): 401.
	for _, h := range [][]string{
		nil,
		withBearer("vk_" + strings.Repeat("A", 40)),
		withBearer(strings.Repeat("z", 43)),
		{"Authorization", "Basic " + alice},
		{"X-Api-Key", alice},
		append([]string{"X-Admin-Key", "wrong-admin-key-0123456789"}, withBearer(alice)...),
	} {
		var a patAnswer
		code, hdr := s.call("POST", "/v1/pats", `{"name":"x"}`, &a, h...)
		if code != 401 || a.Code != "UNAUTHORIZED" || hdr.Get("WWW-Authenticate") == "" {
			t.Errorf("headers %q: %d %+v %q", h, code, a, hdr.Get("WWW-Authenticate"))
		}
	}
	// A PAT cannot manage PATs, not even its own.
	for _, r := range []struct{ method, path string }{{"POST", "/v1/pats"}, {"GET", "/v1/pats"}, {"GET", "/v1/pats/" + mine.ID}, {"DELETE", "/v1/pats/" + mine.ID}} {
		if a := s.pat(r.method, r.path, `{"name":"x"}`, 403, withBearer(mine.Secret)); !strings.Contains(a.Message, "personal access token cannot") {
			t.Errorf("%s %s with a PAT: %+v", r.method, r.path, a)
		}
	}
	// Another subject's PAT does not exist for alice.
	for _, r := range []struct{ method, path, body string }{
		{"GET", "/v1/pats/" + theirs.ID, ""},
		{"GET", "/v1/pats/" + theirs.ID + "/scopes", ""},
		{"PATCH", "/v1/pats/" + theirs.ID + "/scope/add", `{"scopes":[{"optional_domain_id":"d1","entity_type":"clients","operation":"read","entity_id":"*"}]}`},
		{"PATCH", "/v1/pats/" + theirs.ID + "/scope/remove", `{"scopes":[{"optional_domain_id":"d1","entity_type":"clients","operation":"read","entity_id":"*"}]}`},
		{"POST", "/v1/pats/" + theirs.ID + "/reset", ""},
		{"DELETE", "/v1/pats/" + theirs.ID, ""},
		{"GET", "/v1/pats/no-such-id", ""},
	} {
		a := s.pat(r.method, r.path, r.body, 404, withBearer(alice))
		if a.Code != "NOT_FOUND" || a.Message != "no personal access token with this id" {
			t.Errorf("%s %s: %+v", r.method, r.path, a)
		}
	}
	if got := s.pat("GET", "/v1/pats/"+theirs.ID, "", 200, withAdmin()); got.Version != theirs.Version || got.Status != "active" {
		t.Errorf("bob's PAT changed: %+v", got)
	}
	// An owner cannot name another subject.
	s.pat("GET", "/v1/pats?subject=bob", "", 403, withBearer(alice))
	s.pat("POST", "/v1/pats", `{"subject":"bob","name":"x"}`, 403, withBearer(alice))
	s.pat("GET", "/v1/pats?subject=alice", "", 200, withBearer(alice))

	// The admin sees every PAT, filters by subject, and acts on any.
	if l := s.allPATs(); len(l) != 2 {
		t.Errorf("admin lists %d PATs", len(l))
	}
	if l := s.pat("GET", "/v1/pats?subject=bob", "", 200, withAdmin()).PATs; len(l) != 1 || l[0].ID != theirs.ID {
		t.Errorf("admin ?subject=bob: %+v", l)
	}
	s.pat("GET", "/v1/pats/"+theirs.ID+"?subject=alice", "", 404, withAdmin())
	made := s.pat("POST", "/v1/pats?subject=carol", `{"name":"c"}`, 201, withAdmin())
	if made.Subject != "carol" || made.Creator != "admin" {
		t.Errorf("admin-made PAT = %+v", made)
	}
	if l := s.allPATs(); len(l) != 3 {
		t.Errorf("%d PATs after the refused calls and one admin create, want 3", len(l))
	}
}

func TestPATBadRequests(t *testing.T) {
	s := newTestServer(t)
	alice := withBearer(s.create(`{"subject":"alice"}`).Secret)
	p := s.pat("POST", "/v1/pats", `{"name":"a","scopes":[{"optional_domain_id":"d1","entity_type":"clients","operation":"read","entity_id":"*"}]}`, 201, alice)
	add := "/v1/pats/" + p.ID + "/scope/add"
	remove := "/v1/pats/" + p.ID + "/scope/remove"
	tuple := func(d, typ, op, id string) string {
		return `{"scopes":[{"optional_domain_id":"` + d + `","entity_type":"` + typ + `","operation":"` + op + `","entity_id":"` + id + `"}]}`
	}
	for _, tc := range []struct {
		method, path, body string
		headers            []string
		want               string
	}{
		{"POST", "/v1/pats", `{}`, alice, "name is required"},
		{"POST", "/v1/pats", `{"name":"x","duration":"soon"}`, alice, `duration "soon" is not a positive duration`},
		{"POST", "/v1/pats", `{"name":"x","duration":"0s"}`, alice, `duration "0s" is not a positive duration`},
		{"POST", "/v1/pats", `{"name":"x","duration":"-1h"}`, alice, "not a positive duration"},
		{"POST", "/v1/pats", `{"name":"x","duration":"8761h"}`, alice, "longer than the maximum of 8760h0m0s"},
		{"POST", "/v1/pats", `{"name":"x","expires_in":"1h"}`, alice, `unknown field "expires_in"`},
		{"POST", "/v1/pats", `{"name":"x"`, alice, "invalid JSON"},
		{"POST", "/v1/pats", ``, alice, "request body is empty"},
		{"POST", "/v1/pats", `{"name":"x","scopes":[{"optional_domain_id":"d1","entity_type":"things","operation":"read","entity_id":"*"}]}`, alice, "scopes[0]: PAT scope"},
		{"POST", "/v1/pats", `{"name":"x"}`, withAdmin(), "subject is required"},
		{"POST", "/v1/pats?subject=a", `{"name":"x","subject":"b"}`, withAdmin(), "differ"},
		{"PATCH", add, `{"scopes":[]}`, alice, "scopes is required"},
		{"PATCH", add, `{}`, alice, "scopes is required"},
		{"PATCH", add, tuple("d1", "things", "read", "*"), alice, "unknown entity type (clients, channels, groups, dashboards, messages, domains)"},
		{"PATCH", add, tuple("d1", "clients", "publish", "*"), alice, "operation not valid for clients"},
		{"PATCH", add, tuple("d1", "clients", "create", "c-1"), alice, `entity id must be "*"`},
		{"PATCH", add, tuple("d/1", "clients", "read", "*"), alice, "invalid domain id"},
		{"PATCH", add, tuple("", "clients", "read", ""), alice, "scopes[0]: optional_domain_id, entity_id required"},
		{"PATCH", add, `{"scopes":[{"domain":"d1"}]}`, alice, `unknown field "domain"`},
		{"PATCH", remove, tuple("d1", "clients", "fly", "*"), alice, "operation not valid"},
		{"POST", "/v1/pats/" + p.ID + "/reset", `{"duration":"forever"}`, alice, "not a positive duration"},
		{"POST", "/v1/pats/" + p.ID + "/reset", `{"duration":"9000h"}`, alice, "longer than the maximum"},
	} {
		var a patAnswer
		code, _ := s.call(tc.method, tc.path, tc.body, &a, tc.headers...)
		if code != 400 || a.Code != "BAD_REQUEST" || !strings.Contains(a.Message, tc.want) {
			t.Errorf("%s %s %s: %d %q, want 400 naming %q", tc.method, tc.path, tc.body, code, a.Message, tc.want)
		}
	}
	l := s.allPATs()
	if len(l) != 1 || l[0].Version != p.Version || len(l[0].Scopes) != 1 || !slices.Equal(l[0].Patterns, []string{"domains/d1/clients/*:read"}) {
		t.Errorf("state after bad requests: %+v", l)
	}

	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"PUT", "/v1/pats", 405},
		{"PATCH", "/v1/pats/" + p.ID, 405},
		{"GET", add, 405},
		{"POST", remove, 405},
		{"GET", "/v1/pats/" + p.ID + "/reset", 405},
		{"POST", "/v1/pats/" + p.ID + "/scopes", 405},
		{"GET", "/v1/pats/" + p.ID + "/rotate", 404},
	} {
		s.pat(tc.method, tc.path, "", tc.want, alice)
	}
}

// TestPATOwnerByJWT: a trusted JWT manages the PATs of its subject.
func TestPATOwnerByJWT(t *testing.T) {
	s := newIntrospectServer(t)
	now := s.clock().Unix()
	tok := s.hs256(map[string]any{"iss": "https://issuer.example", "aud": "verifyd", "sub": "Carol@Example.com", "exp": now + 600})
	p := s.pat("POST", "/v1/pats", `{"name":"from a JWT"}`, 201, withBearer(tok))
	if p.Subject != "carol@example.com" || p.Creator != "subject:carol@example.com" {
		t.Errorf("PAT made with a JWT = %+v", p)
	}
	if l := s.pat("GET", "/v1/pats", "", 200, withBearer(tok)).PATs; len(l) != 1 || l[0].ID != p.ID {
		t.Errorf("list with the JWT: %+v", l)
	}
	expired := s.hs256(map[string]any{"iss": "https://issuer.example", "aud": "verifyd", "sub": "carol@example.com", "exp": now - 600})
	if a := s.pat("GET", "/v1/pats", "", 401, withBearer(expired)); !strings.Contains(a.Message, "invalid_claims") && !strings.Contains(a.Message, "expired") {
		t.Errorf("expired JWT: %+v", a)
	}
}

// TestPATAudit: every PAT change is in the audit trail with its actor (the
// owner's subject, or the admin key's fingerprint) and outcome, and no
// secret is anywhere in it.
func TestPATAudit(t *testing.T) {
	s := newTestServer(t)
	key := s.create(`{"subject":"alice"}`).Secret
	owner := withBearer(key)
	p := s.pat("POST", "/v1/pats", `{"name":"ci","scopes":[{"optional_domain_id":"d1","entity_type":"clients","operation":"read","entity_id":"*"}]}`, 201, owner)
	s.pat("PATCH", "/v1/pats/"+p.ID+"/scope/add", `{"scopes":[{"optional_domain_id":"d1","entity_type":"groups","operation":"list","entity_id":"*"}]}`, 200, withAdmin())
	s.pat("PATCH", "/v1/pats/"+p.ID+"/scope/add", `{"scopes":[{"optional_domain_id":"d1","entity_type":"groups","operation":"fly","entity_id":"*"}]}`, 400, owner)
	s.pat("PATCH", "/v1/pats/"+p.ID+"/scope/remove", `{"scopes":[{"optional_domain_id":"d1","entity_type":"clients","operation":"read","entity_id":"*"}]}`, 200, owner)
	r := s.pat("POST", "/v1/pats/"+p.ID+"/reset", "", 200, owner)
	s.pat("DELETE", "/v1/pats/"+p.ID, "", 200, withAdmin())
	s.pat("POST", "/v1/pats/"+p.ID+"/reset", "", 409, owner)

	var page struct {
		Entries []struct {
			Actor, Action, Target, Outcome, Detail string
		} `json:"entries"`
	}
	code, _ := s.call("GET", "/v1/admin/audit?order=oldest&target="+p.ID, "", &page, withAdmin()...)
	if code != 200 {
		t.Fatalf("audit: %d", code)
	}
	var got []string
	for _, e := range page.Entries {
		actor := e.Actor
		if strings.HasPrefix(actor, "admin:") {
			actor = "admin"
		}
		got = append(got, actor+" "+e.Action+" "+e.Outcome)
		if !strings.Contains(e.Detail, "subject=alice") {
			t.Errorf("entry %+v lacks the PAT's subject", e)
		}
	}
	want := []string{
		"subject:alice pat.create ok",
		"admin pat.scope_add ok",
		"subject:alice pat.scope_add invalid",
		"subject:alice pat.scope_remove ok",
		"subject:alice pat.reset ok",
		"admin pat.revoke ok",
		"subject:alice pat.reset conflict",
	}
	if !slices.Equal(got, want) {
		t.Errorf("audit trail of the PAT:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	req, _ := http.NewRequest("GET", s.base+"/v1/admin/audit?limit=1000", nil)
	req.Header.Set("X-Admin-Key", adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, secret := range []string{key, p.Secret, r.Secret, p.Secret[len("pat_"+p.ID+"_"):], adminKey} {
		if strings.Contains(string(raw), secret) {
			t.Errorf("the audit trail holds a secret")
		}
	}
}

// TestPATOwnerAuthIsThrottled: guessing credentials at /v1/pats counts as
// guessing at /v1/verify does, so the PAT API is no way around the throttle.
func TestPATOwnerAuthIsThrottled(t *testing.T) {
	s := newThrottledServer(t) // no trusted proxy: 127.0.0.1 is a client
	good := s.create(`{"subject":"alice"}`).Secret
	for range 3 {
		s.wantAnswer("GET", "/v1/pats", "", 401, "UNAUTHORIZED", "Authorization", "Bearer unknown-key-0123456789")
	}
	s.wantAnswer("GET", "/v1/pats", "", 429, "RATE_LIMITED", "Authorization", "Bearer "+good)
	s.wantAnswer("POST", "/v1/verify", `{"token":"`+good+`"}`, 429, "rate_limited")
	// The admin key is not throttled.
	s.wantAnswer("GET", "/v1/pats", "", 200, "", "X-Admin-Key", adminKey)
}
