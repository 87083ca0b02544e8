package trust

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/verifyd/verifyd/verify/jwt"
)

var testProfile = &jwt.Profile{Source: "test"}

// waitTimeout bounds every wait of the tests.
const waitTimeout = 10 * time.Second

func genKey(t testing.TB) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// ecJWK returns the public JWK of k with kid, and extra members (a nil
// value removes a member).
func ecJWK(t testing.TB, kid string, k *ecdsa.PrivateKey, extra map[string]any) map[string]any {
	t.Helper()
	point, err := k.PublicKey.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{"kty": "EC", "crv": "P-256", "x": b64(point[1:33]), "y": b64(point[33:]), "use": "sig", "alg": "ES256"}
	if kid != "" {
		m["kid"] = kid
	}
	for name, v := range extra {
		if v == nil {
			delete(m, name)
		} else {
			m[name] = v
		}
	}
	return m
}

func jwks(t testing.TB, keys ...map[string]any) []byte {
	t.Helper()
	if keys == nil {
		keys = []map[string]any{}
	}
	b, err := json.Marshal(map[string]any{"keys": keys})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// rsaJWK is a public RSA key as identity providers publish it beside EC
// keys (Wycheproof's kid-rsa-sign).
func rsaJWK(kid string) map[string]any {
	return map[string]any{"kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid, "e": "AQAB",
		"n": "kqGboBfAWttWPCA-0cGRgsY6SaYoIARt0B_PkaEcIq9HPYNdu9n6UuWHuuTHrjF_ZoQW97r5HaAorNvrMEGTGdxCHZdEtkHvNVVmrtxTBLiQCbCozXhFoIrVcr3qUBrdGnNn_M3jJi7Wg7p_-x62nS5gNG875oyheRkutHsQXikFZwsN3q_TsPNOVlCiHy8mxzaFTUQGm-X8UYexFyAivlDSjgDJLAZSWfxd7k9Gxuwa3AUfQqQcVcegmgKGCaErQ3qQbh1x7WB6iopE3_-GZ8HMAVtR9AmrVscqYsnjhaCehfAI0iKKs8zXr8tISc0ORbaalrkk03H1ZrsEnDKEWQ"}
}

// fakeClock is a settable clock for Options.Now.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *fakeClock {
	return &fakeClock{t: time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// jwksServer is a key set server on 127.0.0.1 whose handler a test can
// replace at any time, and which counts its requests.
type jwksServer struct {
	*httptest.Server
	handler  atomic.Pointer[http.HandlerFunc]
	requests atomic.Int64
}

func newJWKSServer(t testing.TB, body []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.serve(body)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		(*s.handler.Load())(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// serve makes the server answer every request with body.
func (s *jwksServer) serve(body []byte) {
	s.handle(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
}

func (s *jwksServer) handle(h http.HandlerFunc) { s.handler.Store(&h) }

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// testOptions returns options with a fake clock, a fresh metrics registry
// and no logs.
func testOptions(clock *fakeClock) (*Options, *prometheus.Registry) {
	reg := prometheus.NewRegistry()
	return &Options{Now: clock.Now, Registerer: reg, Logger: quietLogger()}, reg
}

func mustNew(t testing.TB, cfg Config, opts *Options) *Registry {
	t.Helper()
	r, err := New(cfg, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// urlConfig is a registry of one jwks_url source that is refreshed only
// when a test asks.
func urlConfig(name, url string) Config {
	return Config{
		FetchTimeout: 2 * time.Second,
		Sources:      []Source{{Name: name, JWKSURL: url, Refresh: time.Hour}},
	}
}

func mustResolve(t testing.TB, r *Registry, alg jwt.Alg, kid string) *jwt.Key {
	t.Helper()
	k, err := r.ResolveKey(alg, kid)
	if err != nil {
		t.Fatalf("ResolveKey(%v, %q): %v", alg, kid, err)
	}
	if k.Alg() != alg {
		t.Fatalf("ResolveKey(%v, %q) returned a %v key", alg, kid, k.Alg())
	}
	return k
}

func refresh(t testing.TB, r *Registry) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	return r.Refresh(ctx)
}

// metricValue returns the value of the counter or gauge name with labels,
// and 0 when it has not been created.
func metricValue(t testing.TB, reg *prometheus.Registry, name string, labels map[string]string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
	next:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if v, ok := labels[lp.GetName()]; ok && v != lp.GetValue() {
					continue next
				}
			}
			return value(m)
		}
	}
	return 0
}

func value(m *dto.Metric) float64 {
	if m.Counter != nil {
		return m.Counter.GetValue()
	}
	return m.Gauge.GetValue()
}

func writeFile(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// replaceFile writes data to path and gives it a modification time of its
// own, so that the change is seen even on file systems with coarse times.
func replaceFile(t testing.TB, path string, data []byte, mtime time.Time) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(path), ".tmp-"+filepath.Base(path))
	writeFile(t, tmp, data)
	if err := os.Chtimes(tmp, mtime, mtime); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func secretText(b []byte) []byte { return []byte(base64.RawURLEncoding.EncodeToString(b) + "\n") }

func randomSecret(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}
