package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var b64url = base64.RawURLEncoding

// idp is an identity provider on loopback: ES256 keys published as a JWKS
// that the test can change.
type idp struct {
	srv     *httptest.Server
	mu      sync.Mutex
	keys    map[string]*ecdsa.PrivateKey
	fetches atomic.Int64
}

func newIDP(t *testing.T, kids ...string) *idp {
	p := &idp{keys: map[string]*ecdsa.PrivateKey{}}
	for _, kid := range kids {
		p.addKey(t, kid)
	}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.fetches.Add(1)
		p.mu.Lock()
		defer p.mu.Unlock()
		var keys []map[string]string
		for kid, k := range p.keys {
			pt, _ := k.PublicKey.Bytes()
			keys = append(keys, map[string]string{
				"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig", "alg": "ES256",
				"x": b64url.EncodeToString(pt[1:33]), "y": b64url.EncodeToString(pt[33:]),
			})
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *idp) addKey(t *testing.T, kid string) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	p.mu.Lock()
	p.keys[kid] = k
	p.mu.Unlock()
}

func (p *idp) dropKey(kid string) {
	p.mu.Lock()
	delete(p.keys, kid)
	p.mu.Unlock()
}

// sign returns an ES256 token under kid.
func (p *idp) sign(t *testing.T, kid string, claims map[string]any) string {
	p.mu.Lock()
	k := p.keys[kid]
	p.mu.Unlock()
	input := jwsInput(t, "ES256", kid, claims)
	d := sha256.Sum256([]byte(input))
	r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return input + "." + b64url.EncodeToString(sig)
}

func jwsInput(t *testing.T, alg, kid string, claims map[string]any) string {
	h, _ := json.Marshal(map[string]string{"alg": alg, "kid": kid, "typ": "JWT"})
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return b64url.EncodeToString(h) + "." + b64url.EncodeToString(c)
}

func hs256(t *testing.T, secret []byte, kid string, claims map[string]any) string {
	input := jwsInput(t, "HS256", kid, claims)
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(input))
	return input + "." + b64url.EncodeToString(m.Sum(nil))
}

func jwtClaims(sub string, lifetime time.Duration) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": "https://issuer.example", "aud": []string{"verifyd"}, "sub": sub,
		"iat": now.Unix(), "exp": now.Add(lifetime).Unix(), "jti": "jti-" + sub,
		"scope": "mailbox:" + sub + ":*", "roles": []string{"agent"},
	}
}

// TestJWTEndToEnd drives the real daemon with two trust sources: a JWKS URL
// on loopback and an HS256 secret from the environment.
func TestJWTEndToEnd(t *testing.T) {
	provider := newIDP(t, "es-1")
	secret := make([]byte, 32)
	rand.Read(secret)
	cfg := filepath.Join(t.TempDir(), "verifyd.yaml")
	body := fmt.Sprintf(`
trust:
  sources:
    - name: idp
      jwks_url: %s/jwks.json
      issuer: https://issuer.example
      audience: [verifyd]
    - name: proxy
      hs256:
        - kid: hs-1
          secret_env: PROXY_SECRET
      issuer: https://issuer.example
      audience: [verifyd]
`, provider.srv.URL)
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, t.TempDir(), "VERIFYD_CONFIG="+cfg, "PROXY_SECRET="+b64url.EncodeToString(secret))

	es := provider.sign(t, "es-1", jwtClaims("alice", time.Hour))
	a := d.verifyHTTP(es, "mailbox:alice:inbox")
	if a.Status != 200 || !a.Allow || a.Kind != "jwt" || a.Subject != "alice" || a.KeyID != "jti-alice" {
		t.Fatalf("ES256 token: %+v\n%s", a, d.output())
	}
	hs := hs256(t, secret, "hs-1", jwtClaims("bob", time.Hour))
	if a := d.verifyHTTP(hs, "mailbox:bob:inbox"); a.Status != 200 || a.Subject != "bob" {
		t.Fatalf("HS256 token: %+v", a)
	}
	if a := d.verifyHTTP(hs, "mailbox:alice:inbox"); a.Status != 403 || a.Reason != "forbidden" {
		t.Errorf("another's mailbox: %+v", a)
	}
	// Revocation through verifyctl: by jti, then by subject; both apply to
	// tokens already cached.
	if out, code := d.ctl(d.adminKey(), "revoke", "jwt", "--jti", "jti-bob"); code != 0 {
		t.Fatalf("revoke jwt --jti: exit %d: %s", code, out)
	}
	if a := d.verifyHTTP(hs, ""); a.Status != 401 || a.Reason != "revoked" {
		t.Errorf("token revoked by jti: %d %s", a.Status, a.Reason)
	}
	erin := provider.sign(t, "es-1", jwtClaims("erin@example.com", time.Hour))
	if a := d.verifyHTTP(erin, ""); a.Status != 200 {
		t.Fatalf("erin: %+v", a)
	}
	// not_before defaults to the daemon's now rounded up to a whole second,
	// which is after erin's iat (now rounded down).
	if out, code := d.ctl(d.adminKey(), "revoke", "jwt", "--subject", "erin@example.com"); code != 0 {
		t.Fatalf("revoke jwt --subject: exit %d: %s", code, out)
	}
	if a := d.verifyHTTP(erin, ""); a.Status != 401 || a.Reason != "revoked" {
		t.Errorf("token of a revoked subject: %d %s", a.Status, a.Reason)
	}

	refusals := map[string]struct {
		token  string
		status string
	}{
		"tampered":          {es[:len(es)-4] + strings.Repeat("A", 4), "bad_signature"},
		"expired":           {provider.sign(t, "es-1", jwtClaims("carol", -2*time.Hour)), "expired"},
		"HS256 under es-1":  {hs256(t, secret, "es-1", jwtClaims("mallory", time.Hour)), "untrusted_key"},
		"unknown HS256 kid": {hs256(t, secret, "hs-2", jwtClaims("mallory", time.Hour)), "untrusted_key"},
		"padded":            {es + "=", "malformed"},
	}
	for name, c := range refusals {
		if a := d.verifyHTTP(c.token, ""); a.Status != 401 || a.Reason != c.status {
			t.Errorf("%s: %d %s, want 401 %s", name, a.Status, a.Reason, c.status)
		}
	}

	// Rotation: the provider publishes es-2 and drops es-1. A token under
	// es-2 makes verifyd refresh once and accept it; es-1 tokens, cached
	// or not, are refused from then on.
	provider.addKey(t, "es-2")
	provider.dropKey("es-1")
	before := provider.fetches.Load()
	es2 := provider.sign(t, "es-2", jwtClaims("dave", time.Hour))
	if a := d.verifyHTTP(es2, ""); a.Status != 200 || a.Subject != "dave" {
		t.Fatalf("token under the new key: %+v\n%s", a, d.output())
	}
	if n := provider.fetches.Load() - before; n != 1 {
		t.Errorf("the new kid caused %d fetches, want 1", n)
	}
	if a := d.verifyHTTP(es, ""); a.Status != 401 || a.Reason != "untrusted_key" {
		t.Errorf("cached token under the removed key: %d %s, want untrusted_key", a.Status, a.Reason)
	}
	// A flood of unknown kids right after causes no further fetch.
	for i := range 50 {
		d.verifyHTTP(hs256(t, secret, fmt.Sprintf("random-%d", i), jwtClaims("x", time.Hour)), "")
		d.verifyHTTP(jwsInput(t, "ES256", fmt.Sprintf("r-%d", i), jwtClaims("y", time.Hour))+"."+b64url.EncodeToString(make([]byte, 64)), "")
	}
	if n := provider.fetches.Load() - before; n != 1 {
		t.Errorf("a flood of unknown kids caused %d fetches in all, want 1", n)
	}
	if code := d.terminate(); code != 0 {
		t.Errorf("exit %d", code)
	}
	if out := d.output(); strings.Contains(out, b64url.EncodeToString(secret)) || strings.Contains(out, es) {
		t.Error("the daemon logged a secret or a token")
	}
}
