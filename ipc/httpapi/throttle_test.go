package httpapi

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/verifyd/verifyd/verify/throttle"
)

// newThrottledServer starts a test server whose throttle trips after 3
// failures per source or PAT id, with the trusted proxies given.
func newThrottledServer(t *testing.T, proxies ...string) *testServer {
	t.Helper()
	cfg := throttle.DefaultConfig()
	cfg.Failures, cfg.KeyFailures, cfg.Cooldown = 3, 3, time.Hour
	cfg.TrustedProxies = proxies
	l, err := throttle.New(cfg, &throttle.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	return newTestServerConfig(t, nil, nil, func(o *Options) { o.Throttle = l })
}

// throttled sends a request with headers (name, value, ...) and returns the
// status, the Retry-After header and the answer's "status" or "code".
func (s *testServer) throttled(method, path, body string, headers ...string) (int, string, string) {
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
	var a struct{ Status, Code string }
	json.Unmarshal(b, &a)
	if a.Status == "" {
		a.Status = a.Code
	}
	return resp.StatusCode, resp.Header.Get("Retry-After"), a.Status
}

func (s *testServer) wantAnswer(method, path, body string, status int, what string, headers ...string) {
	s.t.Helper()
	got, retry, gotWhat := s.throttled(method, path, body, headers...)
	if got != status || gotWhat != what {
		s.t.Errorf("%s %s %v: %d %s, want %d %s", method, path, headers, got, gotWhat, status, what)
	}
	if (status == 429) != (retry != "") {
		s.t.Errorf("%s %s: status %d with Retry-After %q", method, path, got, retry)
	}
}

const patUnknown = "pat_AAAAAAAAAAAAAAAAAAAAAA_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

func TestThrottleVerifyPerAddress(t *testing.T) {
	s := newThrottledServer(t) // no trusted proxy: 127.0.0.1 is a client
	good := s.create(`{"subject":"alice","scopes":["tool:data:*"]}`)
	body := func(tok string) string { return `{"token":"` + tok + `","scope":"tool:data:read"}` }
	s.wantAnswer("POST", "/v1/verify", body(good.Secret), 200, "ok")
	for i := 0; i < 3; i++ {
		s.wantAnswer("POST", "/v1/verify", body("unknown-key-0123456789"), 401, "unknown")
	}
	s.wantAnswer("POST", "/v1/verify", body(good.Secret), 429, "rate_limited")
	// Gateways are not counted by their own address.
	s.wantAnswer("GET", "/v1/authz", "", 200, "", "Authorization", "Bearer "+good.Secret)
	// Other endpoints are not throttled.
	s.wantAnswer("GET", "/healthz", "", 200, "")
	if n := s.count(); n != 1 {
		t.Errorf("%d keys", n)
	}
}

func TestThrottleForwardedClients(t *testing.T) {
	s := newThrottledServer(t, "127.0.0.1")
	good := s.create(`{"subject":"alice","scopes":["tool:data:*"]}`)
	body := func(tok string) string { return `{"token":"` + tok + `"}` }
	mallory := []string{"X-Forwarded-For", "203.0.113.5, 192.0.2.66"}
	alice := []string{"X-Forwarded-For", "192.0.2.1"}
	for i := 0; i < 3; i++ {
		s.wantAnswer("POST", "/v1/verify", body("unknown-key-0123456789"), 401, "unknown", mallory...)
	}
	s.wantAnswer("POST", "/v1/verify", body(good.Secret), 429, "rate_limited", mallory...)
	s.wantAnswer("GET", "/v1/authz", "", 429, "RATE_LIMITED", append([]string{"X-Api-Key", good.Secret}, mallory...)...)
	s.wantAnswer("POST", "/v1/verify", body(good.Secret), 200, "ok", alice...)
	s.wantAnswer("GET", "/v1/authz", "", 200, "", append([]string{"X-Api-Key", good.Secret}, alice...)...)
	// A trusted proxy that names no client is not counted.
	for i := 0; i < 5; i++ {
		s.wantAnswer("POST", "/v1/verify", body("unknown-key-0123456789"), 401, "unknown")
	}
	s.wantAnswer("POST", "/v1/verify", body(good.Secret), 200, "ok")
}

func TestThrottlePATIDOverAuthz(t *testing.T) {
	s := newThrottledServer(t)
	for i := 0; i < 3; i++ {
		s.wantAnswer("GET", "/v1/authz", "", 401, "UNAUTHORIZED", "Authorization", "Bearer "+patUnknown)
	}
	s.wantAnswer("GET", "/v1/authz", "", 429, "RATE_LIMITED", "Authorization", "Bearer "+patUnknown)
	s.wantAnswer("POST", "/v1/verify", `{"token":"`+patUnknown+`"}`, 429, "rate_limited")
}

func TestCredentialRateLimitFromMetadata(t *testing.T) {
	s := newThrottledServer(t)
	limited := s.create(`{"subject":"bob","scopes":["tool:*"],"metadata":{"rate_limit":"2/h"}}`)
	body := `{"token":"` + limited.Secret + `","scope":"tool:x"}`
	s.wantAnswer("POST", "/v1/verify", body, 200, "ok")
	s.wantAnswer("POST", "/v1/verify", `{"token":"`+limited.Secret+`","scope":"other:x"}`, 403, "forbidden")
	s.wantAnswer("POST", "/v1/verify", body, 429, "rate_limited")
	s.wantAnswer("GET", "/v1/authz?scope=tool:x", "", 429, "RATE_LIMITED", "Authorization", "Bearer "+limited.Secret)

	// The admin API refuses a rate limit it cannot read, and stores nothing.
	before := s.count()
	var a answer
	if code := s.do("POST", "/v1/admin/keys", adminKey, `{"subject":"c","metadata":{"rate_limit":"fast"}}`, &a); code != 400 || !strings.Contains(a.Message, "rate_limit") {
		t.Errorf("invalid rate_limit: %d %+v", code, a)
	}
	if s.count() != before {
		t.Error("a key with an invalid rate_limit was stored")
	}
}
