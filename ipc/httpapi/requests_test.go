package httpapi

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify"
	"github.com/verifyd/verifyd/verify/credential"
)

// mgmtServer is a test server whose Manager has request options and a
// settable clock, with a policy admin to reload.
type mgmtServer struct {
	*testServer
	reg    *prometheus.Registry
	policy *fakePolicyAdmin
	clock  *atomic.Int64 // Unix nanoseconds
}

func (m *mgmtServer) advance(d time.Duration) { m.clock.Add(int64(d)) }

func newMgmtServer(t *testing.T, ro verify.RequestOptions) *mgmtServer {
	t.Helper()
	reg := prometheus.NewRegistry()
	store, err := keystore.Open(t.TempDir(), &keystore.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	ck, _ := credential.NewChecksumKey()
	minter, err := credential.NewMinter(ck)
	if err != nil {
		t.Fatal(err)
	}
	clock := new(atomic.Int64)
	clock.Store(time.Now().UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	v, err := verify.New(store, minter, &verify.Options{Registerer: reg, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	m, err := verify.NewManagerWith(store, minter, keystore.Sum(adminKey), &verify.ManagerOptions{Requests: ro, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	policy := &fakePolicyAdmin{v: v}
	srv, err := New(Options{Verifier: v, Manager: m, Gatherer: reg, Registerer: reg, Policy: policy})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		srv.Shutdown(context.Background())
		<-done
	})
	return &mgmtServer{testServer: &testServer{t: t, base: "http://" + ln.Addr().String(), v: v}, reg: reg, policy: policy, clock: clock}
}

// raw sends a request and returns the status and the body as text.
func (s *testServer) raw(method, path, admin, body string) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, s.base+path, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if admin != "" {
		req.Header.Set("X-Admin-Key", admin)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type ticketAnswer struct {
	RequestToken string    `json:"request_token"`
	RequestID    string    `json:"request_id"`
	Status       string    `json:"status"`
	ExpiresAt    time.Time `json:"expires_at"`
	Code         string    `json:"code"`
	Message      string    `json:"message"`
}

type requestAnswer struct {
	ID        string `json:"id"`
	RequestID string `json:"request_id"`
	AgentID   string `json:"agent_id"`
	Status    string `json:"status"`
	KeyID     string `json:"key_id"`
	Client    string `json:"client_addr"`
	DecidedBy string `json:"decided_by"`
	AgentKey  string `json:"agent_key"`
	Code      string `json:"code"`
	Message   string `json:"message"`
}

type requestListAnswer struct {
	Requests []requestAnswer `json:"requests"`
}

func (s *mgmtServer) ask(body string, want int) ticketAnswer {
	s.t.Helper()
	var a ticketAnswer
	if code := s.do("POST", "/v1/auth/request", "", body, &a); code != want {
		s.t.Fatalf("POST /v1/auth/request %s: %d %+v, want %d", body, code, a, want)
	}
	return a
}

// state returns the counts of requests and keys, to check that refused
// calls change nothing.
func (s *mgmtServer) state() string {
	s.t.Helper()
	var rl requestListAnswer
	var kl struct {
		Keys []struct {
			ID, Status string
		} `json:"keys"`
	}
	s.do("GET", "/v1/admin/requests?status=all", adminKey, "", &rl)
	s.do("GET", "/v1/admin/keys", adminKey, "", &kl)
	return fmt.Sprintf("%+v %+v", rl, kl)
}

func TestAccessRequestFlow(t *testing.T) {
	s := newMgmtServer(t, verify.RequestOptions{})
	body := `{"agent_id":"bot-7","name":"Bot 7","description":"mailbox please","callback_url":"https://bot.example/cb"}`
	tk := s.ask(body, 201)
	if len(tk.RequestToken) != 43 || len(tk.RequestID) != 22 || tk.Status != "pending" || tk.ExpiresAt.IsZero() {
		t.Fatalf("ticket %+v", tk)
	}
	if again := s.ask(body, 200); again.RequestToken != tk.RequestToken || again.RequestID != tk.RequestID {
		t.Fatalf("repeat answered %+v, want the same token", again)
	}
	var st requestAnswer
	if code := s.do("GET", "/v1/auth/status/"+tk.RequestToken, "", "", &st); code != 200 || st.Status != "pending" || st.RequestID != tk.RequestID {
		t.Fatalf("status: %d %+v", code, st)
	}
	code, listing := s.raw("GET", "/v1/admin/requests", adminKey, "")
	if code != 200 || !strings.Contains(listing, tk.RequestID) || !strings.Contains(listing, `"client_addr":"127.0.0.1"`) || strings.Contains(listing, tk.RequestToken) {
		t.Fatalf("pending list: %d %s", code, listing)
	}

	var ap requestAnswer
	if code := s.do("POST", "/v1/admin/requests/"+tk.RequestID+"/approve", adminKey, "", &ap); code != 200 || len(ap.AgentKey) != 43 || ap.AgentID != "bot-7" || ap.KeyID == "" {
		t.Fatalf("approve: %d %+v", code, ap)
	}
	var v answer
	if code := s.do("POST", "/v1/verify", "", fmt.Sprintf(`{"token":%q,"scope":"mailbox:bot-7:read"}`, ap.AgentKey), &v); code != 200 || v.Subject != "bot-7" {
		t.Fatalf("the approved key: %d %+v", code, v)
	}
	var conflict requestAnswer
	if code := s.do("POST", "/v1/admin/requests/"+tk.RequestID+"/approve", adminKey, "", &conflict); code != 409 || conflict.Code != "CONFLICT" {
		t.Fatalf("approve twice: %d %+v", code, conflict)
	}
	code, statusBody := s.raw("GET", "/v1/auth/status/"+tk.RequestToken, "", "")
	if code != 200 || !strings.Contains(statusBody, `"status":"approved"`) || strings.Contains(statusBody, ap.AgentKey) {
		t.Fatalf("status after approval: %d %s", code, statusBody)
	}
	// A live key: no new request.
	var live ticketAnswer
	if code := s.do("POST", "/v1/auth/request", "", `{"agent_id":"bot-7"}`, &live); code != 409 || !strings.Contains(live.Message, "live key") {
		t.Fatalf("request with a live key: %d %+v", code, live)
	}
	var rev struct {
		AgentID string   `json:"agent_id"`
		Revoked []string `json:"revoked"`
	}
	if code := s.do("DELETE", "/v1/admin/agents/bot-7", adminKey, "", &rev); code != 200 || len(rev.Revoked) != 1 || rev.Revoked[0] != ap.KeyID {
		t.Fatalf("revoke agent: %d %+v", code, rev)
	}
	if code := s.do("POST", "/v1/verify", "", fmt.Sprintf(`{"token":%q}`, ap.AgentKey), &v); code != 401 {
		t.Fatalf("the revoked agent key: %d %+v", code, v)
	}
	second := s.ask(`{"agent_id":"bot-7"}`, 201)
	if second.RequestToken == tk.RequestToken {
		t.Fatal("a new request reused the old token")
	}
	// Deny by token, then approve: 409.
	var denied requestAnswer
	if code := s.do("POST", "/v1/admin/requests/"+second.RequestToken+"/deny", adminKey, "", &denied); code != 200 || denied.Status != "denied" || denied.DecidedBy == "" {
		t.Fatalf("deny: %d %+v", code, denied)
	}
	if code := s.do("POST", "/v1/admin/requests/"+second.RequestID+"/approve", adminKey, "", &conflict); code != 409 {
		t.Fatalf("approve after deny: %d %+v", code, conflict)
	}
	var one requestAnswer
	if code := s.do("GET", "/v1/admin/requests/"+second.RequestID, adminKey, "", &one); code != 200 || one.Status != "denied" {
		t.Fatalf("get one request: %d %+v", code, one)
	}
}

func TestAccessRequestExpiry(t *testing.T) {
	s := newMgmtServer(t, verify.RequestOptions{TTL: time.Hour})
	tk := s.ask(`{"agent_id":"late"}`, 201)
	s.advance(time.Hour + time.Second)
	var st requestAnswer
	if code := s.do("GET", "/v1/auth/status/"+tk.RequestToken, "", "", &st); code != 200 || st.Status != "expired" {
		t.Fatalf("status after the TTL: %d %+v", code, st)
	}
	var a requestAnswer
	if code := s.do("POST", "/v1/admin/requests/"+tk.RequestID+"/approve", adminKey, "", &a); code != 409 || !strings.Contains(a.Message, "expired") {
		t.Fatalf("approve an expired request: %d %+v", code, a)
	}
	var l requestListAnswer
	if s.do("GET", "/v1/admin/requests", adminKey, "", &l); len(l.Requests) != 0 {
		t.Errorf("pending list holds an expired request: %+v", l)
	}
	if s.do("GET", "/v1/admin/requests?status=expired", adminKey, "", &l); len(l.Requests) != 1 {
		t.Errorf("expired list: %+v", l)
	}
	if again := s.ask(`{"agent_id":"late"}`, 201); again.RequestToken == tk.RequestToken {
		t.Error("asking after expiry returned the expired request's token")
	}
}

func TestAccessRequestBounds(t *testing.T) {
	s := newMgmtServer(t, verify.RequestOptions{MaxPendingPerAddress: 2})
	s.ask(`{"agent_id":"a1"}`, 201)
	s.ask(`{"agent_id":"a2"}`, 201)
	before := s.state()
	var a ticketAnswer
	if code := s.do("POST", "/v1/auth/request", "", `{"agent_id":"a3"}`, &a); code != 429 || a.Code != "RATE_LIMITED" {
		t.Fatalf("third pending request from one address: %d %+v", code, a)
	}
	if after := s.state(); after != before {
		t.Errorf("a refused request changed the state:\n%s\n%s", before, after)
	}
	s.ask(`{"agent_id":"a1"}`, 200) // a repeat still answers
}

func TestAccessRequestBadInput(t *testing.T) {
	s := newMgmtServer(t, verify.RequestOptions{})
	tk := s.ask(`{"agent_id":"ok-agent"}`, 201)
	before := s.state()
	for _, tc := range []struct {
		method, path, admin, body string
		want                      int
	}{
		{"POST", "/v1/auth/request", "", ``, 400},
		{"POST", "/v1/auth/request", "", `{"agent_id":"x","extra":1}`, 400},
		{"POST", "/v1/auth/request", "", `{"agent_id":"x"`, 400},
		{"POST", "/v1/auth/request", "", `{"agent_id":"x"} {}`, 400},
		{"POST", "/v1/auth/request", "", `{"agent_id":""}`, 400},
		{"POST", "/v1/auth/request", "", `{"agent_id":"a:b"}`, 400},
		{"POST", "/v1/auth/request", "", `{"agent_id":"a","callback_url":"javascript:alert(1)"}`, 400},
		{"POST", "/v1/auth/request", "", `{"agent_id":"a","callback_url":"http://u:p@h/"}`, 400},
		{"POST", "/v1/auth/request", "", `{"agent_id":"a","name":"` + strings.Repeat("n", 200) + `"}`, 400},
		{"GET", "/v1/auth/request", "", ``, 405},
		{"POST", "/v1/auth/status/" + tk.RequestToken, "", ``, 405},
		{"GET", "/v1/auth/status/" + tk.RequestID, "", ``, 404},
		{"GET", "/v1/auth/status/" + strings.Repeat("A", 43), "", ``, 404},
		{"GET", "/v1/auth/status/", "", ``, 404},
		{"GET", "/v1/auth/other", "", ``, 404},
		{"POST", "/v1/admin/requests/" + strings.Repeat("A", 22) + "/approve", adminKey, ``, 404},
		{"POST", "/v1/admin/requests/" + strings.Repeat("A", 43) + "/deny", adminKey, ``, 404},
		{"POST", "/v1/admin/requests/nonsense/approve", adminKey, ``, 404},
		{"POST", "/v1/admin/requests/" + tk.RequestID + "/approve", adminKey, `{"roles":"agent"}`, 400},
		{"POST", "/v1/admin/requests/" + tk.RequestID + "/approve", adminKey, `{"expires_in":"-1h"}`, 400},
		{"POST", "/v1/admin/requests/" + tk.RequestID + "/approve", adminKey, `{"scopes":["bad scope"]}`, 400},
		{"POST", "/v1/admin/requests/" + tk.RequestID + "/approve", adminKey, `{"unknown":1}`, 400},
		{"POST", "/v1/admin/requests/" + tk.RequestID + "/deny", adminKey, `{"reason":"x"}`, 400},
		{"POST", "/v1/admin/requests/" + tk.RequestID + "/other", adminKey, ``, 404},
		{"GET", "/v1/admin/requests/" + tk.RequestID + "/approve", adminKey, ``, 405},
		{"GET", "/v1/admin/requests?status=bogus", adminKey, ``, 400},
		{"GET", "/v1/admin/requests?state=pending", adminKey, ``, 400},
		{"POST", "/v1/admin/requests", adminKey, ``, 405},
		{"DELETE", "/v1/admin/agents/nobody", adminKey, ``, 404},
		{"DELETE", "/v1/admin/agents/", adminKey, ``, 404},
		{"DELETE", "/v1/admin/agents/a/b", adminKey, ``, 404},
		{"GET", "/v1/admin/agents/ok-agent", adminKey, ``, 405},
		{"GET", "/v1/admin/requests", "", ``, 401},
		{"POST", "/v1/admin/requests/" + tk.RequestID + "/approve", "wrong-admin-key-000000", ``, 401},
		{"DELETE", "/v1/admin/agents/ok-agent", "", ``, 401},
		{"GET", "/v1/admin/audit", "wrong-admin-key-000000", ``, 401},
	} {
		code, body := s.raw(tc.method, tc.path, tc.admin, tc.body)
		if code != tc.want || !strings.Contains(body, `"code"`) || !strings.Contains(body, `"message"`) {
			t.Errorf("%s %s %s: %d %s, want %d with an error body", tc.method, tc.path, tc.body, code, body, tc.want)
		}
	}
	if after := s.state(); after != before {
		t.Errorf("refused calls changed the state:\n%s\n%s", before, after)
	}
	// Refused admin calls are counted, not audited.
	if n := s.authFailures("wrong"); n != 2 {
		t.Errorf("wrong admin keys counted %v, want 2", n)
	}
	if n := s.authFailures("missing"); n != 2 {
		t.Errorf("missing admin keys counted %v, want 2", n)
	}
}

// authFailures returns the admin auth failure count of reason.
func (s *mgmtServer) authFailures(reason string) float64 {
	s.t.Helper()
	families, err := s.reg.Gather()
	if err != nil {
		s.t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "verifyd_http_admin_auth_failures_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			if m.GetLabel()[0].GetValue() == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	s.t.Fatalf("no admin auth failure series %q", reason)
	return 0
}
