package httpapi

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify"
)

func TestCORSValidate(t *testing.T) {
	for _, ok := range []string{"https://console.example", "http://localhost:3000", "http://127.0.0.1:8081", "https://[::1]:8443", "https://xn--bcher-kva.example"} {
		if err := (CORS{AllowedOrigins: []string{ok}}).Validate(); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, tc := range []struct{ origin, want string }{
		{"*", `"*" is not allowed`},
		{"null", `"null" is not allowed`},
		{"https://console.example/", "no path"},
		{"https://console.example/app", "no path"},
		{"console.example", "not an origin"},
		{"ftp://console.example", "not an origin"},
		{"https://user@console.example", "not an origin"},
		{"https://console.example?x=1", "not an origin"},
		{"https://console.example#", "not an origin"},
		{"https://Console.example", "lower case"},
		{"https://console.example:443", "default port"},
		{"http://console.example:80", "default port"},
		{"https://console.example:x", "not an origin"},
		{"", "not an origin"},
	} {
		err := (CORS{AllowedOrigins: []string{"https://fine.example", tc.origin}}).Validate()
		if err == nil || !strings.Contains(err.Error(), "http.cors.allowed_origins[1]: ") || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want an error naming [1] and %q", tc.origin, err, tc.want)
		}
	}
	m := verify.NewManager(nil, nil, keystore.Digest{}, nil)
	if _, err := New(Options{Verifier: newTestServer(t).v, Manager: m, CORS: CORS{AllowedOrigins: []string{"*"}}}); err == nil || !strings.Contains(err.Error(), "allowed_origins[0]") {
		t.Errorf("New with a wildcard origin: %v", err)
	}
}

const console = "https://console.example"

func newCORSServer(t *testing.T) *testServer {
	return newTestServerConfig(t, nil, nil, func(o *Options) { o.CORS = CORS{AllowedOrigins: []string{console, "http://localhost:3000"}} })
}

// preflight sends a CORS preflight from origin (none when empty).
func (s *testServer) preflight(path, origin string) (int, http.Header, string) {
	s.t.Helper()
	req, err := http.NewRequest("OPTIONS", s.base+path, nil)
	if err != nil {
		s.t.Fatal(err)
	}
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	req.Header.Set("Access-Control-Request-Method", "POST")
	req.Header.Set("Access-Control-Request-Headers", "authorization, content-type")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func TestCORSPreflight(t *testing.T) {
	s := newCORSServer(t)
	for _, path := range []string{"/v1/verify", "/v1/pats", "/v1/pats/some-id/scope/add", "/v1/admin/keys", "/v1/admin/keys/x/rotate", "/v1/admin/policy/reload"} {
		code, h, body := s.preflight(path, console)
		if code != 204 || body != "" {
			t.Errorf("%s: %d %q, want 204 and no body", path, code, body)
		}
		for name, want := range map[string]string{
			"Access-Control-Allow-Origin":  console,
			"Access-Control-Allow-Methods": "GET, POST, PATCH, DELETE",
			"Access-Control-Allow-Headers": "Authorization, Content-Type, X-Admin-Key, X-Api-Key",
			"Access-Control-Max-Age":       "600",
			"Vary":                         "Origin",
		} {
			if got := h.Get(name); got != want {
				t.Errorf("%s: %s = %q, want %q", path, name, got, want)
			}
		}
		if h.Get("Access-Control-Allow-Credentials") != "" {
			t.Errorf("%s: Access-Control-Allow-Credentials set", path)
		}
		// Another origin, or none: 403, nothing allowed.
		for _, other := range []string{"https://evil.example", "https://console.example.evil", "http://console.example", "null", ""} {
			code, h, _ := s.preflight(path, other)
			if code != 403 || h.Get("Access-Control-Allow-Origin") != "" || h.Get("Access-Control-Allow-Methods") != "" {
				t.Errorf("%s from %q: %d, allow-origin %q", path, other, code, h.Get("Access-Control-Allow-Origin"))
			}
		}
	}
	// Gateways' and brokers' endpoints never take part.
	for _, path := range []string{"/v1/authz", "/v1/introspect", "/metrics", "/healthz", "/readyz", "/v1/compat/mqtt/user"} {
		_, h, _ := s.preflight(path, console)
		if h.Get("Access-Control-Allow-Origin") != "" || h.Get("Access-Control-Allow-Methods") != "" {
			t.Errorf("%s answers a preflight with CORS headers: %v", path, h)
		}
	}
}

func TestCORSActualRequests(t *testing.T) {
	s := newCORSServer(t)
	k := s.create(`{"subject":"alice","scopes":["tool:data:*"]}`)
	verify := `{"token":"` + k.Secret + `","scope":"tool:data:read"}`

	code, h := s.call("POST", "/v1/verify", verify, nil, "Origin", console)
	if code != 200 || h.Get("Access-Control-Allow-Origin") != console || h.Get("Vary") != "Origin" {
		t.Errorf("verify from the console: %d %v", code, h)
	}
	// Another origin is served (CORS is not authentication) but its page
	// may not read the answer.
	code, h = s.call("POST", "/v1/verify", verify, nil, "Origin", "https://evil.example")
	if code != 200 || h.Get("Access-Control-Allow-Origin") != "" {
		t.Errorf("verify from another origin: %d, allow-origin %q", code, h.Get("Access-Control-Allow-Origin"))
	}
	// The admin API from a listed origin still needs the admin key.
	var a answer
	code, h = s.call("GET", "/v1/admin/keys", "", &a, "Origin", console)
	if code != 401 || a.Code != "UNAUTHORIZED" || h.Get("Access-Control-Allow-Origin") != console {
		t.Errorf("admin without the key from the console: %d %+v %v", code, a, h)
	}
	if code, h = s.call("GET", "/v1/admin/keys", "", nil, "Origin", console, "X-Admin-Key", adminKey); code != 200 || h.Get("Access-Control-Allow-Origin") != console {
		t.Errorf("admin with the key from the console: %d %v", code, h)
	}
	// A plain OPTIONS (no Access-Control-Request-Method) is routed as any
	// request: the admin API wants its key first.
	if code, _ = s.call("OPTIONS", "/v1/admin/keys", "", &a, "Origin", console); code != 401 {
		t.Errorf("plain OPTIONS on the admin API: %d", code)
	}
	// Endpoints outside CORS carry no CORS header, whatever the origin.
	if _, h = s.call("GET", "/healthz", "", nil, "Origin", console); h.Get("Access-Control-Allow-Origin") != "" || h.Get("Vary") != "" {
		t.Errorf("/healthz: %v", h)
	}
}

// TestCORSOffByDefault: without allowed origins no answer carries CORS
// headers, and a preflight is routed as any OPTIONS request.
func TestCORSOffByDefault(t *testing.T) {
	s := newTestServer(t)
	k := s.create(`{"subject":"alice"}`)
	code, h := s.call("POST", "/v1/verify", `{"token":"`+k.Secret+`"}`, nil, "Origin", console)
	if code != 200 || h.Get("Access-Control-Allow-Origin") != "" || h.Get("Vary") != "" {
		t.Errorf("verify: %d %v", code, h)
	}
	for path, want := range map[string]int{"/v1/verify": 405, "/v1/admin/keys": 401, "/v1/pats": 401} {
		code, h, _ := s.preflight(path, console)
		if code != want || h.Get("Access-Control-Allow-Origin") != "" || h.Get("Access-Control-Allow-Methods") != "" {
			t.Errorf("preflight %s: %d %v, want %d and no CORS header", path, code, h, want)
		}
	}
}
