package adminclient_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/verifyd/verifyd/internal/adminclient"
	"github.com/verifyd/verifyd/internal/adminclient/admintest"
	"github.com/verifyd/verifyd/verify/trust"
)

// trustSecret is the HS256 secret of the "proxy" source of newTrustRegistry.
var trustSecret = strings.Repeat("k", 32)

// newTrustRegistry returns a registry with two sources: "proxy", an HS256
// secret that loads, and "idp", a JWKS URL nothing listens on.
func newTrustRegistry(t *testing.T) *trust.Registry {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String() + "/jwks.json"
	ln.Close()
	secret := base64.RawURLEncoding.EncodeToString([]byte(trustSecret))
	registry, err := trust.New(trust.Config{
		FetchTimeout: 500 * time.Millisecond,
		Sources: []trust.Source{
			{Name: "proxy", HS256: []trust.Secret{{Kid: "hs-1", SecretEnv: "SECRET"}}},
			{Name: "idp", JWKSURL: down},
		},
	}, &trust.Options{Getenv: func(string) string { return secret }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { registry.Close() })
	return registry
}

func TestTrustStatus(t *testing.T) {
	t.Parallel()
	before := time.Now().Add(-time.Second)
	srv := admintest.NewServerWith(testAdminKey, &admintest.Options{Trust: newTrustRegistry(t)})
	t.Cleanup(srv.Close)
	c, err := adminclient.New(srv.URL, testAdminKey, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}

	sources, err := c.TrustStatus(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(sources) != 2 || sources[0].Name != "proxy" || sources[1].Name != "idp" {
		t.Fatalf("TrustStatus = %+v, want proxy and idp in configuration order", sources)
	}
	proxy, idp := sources[0], sources[1]
	if proxy.Type != "hs256" || proxy.Keys != 1 || proxy.SkippedKeys != 0 || proxy.Stale || proxy.LastError != "" ||
		proxy.LastSuccess.Before(before) || proxy.LastSuccess.After(time.Now()) {
		t.Errorf("proxy = %+v", proxy)
	}
	if idp.Type != "jwks_url" || idp.Keys != 0 || !idp.Stale || idp.LastError == "" || !idp.LastSuccess.IsZero() {
		t.Errorf("idp, unreachable = %+v", idp)
	}

	// The registry also verifies JWTs, as in the daemon.
	res, err := c.Verify(t.Context(), signHS256(t, `{"sub":"svc","exp":`+strconv.FormatInt(time.Now().Add(time.Hour).Unix(), 10)+`}`), "")
	if err != nil || !res.Allow || res.Subject != "svc" || res.Source != "proxy" {
		t.Errorf("Verify of an HS256 JWT = %+v, %v", res, err)
	}
}

// signHS256 returns a compact JWS of payload, signed with the key hs-1 of
// the registry of newTrustRegistry.
func signHS256(t *testing.T, payload string) string {
	t.Helper()
	b64 := base64.RawURLEncoding.EncodeToString
	input := b64([]byte(`{"alg":"HS256","kid":"hs-1","typ":"JWT"}`)) + "." + b64([]byte(payload))
	m := hmac.New(sha256.New, []byte(trustSecret))
	m.Write([]byte(input))
	return input + "." + b64(m.Sum(nil))
}

func TestTrustStatusNoSources(t *testing.T) {
	t.Parallel()
	c, _ := newTestClient(t)
	sources, err := c.TrustStatus(t.Context())
	if err != nil || sources == nil || len(sources) != 0 {
		t.Errorf("TrustStatus without a registry = %#v, %v; want an empty list", sources, err)
	}
}

func TestTrustStatusErrors(t *testing.T) {
	t.Parallel()
	srv := admintest.NewServer(testAdminKey)
	t.Cleanup(srv.Close)
	noKey, err := adminclient.New(srv.URL, "", 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if _, err := noKey.TrustStatus(ctx); !errors.Is(err, adminclient.ErrNoAdminKey) {
		t.Errorf("TrustStatus without admin key = %v, want %v", err, adminclient.ErrNoAdminKey)
	}
	if n := srv.Connections(); n != 0 {
		t.Fatalf("server accepted %d connections, want 0", n)
	}
	wrongKey, _ := adminclient.New(srv.URL, "not-the-admin-key", 0)
	var ae *adminclient.APIError
	if _, err := wrongKey.TrustStatus(ctx); !errors.As(err, &ae) || ae.Status != 401 {
		t.Errorf("TrustStatus with a wrong admin key = %v, want a 401 APIError", err)
	}
}

// TestTrustWireShapes pins the JSON of the trust source types.
func TestTrustWireShapes(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		v    any
		want string
	}{
		{"loaded", adminclient.TrustSource{Name: "proxy", Type: "hs256", Keys: 1, LastSuccess: at},
			`{"name":"proxy","type":"hs256","keys":1,"skipped_keys":0,"last_success":"2026-11-23T10:00:00Z","stale":false}`},
		{"never fetched", adminclient.TrustSource{Name: "idp", Type: "jwks_url", LastError: "connection refused", Stale: true},
			`{"name":"idp","type":"jwks_url","keys":0,"skipped_keys":0,"last_error":"connection refused","stale":true}`},
		{"empty list", adminclient.TrustSourceList{Sources: []adminclient.TrustSource{}}, `{"sources":[]}`},
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
