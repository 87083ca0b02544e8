package httpapi

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify"
)

type auditAnswer struct {
	Entries []struct {
		Time    time.Time `json:"time"`
		Seq     uint64    `json:"seq"`
		Actor   string    `json:"actor"`
		Action  string    `json:"action"`
		Target  string    `json:"target"`
		Outcome string    `json:"outcome"`
		Detail  string    `json:"detail"`
	} `json:"entries"`
	NextCursor string `json:"next_cursor"`
	Code       string `json:"code"`
}

func (s *mgmtServer) audit(query string) auditAnswer {
	s.t.Helper()
	var a auditAnswer
	if code := s.do("GET", "/v1/admin/audit"+query, adminKey, "", &a); code != 200 {
		s.t.Fatalf("GET /v1/admin/audit%s: %d %+v", query, code, a)
	}
	return a
}

func TestAuditEndpoint(t *testing.T) {
	s := newMgmtServer(t, verify.RequestOptions{})
	admin := verify.AdminActor(keystore.Sum(adminKey))
	var secrets []string
	var k answer
	var created struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	if code := s.do("POST", "/v1/admin/keys", adminKey, `{"subject":"alice"}`, &created); code != 201 {
		t.Fatalf("create: %d", code)
	}
	secrets = append(secrets, created.Secret)
	const imported = "imported-secret-0123456789"
	if code := s.do("POST", "/v1/admin/keys/import", adminKey, `{"subject":"legacy","secret":"`+imported+`"}`, &k); code != 201 {
		t.Fatalf("import: %d %+v", code, k)
	}
	secrets = append(secrets, imported)
	var rotated struct {
		Secret string `json:"secret"`
	}
	s.do("POST", "/v1/admin/keys/"+created.ID+"/rotate", adminKey, `{"grace":"1m"}`, &rotated)
	secrets = append(secrets, rotated.Secret)
	s.do("DELETE", "/v1/admin/keys/"+created.ID, adminKey, "", &k)
	s.do("DELETE", "/v1/admin/keys/"+created.Secret, adminKey, "", &k) // a secret pasted as an id: 404
	s.do("POST", "/v1/admin/revocations", adminKey, `{"jti":"jti-1"}`, nil)
	tk := s.ask(`{"agent_id":"bot-1"}`, 201)
	secrets = append(secrets, tk.RequestToken)
	var ap requestAnswer
	s.do("POST", "/v1/admin/requests/"+tk.RequestToken+"/approve", adminKey, "", &ap)
	secrets = append(secrets, ap.AgentKey)
	s.do("POST", "/v1/admin/policy/reload", adminKey, "", nil) // no file: 409
	s.policy.set(amsPolicy)
	s.do("POST", "/v1/admin/policy/reload", adminKey, "", nil)

	code, raw := s.raw("GET", "/v1/admin/audit?order=oldest", adminKey, "")
	if code != 200 {
		t.Fatalf("audit: %d %s", code, raw)
	}
	for _, sec := range append(secrets, adminKey) {
		if sec == "" || strings.Contains(raw, sec) {
			t.Fatalf("the audit answer holds a secret (or one is empty): %q", sec)
		}
	}
	a := s.audit("?order=oldest")
	var got []string
	for _, e := range a.Entries {
		if e.Actor != admin {
			t.Errorf("entry %+v: actor, want %s", e, admin)
		}
		got = append(got, e.Action+" "+e.Outcome)
	}
	want := "key.create ok,key.import ok,key.rotate ok,key.revoke ok,key.revoke not_found,jwt.revoke_token ok," +
		"request.approve ok,policy.reload conflict,policy.reload ok"
	if strings.Join(got, ",") != want {
		t.Fatalf("actions:\n%s\nwant\n%s", strings.Join(got, ","), want)
	}
	if e := a.Entries[8]; e.Target != "/etc/verifyd/policy.yaml" || e.Detail != "changed mode=rbac" {
		t.Errorf("policy reload entry %+v", e)
	}
	if e := a.Entries[6]; e.Target != tk.RequestID || !strings.Contains(e.Detail, ap.KeyID) {
		t.Errorf("approval entry %+v", e)
	}

	// Newest first by default; filters; pages with a cursor.
	if d := s.audit(""); d.Entries[0].Action != "policy.reload" || d.Entries[0].Seq <= d.Entries[1].Seq {
		t.Errorf("default order: %+v", d.Entries[:2])
	}
	if f := s.audit("?target=" + created.ID); len(f.Entries) != 3 {
		t.Errorf("target filter: %+v", f.Entries)
	}
	if f := s.audit("?action=key.revoke&actor=" + url.QueryEscape(admin)); len(f.Entries) != 2 {
		t.Errorf("action and actor filter: %+v", f.Entries)
	}
	if f := s.audit("?actor=subject%3Anobody"); len(f.Entries) != 0 || f.NextCursor != "" {
		t.Errorf("unknown actor: %+v", f)
	}
	since := a.Entries[0].Time.Add(-time.Second).Unix()
	if f := s.audit(fmt.Sprintf("?since=%d&until=%s", since, url.QueryEscape(time.Now().Add(time.Minute).Format(time.RFC3339)))); len(f.Entries) != 9 {
		t.Errorf("since/until: %d entries", len(f.Entries))
	}
	var seqs []uint64
	page := s.audit("?limit=4")
	for range 5 {
		for _, e := range page.Entries {
			seqs = append(seqs, e.Seq)
		}
		if page.NextCursor == "" {
			break
		}
		page = s.audit("?limit=4&cursor=" + page.NextCursor)
	}
	if len(seqs) != 9 || seqs[0] != a.Entries[8].Seq || seqs[8] != a.Entries[0].Seq {
		t.Errorf("pages: %v", seqs)
	}

	for _, q := range []string{"?limit=0", "?limit=1001", "?limit=x", "?order=up", "?since=yesterday", "?cursor=abc", "?foo=1", "?actor=a&actor=b"} {
		var bad auditAnswer
		if code := s.do("GET", "/v1/admin/audit"+q, adminKey, "", &bad); code != 400 || bad.Code != "BAD_REQUEST" {
			t.Errorf("%s: %d %+v", q, code, bad)
		}
	}
	if code, _ := s.raw("POST", "/v1/admin/audit", adminKey, ""); code != 405 {
		t.Errorf("POST /v1/admin/audit: %d", code)
	}
}
