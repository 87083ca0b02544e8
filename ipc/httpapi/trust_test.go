package httpapi

import (
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/verifyd/verifyd/verify/trust"
)

func TestTrustEndpoint(t *testing.T) {
	// A port nothing listens on: the URL source's fetch fails.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "http://" + ln.Addr().String() + "/jwks.json"
	ln.Close()
	secret := base64.RawURLEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	registry, err := trust.New(trust.Config{
		FetchTimeout: 500 * time.Millisecond,
		Sources: []trust.Source{
			{Name: "proxy", HS256: []trust.Secret{{Kid: "hs-1", SecretEnv: "SECRET"}}},
			{Name: "idp", JWKSURL: down},
		},
	}, &trust.Options{Getenv: func(string) string { return secret }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { registry.Close() })
	s := newTestServerWith(t, registry)

	var out struct {
		Sources []struct {
			Name        string     `json:"name"`
			Type        string     `json:"type"`
			Keys        int        `json:"keys"`
			LastSuccess *time.Time `json:"last_success"`
			LastError   string     `json:"last_error"`
			Stale       bool       `json:"stale"`
		} `json:"sources"`
	}
	if code := s.do("GET", "/v1/admin/trust", adminKey, "", &out); code != 200 || len(out.Sources) != 2 {
		t.Fatalf("GET /v1/admin/trust: %d %+v", code, out)
	}
	for _, src := range out.Sources {
		switch src.Name {
		case "proxy":
			if src.Type != "hs256" || src.Keys != 1 || src.LastSuccess == nil || src.Stale || src.LastError != "" {
				t.Errorf("proxy: %+v", src)
			}
		case "idp":
			if src.Type != "jwks_url" || src.Keys != 0 || !src.Stale || src.LastError == "" {
				t.Errorf("idp, unreachable: %+v", src)
			}
		default:
			t.Errorf("unexpected source %q", src.Name)
		}
	}
	if code := s.do("GET", "/v1/admin/trust", "", "", nil); code != 401 {
		t.Errorf("without the admin key: %d", code)
	}
	// Without a registry the list is empty, not absent.
	var empty map[string][]any
	if code := newTestServer(t).do("GET", "/v1/admin/trust", adminKey, "", &empty); code != 200 || empty["sources"] == nil || len(empty["sources"]) != 0 {
		t.Errorf("no registry: %d %v", code, empty)
	}
}
