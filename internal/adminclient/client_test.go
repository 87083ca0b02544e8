package adminclient_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verifyd/verifyd/internal/adminclient"
	"github.com/verifyd/verifyd/internal/adminclient/admintest"
)

const testAdminKey = "adm_test-key-0123456789"

// newTestClient starts an admintest server and returns a client for it.
func newTestClient(t *testing.T) (*adminclient.Client, *admintest.Server) {
	t.Helper()
	srv := admintest.NewServer(testAdminKey)
	t.Cleanup(srv.Close)
	c, err := adminclient.New(srv.URL, testAdminKey, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	return c, srv
}

func TestNew(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		addr     string
		adminKey string
		timeout  time.Duration
		want     string // base URL; empty when an error is expected
		hidden   string // must not appear in the error
	}{
		{name: "default", addr: "", want: "http://127.0.0.1:8080"},
		{name: "host port", addr: "localhost:9000", want: "http://localhost:9000"},
		{name: "http trailing slash", addr: "http://10.0.0.1:8080/", want: "http://10.0.0.1:8080"},
		{name: "https with prefix", addr: "https://gw.example/verifyd/", want: "https://gw.example/verifyd"},
		{name: "ipv6", addr: "[::1]:8080", want: "http://[::1]:8080"},
		{name: "bad scheme", addr: "ftp://x:21"},
		{name: "user info", addr: "http://ops:hunter2@x:8080", hidden: "hunter2"},
		{name: "query", addr: "http://x:8080/?a=b"},
		{name: "fragment", addr: "http://x:8080/#f"},
		{name: "no host", addr: ":8080"},
		{name: "negative timeout", addr: "x:1", timeout: -time.Second},
		{name: "key with newline", addr: "x:1", adminKey: "abc\nX-Evil: 1", hidden: "X-Evil"},
		{name: "key with space", addr: "x:1", adminKey: "abc def", hidden: "abc def"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := adminclient.New(tc.addr, tc.adminKey, tc.timeout)
			if tc.want == "" {
				if err == nil {
					t.Fatalf("New(%q) = %q, want an error", tc.addr, c.BaseURL())
				}
				if !errors.Is(err, adminclient.ErrInvalidArgument) {
					t.Errorf("error %v does not wrap ErrInvalidArgument", err)
				}
				if tc.hidden != "" && strings.Contains(err.Error(), tc.hidden) {
					t.Errorf("error %q reveals %q", err, tc.hidden)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.BaseURL(); got != tc.want {
				t.Errorf("BaseURL() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestKeyLifecycle(t *testing.T) {
	t.Parallel()
	c, _ := newTestClient(t)
	ctx := t.Context()

	spec := adminclient.KeySpec{
		Subject:      "alice",
		Name:         "ci",
		Description:  "pipeline key",
		Scopes:       []string{"tool:data:*"},
		Roles:        []string{"publisher"},
		ProjectRoles: map[string][]string{"p1": {"editor"}},
		Metadata:     map[string]string{"team": "core"},
		ExpiresIn:    adminclient.Duration(720 * time.Hour),
	}
	k, err := c.CreateKey(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	if len(k.ID) != 22 || k.Secret == "" || k.Status != adminclient.KeyActive || k.Kind != adminclient.KindAPIKey {
		t.Fatalf("CreateKey = %+v", k)
	}
	if got := k.ExpiresAt.Sub(k.CreatedAt); got != 720*time.Hour {
		t.Errorf("expires %v after creation, want 720h", got)
	}
	if _, err := c.CreateKey(ctx, adminclient.KeySpec{Subject: "bob", Kind: adminclient.KindAgent}); err != nil {
		t.Fatal(err)
	}

	got, err := c.GetKey(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Secret != "" || got.Subject != "alice" || got.ProjectRoles["p1"][0] != "editor" || got.Metadata["team"] != "core" {
		t.Errorf("GetKey = %+v", got)
	}

	all, err := c.ListKeys(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	mine, err := c.ListKeys(ctx, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 || len(mine) != 1 || mine[0].ID != k.ID {
		t.Errorf("ListKeys: %d keys, %d for alice, want 2 and 1", len(all), len(mine))
	}

	res, err := c.Verify(ctx, k.Secret, "tool:data:read")
	if err != nil || !res.Allow || res.Grant != "tool:data:*" || res.KeyID != k.ID {
		t.Fatalf("Verify(new key) = %+v, %v", res, err)
	}

	rotated, err := c.RotateKey(ctx, k.ID, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if rotated.ID != k.ID || rotated.Secret == k.Secret || rotated.Version != k.Version+1 || rotated.PreviousValidUntil.IsZero() {
		t.Errorf("RotateKey = %+v", rotated)
	}
	for _, secret := range []string{k.Secret, rotated.Secret} {
		if res, err := c.Verify(ctx, secret, ""); err != nil || !res.Allow {
			t.Errorf("Verify during grace = %+v, %v", res, err)
		}
	}

	revoked, err := c.RevokeKey(ctx, k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if revoked.Status != adminclient.KeyRevoked || revoked.RevokedAt.IsZero() {
		t.Errorf("RevokeKey = %+v", revoked)
	}
	res, err = c.Verify(ctx, rotated.Secret, "")
	if err != nil || res.Allow || res.Status != adminclient.StatusRevoked || res.Code != adminclient.CodeUnauthorized {
		t.Errorf("Verify(revoked) = %+v, %v", res, err)
	}
}

func TestImportKey(t *testing.T) {
	t.Parallel()
	c, _ := newTestClient(t)
	ctx := t.Context()
	const secret = "legacy-relay-key-0123456789abcdef"
	k, err := c.ImportKey(ctx, adminclient.KeySpec{Subject: "relay", Scopes: []string{"mailbox:relay:*"}}, secret)
	if err != nil {
		t.Fatal(err)
	}
	if k.Kind != adminclient.KindImported || k.Secret != "" {
		t.Errorf("ImportKey = %+v", k)
	}
	res, err := c.Verify(ctx, secret, "mailbox:relay:read")
	if err != nil || !res.Allow || res.Subject != "relay" {
		t.Errorf("Verify(imported) = %+v, %v", res, err)
	}
}

func TestVerifyDecisions(t *testing.T) {
	t.Parallel()
	c, _ := newTestClient(t)
	k, err := c.CreateKey(t.Context(), adminclient.KeySpec{Subject: "alice", Scopes: []string{"tool:data:*"}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		token      string
		scope      string
		wantAllow  bool
		wantStatus string
		wantHTTP   int // APIError status; 0 for a decision with a nil error
	}{
		{name: "allowed no scope", token: k.Secret, wantAllow: true, wantStatus: adminclient.StatusOK},
		{name: "allowed scope", token: k.Secret, scope: "tool:data:write", wantAllow: true, wantStatus: adminclient.StatusOK},
		{name: "forbidden scope", token: k.Secret, scope: "tool:admin:write", wantStatus: adminclient.StatusForbidden},
		{name: "unknown token", token: "an-imported-style-key-nobody-holds", wantStatus: adminclient.StatusUnknown},
		{name: "malformed token", token: "vk_not-a-real-key", wantStatus: adminclient.StatusMalformed},
		{name: "invalid scope", token: k.Secret, scope: "tool::x", wantStatus: adminclient.StatusInvalidScope, wantHTTP: 400},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res, err := c.Verify(t.Context(), tc.token, tc.scope)
			if tc.wantHTTP != 0 {
				var ae *adminclient.APIError
				if !errors.As(err, &ae) || ae.Status != tc.wantHTTP || ae.Code != adminclient.CodeBadRequest {
					t.Fatalf("Verify error = %v, want APIError %d", err, tc.wantHTTP)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if res.Allow != tc.wantAllow || res.Status != tc.wantStatus {
				t.Errorf("Verify = allow %t status %q, want %t %q", res.Allow, res.Status, tc.wantAllow, tc.wantStatus)
			}
		})
	}
}

func TestErrorsBeforeRequest(t *testing.T) {
	t.Parallel()
	srv := admintest.NewServer(testAdminKey)
	t.Cleanup(srv.Close)
	noKey, err := adminclient.New(srv.URL, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	c, err := adminclient.New(srv.URL, testAdminKey, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	tests := []struct {
		name string
		call func() error
		want error
	}{
		{"list without admin key", func() error { _, err := noKey.ListKeys(ctx, ""); return err }, adminclient.ErrNoAdminKey},
		{"create without admin key", func() error {
			_, err := noKey.CreateKey(ctx, adminclient.KeySpec{Subject: "a"})
			return err
		}, adminclient.ErrNoAdminKey},
		{"empty id", func() error { _, err := c.GetKey(ctx, ""); return err }, adminclient.ErrInvalidArgument},
		{"path in id", func() error { _, err := c.RevokeKey(ctx, "../keys"); return err }, adminclient.ErrInvalidArgument},
		{"long id", func() error { _, err := c.GetKey(ctx, strings.Repeat("a", 129)); return err }, adminclient.ErrInvalidArgument},
		{"negative grace", func() error { _, err := c.RotateKey(ctx, "abc", -time.Second); return err }, adminclient.ErrInvalidArgument},
		{"no subject", func() error { _, err := c.CreateKey(ctx, adminclient.KeySpec{}); return err }, adminclient.ErrInvalidArgument},
		{"negative expiry", func() error {
			_, err := c.CreateKey(ctx, adminclient.KeySpec{Subject: "a", ExpiresIn: -1})
			return err
		}, adminclient.ErrInvalidArgument},
		{"empty import secret", func() error {
			_, err := c.ImportKey(ctx, adminclient.KeySpec{Subject: "a"}, "")
			return err
		}, adminclient.ErrInvalidArgument},
		{"empty token", func() error { _, err := c.Verify(ctx, "", ""); return err }, adminclient.ErrInvalidArgument},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); !errors.Is(err, tc.want) {
				t.Errorf("error = %v, want %v", err, tc.want)
			}
		})
	}
	if n := srv.Connections(); n != 0 {
		t.Errorf("server accepted %d connections, want 0", n)
	}
}

func TestAPIErrors(t *testing.T) {
	t.Parallel()
	c, srv := newTestClient(t)
	wrongKey, err := adminclient.New(srv.URL, "not-the-admin-key", 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	tests := []struct {
		name       string
		call       func() error
		wantStatus int
		wantCode   string
	}{
		{"wrong admin key", func() error { _, err := wrongKey.ListKeys(ctx, ""); return err }, 401, adminclient.CodeUnauthorized},
		{"unknown id", func() error { _, err := c.GetKey(ctx, "AAAAAAAAAAAAAAAAAAAAAA"); return err }, 404, adminclient.CodeNotFound},
		{"revoke unknown id", func() error { _, err := c.RevokeKey(ctx, "AAAAAAAAAAAAAAAAAAAAAA"); return err }, 404, adminclient.CodeNotFound},
		{"invalid scope pattern", func() error {
			_, err := c.CreateKey(ctx, adminclient.KeySpec{Subject: "a", Scopes: []string{"a:**"}})
			return err
		}, 400, adminclient.CodeBadRequest},
		{"kind not creatable", func() error {
			_, err := c.CreateKey(ctx, adminclient.KeySpec{Subject: "a", Kind: "imported"})
			return err
		}, 400, adminclient.CodeBadRequest},
		{"short import secret", func() error {
			_, err := c.ImportKey(ctx, adminclient.KeySpec{Subject: "a"}, "short")
			return err
		}, 400, adminclient.CodeBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.call()
			var ae *adminclient.APIError
			if !errors.As(err, &ae) {
				t.Fatalf("error = %v, want *APIError", err)
			}
			if ae.Status != tc.wantStatus || ae.Code != tc.wantCode || ae.Err != strings.ToLower(tc.wantCode) || ae.Message == "" {
				t.Errorf("APIError = %+v, want status %d code %s", ae, tc.wantStatus, tc.wantCode)
			}
			if strings.Contains(err.Error(), testAdminKey) {
				t.Errorf("error %q reveals the admin key", err)
			}
		})
	}
}

// TestOutsideContract checks answers a daemon should never give: each must
// fail the call with an error that is not mistaken for a decision.
func TestOutsideContract(t *testing.T) {
	t.Parallel()
	var leaked atomic.Bool
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Admin-Key") != "" {
			leaked.Store(true)
		}
		w.Write([]byte(`{"keys":[]}`))
	}))
	t.Cleanup(elsewhere.Close)

	tests := []struct {
		name    string
		handler http.HandlerFunc
		call    func(*adminclient.Client) error
		api     int // expected APIError status, 0 for another error
	}{
		{
			name: "proxy error page",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				w.WriteHeader(http.StatusBadGateway)
				w.Write([]byte("<html>bad gateway</html>"))
			},
			call: func(c *adminclient.Client) error { _, err := c.ListKeys(context.Background(), ""); return err },
			api:  502,
		},
		{
			name:    "garbage success",
			handler: func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("not json")) },
			call:    func(c *adminclient.Client) error { _, err := c.GetKey(context.Background(), "abc"); return err },
		},
		{
			name: "redirect",
			handler: func(w http.ResponseWriter, r *http.Request) {
				http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusFound)
			},
			call: func(c *adminclient.Client) error { _, err := c.ListKeys(context.Background(), ""); return err },
		},
		{
			name: "oversized answer",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.Write([]byte(`{"keys":["`))
				w.Write(bytes.Repeat([]byte("a"), adminclient.MaxResponseBytes))
				w.Write([]byte(`"]}`))
			},
			call: func(c *adminclient.Client) error { _, err := c.ListKeys(context.Background(), ""); return err },
		},
		{
			name:    "create without secret",
			handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(201); w.Write([]byte(`{"id":"abc"}`)) },
			call: func(c *adminclient.Client) error {
				_, err := c.CreateKey(context.Background(), adminclient.KeySpec{Subject: "a"})
				return err
			},
		},
		{
			name: "allow with 401",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(401)
				w.Write([]byte(`{"allow":true,"status":"ok"}`))
			},
			call: func(c *adminclient.Client) error { _, err := c.Verify(context.Background(), "t", ""); return err },
		},
		{
			name:    "deny with 200",
			handler: func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"allow":false,"status":"unknown"}`)) },
			call:    func(c *adminclient.Client) error { _, err := c.Verify(context.Background(), "t", ""); return err },
		},
		{
			name:    "401 without decision",
			handler: func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(401); w.Write([]byte(`unauthorized`)) },
			call:    func(c *adminclient.Client) error { _, err := c.Verify(context.Background(), "t", ""); return err },
		},
		{
			name: "verify unavailable",
			handler: func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(503)
				w.Write([]byte(`{"allow":false,"status":"unavailable","code":"SERVICE_UNAVAILABLE","error":"service_unavailable","message":"store closed"}`))
			},
			call: func(c *adminclient.Client) error { _, err := c.Verify(context.Background(), "t", ""); return err },
			api:  503,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(tc.handler)
			defer srv.Close()
			c, err := adminclient.New(srv.URL, testAdminKey, 5*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			err = tc.call(c)
			if err == nil {
				t.Fatal("call succeeded, want an error")
			}
			var ae *adminclient.APIError
			isAPI := errors.As(err, &ae)
			switch {
			case tc.api == 0 && isAPI:
				t.Errorf("error = %v, want a non-API error", err)
			case tc.api != 0 && (!isAPI || ae.Status != tc.api):
				t.Errorf("error = %v, want APIError %d", err, tc.api)
			}
		})
	}
	if leaked.Load() {
		t.Error("the admin key followed a redirect")
	}
}

func TestUnreachable(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.NotFoundHandler())
	addr := srv.Listener.Addr().String()
	srv.Close()
	c, err := adminclient.New(addr, testAdminKey, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.ListKeys(t.Context(), "")
	var ae *adminclient.APIError
	if err == nil || errors.As(err, &ae) || errors.Is(err, adminclient.ErrInvalidArgument) {
		t.Errorf("ListKeys on a closed port = %v, want a transport error", err)
	}
}

func TestTimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); srv.Close() })
	c, err := adminclient.New(srv.URL, "", 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Verify(t.Context(), "token", ""); err == nil {
		t.Error("Verify against a stalled daemon succeeded")
	}
}

// TestWireShapes pins the JSON encoding the daemon shares with the client.
func TestWireShapes(t *testing.T) {
	t.Parallel()
	created := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		v    any
		want string
	}{
		{
			name: "minimal key",
			v:    adminclient.Key{ID: "id", Kind: "api_key", Subject: "alice", Status: "active", Version: 1, CreatedAt: created},
			want: `{"id":"id","kind":"api_key","subject":"alice","name":"","description":"","creator":"","status":"active","version":1,"created_at":"2026-11-23T10:00:00Z"}`,
		},
		{
			name: "full key",
			v: adminclient.Key{
				ID: "id", Kind: "pat", Subject: "alice", Name: "ci", Description: "d",
				Scopes: []string{"tool:data:*"}, Roles: []string{"publisher"},
				ProjectRoles: map[string][]string{"p1": {"editor"}}, Metadata: map[string]string{"k": "v"},
				Creator: "admin", Status: "revoked", Version: 3, CreatedAt: created,
				ExpiresAt: created.Add(time.Hour), RevokedAt: created.Add(2 * time.Hour),
				LastUsedAt: created.Add(3 * time.Hour), PreviousValidUntil: created.Add(4 * time.Hour),
				Secret: "s",
			},
			want: `{"id":"id","kind":"pat","subject":"alice","name":"ci","description":"d","scopes":["tool:data:*"],"roles":["publisher"],"project_roles":{"p1":["editor"]},"metadata":{"k":"v"},"creator":"admin","status":"revoked","version":3,"created_at":"2026-11-23T10:00:00Z","expires_at":"2026-11-23T11:00:00Z","revoked_at":"2026-11-23T12:00:00Z","last_used_at":"2026-11-23T13:00:00Z","previous_valid_until":"2026-11-23T14:00:00Z","secret":"s"}`,
		},
		{
			name: "spec",
			v:    adminclient.KeySpec{Subject: "alice", ExpiresIn: adminclient.Duration(720 * time.Hour)},
			want: `{"subject":"alice","expires_in":"720h0m0s"}`,
		},
		{
			name: "import",
			v:    adminclient.ImportRequest{KeySpec: adminclient.KeySpec{Subject: "alice", Kind: "imported"}, Secret: "s"},
			want: `{"subject":"alice","kind":"imported","secret":"s"}`,
		},
		{name: "rotate no grace", v: adminclient.RotateRequest{}, want: `{}`},
		{name: "rotate grace", v: adminclient.RotateRequest{Grace: adminclient.Duration(10 * time.Minute)}, want: `{"grace":"10m0s"}`},
		{name: "verify request", v: adminclient.VerifyRequest{Token: "t"}, want: `{"token":"t"}`},
		{
			name: "allow",
			v: adminclient.VerifyResult{Allow: true, Status: "ok", Subject: "alice", Kind: "api_key", KeyID: "id",
				Roles: []string{"publisher"}, Grant: "tool:data:*", ExpiresAt: created, CacheTTLMS: 5000},
			want: `{"allow":true,"status":"ok","subject":"alice","kind":"api_key","key_id":"id","roles":["publisher"],"grant":"tool:data:*","expires_at":"2026-11-23T10:00:00Z","cache_ttl_ms":5000}`,
		},
		{
			name: "deny",
			v:    adminclient.VerifyResult{Status: "revoked", Code: "UNAUTHORIZED", Error: "unauthorized", Message: "m"},
			want: `{"allow":false,"status":"revoked","code":"UNAUTHORIZED","error":"unauthorized","message":"m"}`,
		},
		{
			name: "error",
			v:    &adminclient.APIError{Status: 404, Code: "NOT_FOUND", Err: "not_found", Message: "m"},
			want: `{"code":"NOT_FOUND","error":"not_found","message":"m"}`,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != tc.want {
				t.Errorf("got  %s\nwant %s", b, tc.want)
			}
		})
	}
}

func TestDurationText(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
		bad  bool
	}{
		{in: `"720h"`, want: 720 * time.Hour},
		{in: `"10m0s"`, want: 10 * time.Minute},
		{in: `"1.5s"`, want: 1500 * time.Millisecond},
		{in: `"30d"`, bad: true},
		{in: `""`, bad: true},
		{in: `3600`, bad: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			t.Parallel()
			var d adminclient.Duration
			err := json.Unmarshal([]byte(tc.in), &d)
			if tc.bad != (err != nil) || time.Duration(d) != tc.want {
				t.Errorf("Unmarshal(%s) = %v, %v", tc.in, time.Duration(d), err)
			}
		})
	}
}

func TestLogValueRedacts(t *testing.T) {
	t.Parallel()
	const secret = "vk_super-secret-value"
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("created", "key", adminclient.Key{ID: "id", Subject: "alice", Secret: secret})
	log.Info("verify", "req", adminclient.VerifyRequest{Token: secret, Scope: "a:b"})
	log.Info("import", "req", adminclient.ImportRequest{KeySpec: adminclient.KeySpec{Subject: "alice"}, Secret: secret})
	if strings.Contains(buf.String(), secret) {
		t.Errorf("log output reveals the secret:\n%s", buf.String())
	}
	if !strings.Contains(buf.String(), `"subject":"alice"`) {
		t.Errorf("log output lost the subject:\n%s", buf.String())
	}
}
