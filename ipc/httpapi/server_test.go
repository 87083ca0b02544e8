package httpapi

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify"
	"github.com/verifyd/verifyd/verify/credential"
	"github.com/verifyd/verifyd/verify/trust"
)

const adminKey = "test-admin-key-0123456789"

// testServer is a real Server over a real store, listening on loopback.
type testServer struct {
	t    *testing.T
	base string
	v    *verify.Verifier
}

func newTestServer(t *testing.T) *testServer {
	t.Helper()
	return newTestServerWith(t, nil)
}

// newTestServerWith starts a test server whose trust registry is registry.
func newTestServerWith(t *testing.T, registry *trust.Registry) *testServer {
	t.Helper()
	return newTestServerOpts(t, registry, nil)
}

// newTestServerOpts starts a test server whose trust registry is registry
// and whose policy admin is made by policy from the verifier (nil: none).
func newTestServerOpts(t *testing.T, registry *trust.Registry, policy func(*verify.Verifier) PolicyAdmin) *testServer {
	t.Helper()
	return newTestServerConfig(t, registry, policy, nil)
}

// newTestServerConfig is newTestServerOpts whose Options configure
// changes (when not nil) before the server is made.
func newTestServerConfig(t *testing.T, registry *trust.Registry, policy func(*verify.Verifier) PolicyAdmin, configure func(*Options)) *testServer {
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
	v, err := verify.New(store, minter, &verify.Options{Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	var pa PolicyAdmin
	if policy != nil {
		pa = policy(v)
	}
	opts := Options{
		Verifier:   v,
		Manager:    verify.NewManager(store, minter, keystore.Sum(adminKey), nil),
		Gatherer:   reg,
		Registerer: reg,
		Trust:      registry,
		Policy:     pa,
	}
	if configure != nil {
		configure(&opts)
	}
	srv, err := New(opts)
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
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("Serve after Shutdown: %v", err)
		}
	})
	return &testServer{t: t, base: "http://" + ln.Addr().String(), v: v}
}

// do sends a request and decodes a JSON answer into out (when not nil).
func (s *testServer) do(method, path, admin string, body string, out any) int {
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
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("%s %s: answer %q is not JSON: %v", method, path, b, err)
		}
	}
	return resp.StatusCode
}

type answer struct {
	Allow   bool     `json:"allow"`
	Status  string   `json:"status"`
	Subject string   `json:"subject"`
	Roles   []string `json:"roles"`
	Grant   string   `json:"grant"`
	Code    string   `json:"code"`
	Error   string   `json:"error"`
	Message string   `json:"message"`
	ID      string   `json:"id"`
	Secret  string   `json:"secret"`
	Expires *string  `json:"expires_at"`
	Prev    *string  `json:"previous_valid_until"`
	Keys    []answer `json:"keys"`
}

func (s *testServer) create(body string) answer {
	s.t.Helper()
	var a answer
	if code := s.do("POST", "/v1/admin/keys", adminKey, body, &a); code != 201 {
		s.t.Fatalf("create %s: %d %+v", body, code, a)
	}
	return a
}

func (s *testServer) count() int {
	var a answer
	if code := s.do("GET", "/v1/admin/keys", adminKey, "", &a); code != 200 {
		s.t.Fatalf("list: %d", code)
	}
	return len(a.Keys)
}

func TestVerifyEndpoint(t *testing.T) {
	s := newTestServer(t)
	k := s.create(`{"subject":"alice","scopes":["tool:data:*"],"roles":["publisher"],"expires_in":"1h"}`)
	cases := []struct {
		name, body string
		status     int
		reason     string
	}{
		{"allowed", `{"token":"` + k.Secret + `","scope":"tool:data:read"}`, 200, "ok"},
		{"authenticate only", `{"token":"` + k.Secret + `"}`, 200, "ok"},
		{"forbidden", `{"token":"` + k.Secret + `","scope":"tool:other:read"}`, 403, "forbidden"},
		{"invalid scope", `{"token":"` + k.Secret + `","scope":"tool::read"}`, 400, "invalid_scope"},
		{"unknown", `{"token":"` + strings.Repeat("z", 43) + `"}`, 401, "unknown"},
		{"malformed", `{"token":"short"}`, 401, "malformed"},
		{"forged api key", `{"token":"vk_` + strings.Repeat("A", 40) + `"}`, 401, "malformed"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var a answer
			code := s.do("POST", "/v1/verify", "", tc.body, &a)
			if code != tc.status || a.Status != tc.reason || a.Allow != (tc.status == 200) {
				t.Fatalf("got %d %+v, want %d %s", code, a, tc.status, tc.reason)
			}
			if code == 200 && (a.Subject != "alice" || len(a.Roles) != 1 || a.Expires == nil) {
				t.Errorf("allowed answer lacks the principal: %+v", a)
			}
			if code != 200 && (a.Code == "" || a.Message == "") {
				t.Errorf("denial lacks code or message: %+v", a)
			}
		})
	}
	t.Run("bearer header", func(t *testing.T) {
		req, _ := http.NewRequest("POST", s.base+"/v1/verify", nil)
		req.Header.Set("Authorization", "Bearer "+k.Secret)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("got %d", resp.StatusCode)
		}
	})
}

func TestBadRequestsGet400AndNameTheProblem(t *testing.T) {
	s := newTestServer(t)
	cases := []struct {
		name, path, body, want string
	}{
		{"verify malformed JSON", "/v1/verify", `{"token":`, "invalid JSON"},
		{"verify unknown field", "/v1/verify", `{"token":"x","scopes":"a"}`, `unknown field "scopes"`},
		{"verify trailing data", "/v1/verify", `{"token":"x"} {}`, "after the object"},
		{"verify wrong type", "/v1/verify", `{"token":5}`, `"token"`},
		{"verify no token", "/v1/verify", `{}`, "no token"},
		{"create unknown kind", "/v1/admin/keys", `{"subject":"a","kind":"root"}`, `kind "root"`},
		{"create bad scope", "/v1/admin/keys", `{"subject":"a","scopes":["a::b"]}`, `scope "a::b": empty segment`},
		{"create no subject", "/v1/admin/keys", `{"scopes":["a:b"]}`, "subject is required"},
		{"create bad duration", "/v1/admin/keys", `{"subject":"a","expires_in":"forever"}`, "expires_in"},
		{"create with secret", "/v1/admin/keys", `{"subject":"a","secret":"0123456789abcdef"}`, "import"},
		{"create empty body", "/v1/admin/keys", ``, "empty"},
		{"import short secret", "/v1/admin/keys/import", `{"subject":"a","secret":"short"}`, "secret"},
		{"import reserved prefix", "/v1/admin/keys/import", `{"subject":"a","secret":"vk_0123456789abcdef0123"}`, "vk_"},
		{"import no secret", "/v1/admin/keys/import", `{"subject":"a"}`, "secret is required"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var a answer
			code := s.do("POST", tc.path, adminKey, tc.body, &a)
			if code != 400 || a.Code != "BAD_REQUEST" || !strings.Contains(a.Message, tc.want) {
				t.Fatalf("got %d %+v, want 400 naming %q", code, a, tc.want)
			}
			if n := s.count(); n != 0 {
				t.Fatalf("a bad request created %d keys", n)
			}
		})
	}
}

// TestOversizedBodiesAreRefusedUnread announces bodies over the limit and
// sends none: the server must answer 400 from the announced length alone,
// without waiting for (or reading) the body.
func TestOversizedBodiesAreRefusedUnread(t *testing.T) {
	s := newTestServer(t)
	for _, path := range []string{"/v1/verify", "/v1/admin/keys"} {
		for _, n := range []int{DefaultMaxBodyBytes + 1, 1 << 30} {
			conn, err := net.Dial("tcp", strings.TrimPrefix(s.base, "http://"))
			if err != nil {
				t.Fatal(err)
			}
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nX-Admin-Key: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", path, adminKey, n)
			resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
			if err != nil {
				t.Fatalf("%s with %d bytes announced: %v", path, n, err)
			}
			var a answer
			json.NewDecoder(resp.Body).Decode(&a)
			resp.Body.Close()
			conn.Close()
			if resp.StatusCode != 400 || a.Code != "BAD_REQUEST" || !strings.Contains(a.Message, "larger than 65536 bytes") {
				t.Errorf("%s with %d bytes announced: %d %+v", path, n, resp.StatusCode, a)
			}
		}
	}
	if n := s.count(); n != 0 {
		t.Fatalf("oversized requests created %d keys", n)
	}
}

func TestAdminRequiresTheAdminKey(t *testing.T) {
	s := newTestServer(t)
	k := s.create(`{"subject":"alice"}`)
	for _, key := range []string{"", "wrong-admin-key-0123456789", k.Secret} {
		for _, r := range []struct{ method, path string }{
			{"GET", "/v1/admin/keys"}, {"GET", "/v1/admin/keys/" + k.ID}, {"GET", "/v1/admin/keys/nope"},
			{"DELETE", "/v1/admin/keys/" + k.ID}, {"POST", "/v1/admin/keys/" + k.ID + "/rotate"},
		} {
			var a answer
			if code := s.do(r.method, r.path, key, "", &a); code != 401 || a.Code != "UNAUTHORIZED" {
				t.Errorf("%s %s with key %q: %d %+v", r.method, r.path, key, code, a)
			}
		}
	}
	var a answer
	if s.do("POST", "/v1/verify", "", `{"token":"`+k.Secret+`"}`, &a); !a.Allow {
		t.Error("a refused admin call changed the key")
	}
}

func TestKeyLifecycle(t *testing.T) {
	s := newTestServer(t)
	a := s.create(`{"subject":"alice","kind":"pat","scopes":["mailbox:alice:*"],"name":"ci","metadata":{"team":"x"}}`)
	s.create(`{"subject":"bob","kind":"agent"}`)

	var got answer
	if code := s.do("GET", "/v1/admin/keys/"+a.ID, adminKey, "", &got); code != 200 || got.ID != a.ID || got.Secret != "" {
		t.Fatalf("get: %d %+v", code, got)
	}
	if code := s.do("GET", "/v1/admin/keys/nope", adminKey, "", &got); code != 404 || got.Code != "NOT_FOUND" {
		t.Fatalf("get unknown: %d %+v", code, got)
	}
	var list answer
	s.do("GET", "/v1/admin/keys?subject=alice", adminKey, "", &list)
	if len(list.Keys) != 1 || list.Keys[0].ID != a.ID {
		t.Fatalf("list by subject: %+v", list)
	}

	var rotated answer
	if code := s.do("POST", "/v1/admin/keys/"+a.ID+"/rotate", adminKey, `{"grace":"1h"}`, &rotated); code != 200 || rotated.Secret == "" || rotated.Secret == a.Secret || rotated.Prev == nil {
		t.Fatalf("rotate: %d %+v", code, rotated)
	}
	for _, secret := range []string{a.Secret, rotated.Secret} {
		var v answer
		if s.do("POST", "/v1/verify", "", `{"token":"`+secret+`","scope":"mailbox:alice:read"}`, &v); !v.Allow {
			t.Errorf("secret during grace: %+v", v)
		}
	}
	if code := s.do("POST", "/v1/admin/keys/"+a.ID+"/rotate", adminKey, `{"grace":"soon"}`, &got); code != 400 {
		t.Errorf("rotate with a bad grace: %d", code)
	}

	var revoked answer
	if code := s.do("DELETE", "/v1/admin/keys/"+a.ID, adminKey, "", &revoked); code != 200 {
		t.Fatalf("revoke: %d %+v", code, revoked)
	}
	for _, secret := range []string{a.Secret, rotated.Secret} {
		var v answer
		if code := s.do("POST", "/v1/verify", "", `{"token":"`+secret+`"}`, &v); code != 401 || v.Status != "revoked" {
			t.Errorf("revoked secret: %d %+v", code, v)
		}
	}
	if code := s.do("POST", "/v1/admin/keys/"+a.ID+"/rotate", adminKey, "", &got); code != 409 {
		t.Errorf("rotating a revoked key: %d %+v", code, got)
	}
	if code := s.do("DELETE", "/v1/admin/keys/"+a.ID, adminKey, "", &got); code != 200 {
		t.Errorf("revoking twice: %d", code)
	}

	const legacy = "legacy-ams-key-0123456789abcdef"
	var imp answer
	if code := s.do("POST", "/v1/admin/keys/import", adminKey, `{"subject":"carol","secret":"`+legacy+`","scopes":["projects/p1/topics/*:publish"]}`, &imp); code != 201 || imp.Secret != "" {
		t.Fatalf("import: %d %+v", code, imp)
	}
	if code := s.do("POST", "/v1/admin/keys/import", adminKey, `{"subject":"dave","secret":"`+legacy+`"}`, &got); code != 409 {
		t.Errorf("importing a secret twice: %d %+v", code, got)
	}
	var v answer
	if s.do("POST", "/v1/verify", "", `{"token":"`+legacy+`","scope":"projects/p1/topics/orders:publish"}`, &v); !v.Allow {
		t.Errorf("imported key: %+v", v)
	}
}

func TestProbesMetricsAndRouting(t *testing.T) {
	s := newTestServer(t)
	for path, want := range map[string]int{"/healthz": 200, "/readyz": 200, "/nope": 404} {
		if code := s.do("GET", path, "", "", nil); code != want {
			t.Errorf("GET %s: %d, want %d", path, code, want)
		}
	}
	var a answer
	if code := s.do("GET", "/v1/verify", "", "", &a); code != 405 {
		t.Errorf("GET /v1/verify: %d", code)
	}
	s.do("POST", "/v1/verify", "", `{"token":"short"}`, nil)
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`verifyd_verify_decisions_total{kind="malformed",status="malformed"} 1`,
		"verifyd_verify_decision_duration_seconds_bucket",
		`verifyd_http_requests_total{code="405",route="verify"} 1`,
	} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestShutdownBeforeServe covers a shutdown that wins the race with Serve:
// Serve must return nil at once instead of serving forever, and a normal
// shutdown must report no error from closing the listener twice.
func TestShutdownBeforeServe(t *testing.T) {
	srv, err := New(Options{Verifier: &verify.Verifier{}, Manager: &verify.Manager{}})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Shutdown(t.Context()); err != nil {
		t.Fatalf("Shutdown before Serve: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve after Shutdown: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve after Shutdown did not return")
	}
}

// TestAdapters: requests under an adapter's prefix reach its handler and
// are counted under its route; an adapter outside /v1/compat/ is refused.
func TestAdapters(t *testing.T) {
	s := newTestServerConfig(t, nil, nil, func(o *Options) {
		o.Adapters = []Adapter{{Prefix: "/v1/compat/echo/", Route: "echo", Handler: func(ctx *fasthttp.RequestCtx) {
			ctx.SetBodyString("echo " + string(ctx.Path()))
		}}}
	})
	resp, err := http.Get(s.base + "/v1/compat/echo/x")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "echo /v1/compat/echo/x" {
		t.Errorf("adapter: %d %q", resp.StatusCode, b)
	}
	if code := s.do("GET", "/v1/compat/other/x", "", "", nil); code != 404 {
		t.Errorf("outside every adapter: %d", code)
	}
	resp, err = http.Get(s.base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(b), `verifyd_http_requests_total{code="200",route="echo"} 1`) {
		t.Errorf("the adapter's request is not counted under its route")
	}
	bad := Options{Verifier: s.v, Manager: &verify.Manager{}, Adapters: []Adapter{{Prefix: "/v1/verify", Route: "x", Handler: func(*fasthttp.RequestCtx) {}}}}
	if _, err := New(bad); err == nil || !strings.Contains(err.Error(), "/v1/compat/") {
		t.Errorf("an adapter over /v1/verify: %v", err)
	}
}
