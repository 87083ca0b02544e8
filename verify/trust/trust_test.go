package trust

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/verifyd/verifyd/verify/jwt"
)

// logBuffer collects log output, safe for concurrent use.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func capture(opts *Options) *logBuffer {
	b := &logBuffer{}
	opts.Logger = slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
	return b
}

func refreshes(t testing.TB, reg *prometheus.Registry, source, result string) float64 {
	t.Helper()
	return metricValue(t, reg, "verifyd_trust_refreshes_total", map[string]string{"source": source, "result": result})
}

func wait(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(waitTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// TestBadServer checks, for each way a key set server can fail, that the
// registry keeps its last good keys, counts the failure, and changes
// nothing.
func TestBadServer(t *testing.T) {
	const fetchTimeout = 300 * time.Millisecond
	tests := []struct {
		name  string
		fault func(t *testing.T, s *jwksServer, current map[string]any)
		err   string
	}{
		{"down", func(t *testing.T, s *jwksServer, _ map[string]any) { s.Close() }, "connection refused"},
		{"status 500", func(t *testing.T, s *jwksServer, _ map[string]any) {
			s.handle(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "oops", http.StatusInternalServerError) })
		}, "status 500, want 200"},
		{"empty object", func(t *testing.T, s *jwksServer, _ map[string]any) { s.serve([]byte(`{}`)) }, `no "keys" member`},
		{"no keys", func(t *testing.T, s *jwksServer, _ map[string]any) { s.serve([]byte(`{"keys":[]}`)) }, "no usable ES256 key (0 keys"},
		{"invalid JSON", func(t *testing.T, s *jwksServer, _ map[string]any) { s.serve([]byte(`{"keys":[{"kty":"EC",`)) }, "not JSON"},
		{"declared 50 MB", func(t *testing.T, s *jwksServer, _ map[string]any) {
			s.handle(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Length", fmt.Sprint(50<<20))
				w.Write([]byte(`{"keys":[`))
			})
		}, "body larger than 1048576 bytes"},
		{"invalid point", func(t *testing.T, s *jwksServer, current map[string]any) {
			bad := ecJWK(t, "es-2", genKey(t), nil)
			y, _ := base64.RawURLEncoding.DecodeString(bad["y"].(string))
			y[31] ^= 1
			bad["y"] = b64(y)
			s.serve(jwks(t, current, bad))
		}, "not a point of P-256"},
		{"duplicate kids", func(t *testing.T, s *jwksServer, current map[string]any) {
			s.serve(jwks(t, current, ecJWK(t, "es-1", genKey(t), nil)))
		}, `kid "es-1" is also the kid of keys[0]`},
		{"drops the current key", func(t *testing.T, s *jwksServer, _ map[string]any) {
			// What remains is not for verifyd: the set has no usable key.
			s.serve(jwks(t, rsaJWK("rsa-1")))
		}, "no usable ES256 key (1 keys, 1 not for verifyd)"},
		{"adds d", func(t *testing.T, s *jwksServer, current map[string]any) {
			k := genKey(t)
			s.serve(jwks(t, current, ecJWK(t, "es-2", k, map[string]any{"d": b64(k.D.FillBytes(make([]byte, 32)))})))
		}, `holds a private key ("d")`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			current := ecJWK(t, "es-1", genKey(t), nil)
			srv := newJWKSServer(t, jwks(t, current))
			opts, reg := testOptions(newClock())
			logs := capture(opts)
			cfg := urlConfig("idp", srv.URL+"/jwks")
			cfg.FetchTimeout = fetchTimeout
			r := mustNew(t, cfg, opts)
			before := mustResolve(t, r, jwt.ES256, "es-1")
			status := r.Status()[0]

			tc.fault(t, srv, current)
			err := refresh(t, r)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("Refresh = %v, want an error containing %q", err, tc.err)
			}
			if after := mustResolve(t, r, jwt.ES256, "es-1"); after != before || after.Retired() {
				t.Errorf("the key changed: %p -> %p, retired %v", before, after, after.Retired())
			}
			if got := refreshes(t, reg, "idp", "error"); got != 1 {
				t.Errorf("refreshes_total{result=error} = %v, want 1", got)
			}
			if got := metricValue(t, reg, "verifyd_trust_keys", map[string]string{"source": "idp"}); got != 1 {
				t.Errorf("keys gauge = %v, want 1", got)
			}
			st := r.Status()[0]
			if st.Keys != 1 || !st.LastSuccess.Equal(status.LastSuccess) || st.Stale || !strings.Contains(st.LastError, tc.err) {
				t.Errorf("status %+v", st)
			}
			if _, err := r.ResolveKey(jwt.ES256, "es-2"); !errors.Is(err, jwt.ErrUntrustedKey) {
				t.Errorf("a key of the rejected set resolves: %v", err)
			}
			if tc.name == "adds d" && !strings.Contains(logs.String(), "level=ERROR") {
				t.Errorf("a published private key is not logged at Error:\n%s", logs)
			}
		})
	}

	t.Run("stalls", func(t *testing.T) {
		t.Parallel()
		srv := newJWKSServer(t, jwks(t, ecJWK(t, "es-1", genKey(t), nil)))
		opts, reg := testOptions(newClock())
		cfg := urlConfig("idp", srv.URL+"/jwks")
		cfg.FetchTimeout = fetchTimeout
		r := mustNew(t, cfg, opts)
		before := mustResolve(t, r, jwt.ES256, "es-1")

		entered, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		t.Cleanup(func() { once.Do(func() { close(release) }) }) // runs before the server closes
		var enter sync.Once
		srv.handle(func(w http.ResponseWriter, r *http.Request) {
			enter.Do(func() { close(entered) })
			<-release
		})
		done := make(chan error, 1)
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			done <- r.Refresh(ctx)
		}()
		wait(t, entered, "the stalled request")
		// The fetch is in progress: the handler cannot return before release.
		k, err := r.ResolveKey(jwt.ES256, "es-1")
		select {
		case err := <-done:
			t.Fatalf("the refresh ended (%v) before ResolveKey returned", err)
		default:
		}
		if err != nil || k != before {
			t.Fatalf("ResolveKey during the stall = %p, %v", k, err)
		}
		select {
		case err = <-done:
		case <-time.After(waitTimeout):
			t.Fatal("the stalled refresh did not time out")
		}
		once.Do(func() { close(release) })
		if err == nil || !strings.Contains(err.Error(), "timed out after 300ms") {
			t.Fatalf("Refresh = %v, want a timeout", err)
		}
		if k := mustResolve(t, r, jwt.ES256, "es-1"); k != before {
			t.Error("the key changed")
		}
		if got := refreshes(t, reg, "idp", "error"); got != 1 {
			t.Errorf("refreshes_total{result=error} = %v, want 1", got)
		}
	})

	t.Run("50 MB body", func(t *testing.T) {
		t.Parallel()
		srv := newJWKSServer(t, jwks(t, ecJWK(t, "es-1", genKey(t), nil)))
		opts, reg := testOptions(newClock())
		cfg := urlConfig("idp", srv.URL+"/jwks")
		cfg.FetchTimeout = 5 * time.Second
		r := mustNew(t, cfg, opts)
		before := mustResolve(t, r, jwt.ES256, "es-1")

		var written atomic.Int64
		handlerDone := make(chan struct{})
		srv.handle(func(w http.ResponseWriter, r *http.Request) {
			defer close(handlerDone)
			chunk := bytes.Repeat([]byte(" "), 64<<10)
			w.Write([]byte(`{"keys":[`))
			for written.Load() < 50<<20 {
				n, err := w.Write(chunk)
				written.Add(int64(n))
				if err != nil {
					return
				}
			}
		})
		err := refresh(t, r)
		if err == nil || !strings.Contains(err.Error(), "body larger than 1048576 bytes") {
			t.Fatalf("Refresh = %v, want a size error", err)
		}
		wait(t, handlerDone, "the streaming handler")
		if n := written.Load(); n >= 50<<20 {
			t.Errorf("the server wrote all %d bytes: the body was read to the end", n)
		}
		if k := mustResolve(t, r, jwt.ES256, "es-1"); k != before {
			t.Error("the key changed")
		}
		if got := refreshes(t, reg, "idp", "error"); got != 1 {
			t.Errorf("refreshes_total{result=error} = %v, want 1", got)
		}
	})
}

func TestRotation(t *testing.T) {
	old, next := ecJWK(t, "old", genKey(t), nil), ecJWK(t, "new", genKey(t), nil)
	srv := newJWKSServer(t, jwks(t, old))
	opts, reg := testOptions(newClock())
	r := mustNew(t, urlConfig("idp", srv.URL), opts)
	kOld := mustResolve(t, r, jwt.ES256, "old")

	// Overlap: both are published.
	srv.serve(jwks(t, old, next))
	if err := refresh(t, r); err != nil {
		t.Fatal(err)
	}
	if k := mustResolve(t, r, jwt.ES256, "old"); k != kOld {
		t.Error("the unchanged key got a new *jwt.Key")
	}
	kNew := mustResolve(t, r, jwt.ES256, "new")
	if kOld.Retired() || kNew.Retired() {
		t.Fatal("a published key is retired")
	}

	// The old key is withdrawn.
	srv.serve(jwks(t, next))
	if err := refresh(t, r); err != nil {
		t.Fatal(err)
	}
	if !kOld.Retired() {
		t.Error("the withdrawn key is not retired")
	}
	if _, err := r.ResolveKey(jwt.ES256, "old"); !errors.Is(err, jwt.ErrUntrustedKey) {
		t.Errorf("ResolveKey(old) = %v, want ErrUntrustedKey", err)
	}
	if k := mustResolve(t, r, jwt.ES256, "new"); k != kNew || k.Retired() {
		t.Error("the unchanged key changed")
	}

	// Same kid, other material: a new key, and the old value is retired.
	srv.serve(jwks(t, ecJWK(t, "new", genKey(t), nil)))
	if err := refresh(t, r); err != nil {
		t.Fatal(err)
	}
	if k := mustResolve(t, r, jwt.ES256, "new"); k == kNew || !kNew.Retired() {
		t.Errorf("replaced material: got %p (old %p, retired %v)", k, kNew, kNew.Retired())
	}
	if got := refreshes(t, reg, "idp", "ok"); got < 4 {
		t.Errorf("refreshes_total{result=ok} = %v", got)
	}
}

func TestUnknownKid(t *testing.T) {
	t.Run("first seen", func(t *testing.T) {
		a, b := ecJWK(t, "a", genKey(t), nil), ecJWK(t, "b", genKey(t), nil)
		srv := newJWKSServer(t, jwks(t, a))
		opts, reg := testOptions(newClock())
		r := mustNew(t, urlConfig("idp", srv.URL), opts)
		if n := srv.requests.Load(); n != 1 {
			t.Fatalf("%d requests at start", n)
		}
		srv.serve(jwks(t, a, b))
		mustResolve(t, r, jwt.ES256, "b")
		if n := srv.requests.Load(); n != 2 {
			t.Errorf("%d requests, want 2", n)
		}
		if got := metricValue(t, reg, "verifyd_trust_unknown_kid_total", map[string]string{"result": "refreshed"}); got != 1 {
			t.Errorf("unknown_kid_total{refreshed} = %v", got)
		}
		// Known now: no more requests.
		mustResolve(t, r, jwt.ES256, "b")
		if n := srv.requests.Load(); n != 2 {
			t.Errorf("%d requests, want 2", n)
		}
	})

	t.Run("flood", func(t *testing.T) {
		clock := newClock()
		srv := newJWKSServer(t, jwks(t, ecJWK(t, "a", genKey(t), nil)))
		opts, reg := testOptions(clock)
		cfg := urlConfig("idp", srv.URL)
		cfg.UnknownKidRefresh = time.Minute
		r := mustNew(t, cfg, opts)
		start := srv.requests.Load()

		const goroutines, total = 16, 1000
		var next atomic.Int64
		var wg sync.WaitGroup
		failures := make(chan error, 2*total)
		for range goroutines {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := next.Add(1); i <= total; i = next.Add(1) {
					kid := fmt.Sprintf("random-%d-%x", i, rand.Uint64())
					if _, err := r.ResolveKey(jwt.ES256, kid); !errors.Is(err, jwt.ErrUntrustedKey) {
						failures <- fmt.Errorf("ResolveKey(%s) = %v", kid, err)
					}
					if _, err := r.ResolveKey(jwt.ES256, "a"); err != nil {
						failures <- fmt.Errorf("ResolveKey(a) during the flood = %v", err)
					}
				}
			}()
		}
		wg.Wait()
		close(failures)
		for err := range failures {
			t.Error(err)
		}
		if n := srv.requests.Load() - start; n != 1 {
			t.Errorf("the flood caused %d fetches, want 1", n)
		}
		refreshed := metricValue(t, reg, "verifyd_trust_unknown_kid_total", map[string]string{"result": "refreshed"})
		limited := metricValue(t, reg, "verifyd_trust_unknown_kid_total", map[string]string{"result": "rate_limited"})
		if refreshed != 1 || limited != total-1 {
			t.Errorf("unknown_kid_total: refreshed %v, rate_limited %v", refreshed, limited)
		}

		// Within the interval: nothing more.
		clock.Advance(cfg.UnknownKidRefresh - time.Second)
		r.ResolveKey(jwt.ES256, "another")
		if n := srv.requests.Load() - start; n != 1 {
			t.Errorf("%d fetches within the interval, want 1", n)
		}
		// Past it: one more, and only one.
		clock.Advance(2 * time.Second)
		r.ResolveKey(jwt.ES256, "yet another")
		r.ResolveKey(jwt.ES256, "and another")
		if n := srv.requests.Load() - start; n != 2 {
			t.Errorf("%d fetches after the interval, want 2", n)
		}
	})

	t.Run("never fetched for", func(t *testing.T) {
		srv := newJWKSServer(t, jwks(t, ecJWK(t, "a", genKey(t), nil)))
		opts, _ := testOptions(newClock())
		r := mustNew(t, urlConfig("idp", srv.URL), opts)
		for _, c := range []struct {
			alg jwt.Alg
			kid string
		}{
			{jwt.HS256, "unknown"},                 // HMAC keys never come from a URL
			{jwt.ES256, strings.Repeat("k", 4096)}, // longer than any kid
			{jwt.ES256, ""},                        // no kid: the only key, or nothing
			{0, "unknown"},
		} {
			if _, err := r.ResolveKey(c.alg, c.kid); !errors.Is(err, jwt.ErrUntrustedKey) && c.kid != "" {
				t.Errorf("ResolveKey(%v, %.10q) = %v", c.alg, c.kid, err)
			}
		}
		if n := srv.requests.Load(); n != 1 {
			t.Errorf("%d requests, want only the initial one", n)
		}
	})

	t.Run("waits for the refresh in flight", func(t *testing.T) {
		a, b := ecJWK(t, "a", genKey(t), nil), ecJWK(t, "b", genKey(t), nil)
		srv := newJWKSServer(t, jwks(t, a))
		opts, _ := testOptions(newClock())
		r := mustNew(t, urlConfig("idp", srv.URL), opts)
		entered, release := make(chan struct{}), make(chan struct{})
		var once sync.Once
		t.Cleanup(func() { once.Do(func() { close(release) }) })
		body := jwks(t, a, b)
		var enter sync.Once
		srv.handle(func(w http.ResponseWriter, r *http.Request) {
			enter.Do(func() { close(entered) })
			<-release
			w.Write(body)
		})
		const lookups = 8
		results := make(chan error, lookups)
		go func() { _, err := r.ResolveKey(jwt.ES256, "b"); results <- err }()
		wait(t, entered, "the kid-triggered fetch")
		// The rate limit allows no second fetch; these join the one in flight.
		for range lookups - 1 {
			go func() { _, err := r.ResolveKey(jwt.ES256, "b"); results <- err }()
		}
		once.Do(func() { close(release) })
		for range lookups {
			select {
			case err := <-results:
				if err != nil {
					t.Errorf("ResolveKey(b) = %v", err)
				}
			case <-time.After(waitTimeout):
				t.Fatal("a lookup did not return")
			}
		}
		if n := srv.requests.Load(); n != 2 {
			t.Errorf("%d requests, want 2", n)
		}
	})
}

func TestStaleness(t *testing.T) {
	clock := newClock()
	key := ecJWK(t, "a", genKey(t), nil)
	srv := newJWKSServer(t, jwks(t, key))
	opts, reg := testOptions(clock)
	logs := capture(opts)
	cfg := urlConfig("idp", srv.URL)
	cfg.MaxStaleness = time.Hour
	cfg.Sources[0].Refresh = 10 * time.Minute
	r := mustNew(t, cfg, opts)
	ka := mustResolve(t, r, jwt.ES256, "a")
	stale := func() float64 { return metricValue(t, reg, "verifyd_trust_stale", map[string]string{"source": "idp"}) }
	if stale() != 0 {
		t.Error("stale after a good fetch")
	}

	srv.handle(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusServiceUnavailable) })
	clock.Advance(59 * time.Minute)
	if err := refresh(t, r); err == nil {
		t.Fatal("Refresh succeeded")
	}
	if k := mustResolve(t, r, jwt.ES256, "a"); k != ka || r.Status()[0].Stale {
		t.Fatal("the source went stale before max_staleness")
	}

	clock.Advance(2 * time.Minute)
	if err := refresh(t, r); err == nil {
		t.Fatal("Refresh succeeded")
	}
	if !ka.Retired() {
		t.Error("the key of a stale source is not retired")
	}
	if _, err := r.ResolveKey(jwt.ES256, "a"); !errors.Is(err, jwt.ErrUntrustedKey) {
		t.Errorf("ResolveKey on a stale source = %v", err)
	}
	if st := r.Status()[0]; !st.Stale || st.Keys != 0 || stale() != 1 {
		t.Errorf("status %+v, stale gauge %v", st, stale())
	}
	if n := strings.Count(logs.String(), "source is stale"); n != 1 {
		t.Errorf("staleness logged %d times:\n%s", n, logs)
	}
	clock.Advance(time.Minute)
	refresh(t, r)
	if n := strings.Count(logs.String(), "source is stale"); n != 1 {
		t.Errorf("staleness logged %d times after another failure", n)
	}

	srv.serve(jwks(t, key))
	if err := refresh(t, r); err != nil {
		t.Fatal(err)
	}
	if k := mustResolve(t, r, jwt.ES256, "a"); k == ka || k.Retired() {
		t.Error("the restored key is the retired value")
	}
	if st := r.Status()[0]; st.Stale || st.Keys != 1 || st.LastError != "" || !st.LastSuccess.Equal(clock.Now()) || stale() != 0 {
		t.Errorf("status after recovery %+v", st)
	}
	if !strings.Contains(logs.String(), "source restored") {
		t.Error("the recovery is not logged")
	}
}

func TestNeverFetched(t *testing.T) {
	srv := newJWKSServer(t, nil)
	srv.handle(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "down", http.StatusBadGateway) })
	opts, reg := testOptions(newClock())
	r := mustNew(t, urlConfig("idp", srv.URL), opts) // a failed initial fetch is not fatal
	st := r.Status()[0]
	if st.Keys != 0 || !st.Stale || !st.LastSuccess.IsZero() || !strings.Contains(st.LastError, "status 502") {
		t.Errorf("status %+v", st)
	}
	if got := metricValue(t, reg, "verifyd_trust_stale", map[string]string{"source": "idp"}); got != 1 {
		t.Errorf("stale gauge %v", got)
	}
	srv.serve(jwks(t, ecJWK(t, "a", genKey(t), nil)))
	mustResolve(t, r, jwt.ES256, "a") // the unknown kid refreshes it
}

func TestOIDC(t *testing.T) {
	setup := func(t *testing.T, issuerPath string, docIssuer func(base string) string) (*jwksServer, *atomic.Int64, *Registry, *prometheus.Registry) {
		key := ecJWK(t, "oidc-1", genKey(t), nil)
		srv := newJWKSServer(t, nil)
		var discoveries atomic.Int64
		set := jwks(t, key)
		srv.handle(func(w http.ResponseWriter, r *http.Request) {
			switch r.URL.Path {
			case strings.TrimSuffix(issuerPath, "/") + "/.well-known/openid-configuration":
				discoveries.Add(1)
				fmt.Fprintf(w, `{"issuer":%q,"jwks_uri":%q,"token_endpoint":"x"}`, docIssuer(srv.URL), srv.URL+"/certs")
			case "/certs":
				if r.Header.Get("Accept") != "application/json" {
					http.Error(w, "accept", http.StatusNotAcceptable)
					return
				}
				w.Write(set)
			default:
				http.NotFound(w, r)
			}
		})
		opts, reg := testOptions(newClock())
		r := mustNew(t, Config{Sources: []Source{{Name: "oidc", OIDCIssuer: srv.URL + issuerPath, Refresh: time.Hour}}}, opts)
		return srv, &discoveries, r, reg
	}
	for _, path := range []string{"/realms/main", "/realms/main/"} {
		t.Run("discovery "+path, func(t *testing.T) {
			srv, discoveries, r, _ := setup(t, path, func(base string) string { return base + path })
			k := mustResolve(t, r, jwt.ES256, "oidc-1")
			if iss := k.Profile().Issuer; iss != srv.URL+path {
				t.Errorf("profile issuer %q", iss)
			}
			if err := refresh(t, r); err != nil {
				t.Fatal(err)
			}
			if n, d := srv.requests.Load(), discoveries.Load(); n != 3 || d != 1 {
				t.Errorf("%d requests and %d discoveries, want 3 and 1 (the jwks_uri is kept)", n, d)
			}
		})
	}
	t.Run("issuer mismatch", func(t *testing.T) {
		_, _, r, reg := setup(t, "/realms/main", func(base string) string { return base + "/realms/other" })
		if _, err := r.ResolveKey(jwt.ES256, "oidc-1"); !errors.Is(err, jwt.ErrUntrustedKey) {
			t.Errorf("ResolveKey = %v", err)
		}
		st := r.Status()[0]
		if st.Keys != 0 || !strings.Contains(st.LastError, `discovery: the document's issuer "http://`) || !strings.Contains(st.LastError, "is not the configured issuer") {
			t.Errorf("status %+v", st)
		}
		if got := refreshes(t, reg, "oidc", "error"); got < 1 {
			t.Errorf("refreshes_total{error} = %v", got)
		}
	})
	t.Run("trailing slash is significant", func(t *testing.T) {
		_, _, r, _ := setup(t, "/realms/main/", func(base string) string { return base + "/realms/main" })
		if st := r.Status()[0]; st.Keys != 0 || !strings.Contains(st.LastError, "is not the configured issuer") {
			t.Errorf("status %+v", st)
		}
	})
	t.Run("failure discovers again", func(t *testing.T) {
		srv, discoveries, r, _ := setup(t, "", func(base string) string { return base })
		mustResolve(t, r, jwt.ES256, "oidc-1")
		h := *srv.handler.Load()
		srv.handle(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == "/certs" {
				http.Error(w, "moved", http.StatusNotFound)
				return
			}
			h(w, r)
		})
		if err := refresh(t, r); err == nil {
			t.Fatal("Refresh succeeded")
		}
		srv.handle(h)
		if err := refresh(t, r); err != nil {
			t.Fatal(err)
		}
		if d := discoveries.Load(); d != 2 {
			t.Errorf("%d discoveries, want 2", d)
		}
	})
}

func TestFiles(t *testing.T) {
	t.Run("key set", func(t *testing.T) {
		dir := t.TempDir()
		path := dir + "/jwks.json"
		a, b := ecJWK(t, "a", genKey(t), nil), ecJWK(t, "b", genKey(t), nil)
		writeFile(t, path, jwks(t, a))
		opts, reg := testOptions(newClock())
		r := mustNew(t, Config{Sources: []Source{{Name: "file", JWKSFile: path, Refresh: time.Hour}}}, opts)
		ka := mustResolve(t, r, jwt.ES256, "a")

		mtime := time.Now().Add(-time.Hour)
		replaceFile(t, path, jwks(t, b), mtime)
		if err := refresh(t, r); err != nil {
			t.Fatal(err)
		}
		kb := mustResolve(t, r, jwt.ES256, "b")
		if !ka.Retired() {
			t.Error("the removed key is not retired")
		}
		if _, err := r.ResolveKey(jwt.ES256, "a"); !errors.Is(err, jwt.ErrUntrustedKey) {
			t.Errorf("ResolveKey(a) = %v", err)
		}

		// Unchanged: not reloaded.
		ok := refreshes(t, reg, "file", "ok")
		if err := refresh(t, r); err != nil {
			t.Fatal(err)
		}
		if got := refreshes(t, reg, "file", "ok"); got != ok {
			t.Errorf("an unchanged file was reloaded (%v -> %v)", ok, got)
		}

		// Invalid: the last good set stays.
		mtime = mtime.Add(time.Second)
		replaceFile(t, path, []byte(`{"keys":[`), mtime)
		if err := refresh(t, r); err == nil || !strings.Contains(err.Error(), "not JSON") {
			t.Fatalf("Refresh = %v", err)
		}
		if k := mustResolve(t, r, jwt.ES256, "b"); k != kb || k.Retired() {
			t.Error("an invalid file replaced the last good set")
		}
		if got := refreshes(t, reg, "file", "error"); got != 1 {
			t.Errorf("refreshes_total{error} = %v", got)
		}

		// Valid again, with b unchanged and c added.
		mtime = mtime.Add(time.Second)
		replaceFile(t, path, jwks(t, b, ecJWK(t, "c", genKey(t), nil)), mtime)
		if err := refresh(t, r); err != nil {
			t.Fatal(err)
		}
		if k := mustResolve(t, r, jwt.ES256, "b"); k != kb {
			t.Error("the unchanged key got a new *jwt.Key")
		}
		mustResolve(t, r, jwt.ES256, "c")
	})

	t.Run("secret", func(t *testing.T) {
		dir := t.TempDir()
		path := dir + "/secret"
		s1, s2 := randomSecret(t, 32), randomSecret(t, 48)
		writeFile(t, path, secretText(s1))
		opts, _ := testOptions(newClock())
		logs := capture(opts)
		r := mustNew(t, Config{Sources: []Source{{Name: "proxy", HS256: []Secret{{SecretFile: path}}, Refresh: time.Hour}}}, opts)
		k1 := mustResolve(t, r, jwt.HS256, "")

		mtime := time.Now().Add(-time.Hour)
		replaceFile(t, path, secretText(s2), mtime)
		if err := refresh(t, r); err != nil {
			t.Fatal(err)
		}
		k2 := mustResolve(t, r, jwt.HS256, "")
		want, _ := jwt.NewHS256Key("", s2, testProfile)
		if k2 == k1 || !k1.Retired() || !k2.SameMaterial(want) {
			t.Errorf("after the change: k1 %p retired %v, k2 %p", k1, k1.Retired(), k2)
		}

		mtime = mtime.Add(time.Second)
		short := secretText(randomSecret(t, 16))
		replaceFile(t, path, short, mtime)
		if err := refresh(t, r); err == nil || !strings.Contains(err.Error(), "hs256[0]: secret is 16 bytes, need at least 32") {
			t.Fatalf("Refresh = %v", err)
		}
		if k := mustResolve(t, r, jwt.HS256, ""); k != k2 {
			t.Error("an invalid secret replaced the last good one")
		}
		for _, s := range [][]byte{secretText(s1), secretText(s2), short} {
			if strings.Contains(logs.String(), strings.TrimSpace(string(s))[:12]) {
				t.Fatalf("a secret is in the logs:\n%s", logs)
			}
		}
	})

	t.Run("reloaded by the loop", func(t *testing.T) {
		dir := t.TempDir()
		path := dir + "/jwks.json"
		writeFile(t, path, jwks(t, ecJWK(t, "a", genKey(t), nil)))
		opts, _ := testOptions(newClock())
		r := mustNew(t, Config{Sources: []Source{{Name: "file", JWKSFile: path, Refresh: 10 * time.Millisecond}}}, opts)
		replaceFile(t, path, jwks(t, ecJWK(t, "b", genKey(t), nil)), time.Now().Add(-time.Hour))
		deadline := time.Now().Add(waitTimeout)
		for {
			if _, err := r.ResolveKey(jwt.ES256, "b"); err == nil {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the changed file was not reloaded")
			}
			time.Sleep(5 * time.Millisecond)
		}
	})

	t.Run("missing at start", func(t *testing.T) {
		_, err := New(Config{Sources: []Source{{Name: "file", JWKSFile: t.TempDir() + "/none.json"}}}, &Options{Logger: quietLogger()})
		if err == nil || !strings.Contains(err.Error(), "trust.sources[0] (file): open ") {
			t.Errorf("New = %v", err)
		}
	})
	t.Run("too large", func(t *testing.T) {
		path := t.TempDir() + "/jwks.json"
		writeFile(t, path, bytes.Repeat([]byte(" "), 2048))
		_, err := New(Config{MaxJWKSBytes: 1024, Sources: []Source{{Name: "file", JWKSFile: path}}}, &Options{Logger: quietLogger()})
		if err == nil || !strings.Contains(err.Error(), "is larger than 1024 bytes") {
			t.Errorf("New = %v", err)
		}
	})
}

// staticRegistry holds the ES256 keys of keys (in one file) and one HS256
// secret with kid hsKid.
func staticRegistry(t *testing.T, hsKid string, keys ...map[string]any) *Registry {
	dir := t.TempDir()
	writeFile(t, dir+"/jwks.json", jwks(t, keys...))
	secret := string(secretText(randomSecret(t, 32)))
	cfg := Config{Sources: []Source{
		{Name: "file", JWKSFile: dir + "/jwks.json"},
		{Name: "proxy", HS256: []Secret{{Kid: hsKid, SecretEnv: "S"}}},
	}}
	return mustNew(t, cfg, &Options{Getenv: func(string) string { return secret }, Logger: quietLogger()})
}

func TestNoKid(t *testing.T) {
	r := staticRegistry(t, "", ecJWK(t, "es-1", genKey(t), nil))
	if k := mustResolve(t, r, jwt.ES256, ""); k.ID() != "es-1" {
		t.Errorf("ResolveKey(ES256, \"\") = %q", k.ID())
	}
	if k := mustResolve(t, r, jwt.HS256, ""); k.ID() != "" || k.Profile().Source != "proxy" {
		t.Errorf("ResolveKey(HS256, \"\") = %q", k.ID())
	}

	r = staticRegistry(t, "hs", ecJWK(t, "es-1", genKey(t), nil), ecJWK(t, "es-2", genKey(t), nil))
	_, err := r.ResolveKey(jwt.ES256, "")
	if !errors.Is(err, jwt.ErrUntrustedKey) || !strings.Contains(err.Error(), "no key id and the registry holds 2 ES256 keys") {
		t.Errorf("ResolveKey(ES256, \"\") with two keys = %v", err)
	}
	mustResolve(t, r, jwt.HS256, "") // still the only HS256 key
}

func TestAlgorithmBinding(t *testing.T) {
	r := staticRegistry(t, "hs-1", ecJWK(t, "es-1", genKey(t), nil))
	for _, c := range []struct {
		alg jwt.Alg
		kid string
	}{
		{jwt.HS256, "es-1"}, // an HMAC never selects an EC key
		{jwt.ES256, "hs-1"}, // an EC signature never selects a secret
		{0, "es-1"},
		{99, "hs-1"},
		{0, ""},
	} {
		k, err := r.ResolveKey(c.alg, c.kid)
		if k != nil || !errors.Is(err, jwt.ErrUntrustedKey) {
			t.Errorf("ResolveKey(%v, %q) = %v, %v; want ErrUntrustedKey", c.alg, c.kid, k, err)
		}
	}
	mustResolve(t, r, jwt.ES256, "es-1")
	mustResolve(t, r, jwt.HS256, "hs-1")

	// A fetched source: a mismatch is not an unknown kid, and fetches nothing.
	srv := newJWKSServer(t, jwks(t, ecJWK(t, "url-1", genKey(t), nil)))
	opts, _ := testOptions(newClock())
	u := mustNew(t, urlConfig("idp", srv.URL), opts)
	if _, err := u.ResolveKey(jwt.HS256, "url-1"); !errors.Is(err, jwt.ErrUntrustedKey) {
		t.Errorf("ResolveKey(HS256, url-1) = %v", err)
	}
	if n := srv.requests.Load(); n != 1 {
		t.Errorf("%d requests", n)
	}
}

func TestKidAcrossSources(t *testing.T) {
	shared := "shared"
	dir := t.TempDir()
	writeFile(t, dir+"/a.json", jwks(t, ecJWK(t, shared, genKey(t), nil)))
	writeFile(t, dir+"/b.json", jwks(t, ecJWK(t, shared, genKey(t), nil)))

	_, err := New(Config{Sources: []Source{
		{Name: "a", JWKSFile: dir + "/a.json"},
		{Name: "b", JWKSFile: dir + "/b.json"},
	}}, &Options{Logger: quietLogger()})
	if err == nil || !strings.Contains(err.Error(), `trust.sources[1] (b): kid "shared" is already a key of source a`) {
		t.Errorf("New = %v", err)
	}

	srv := newJWKSServer(t, jwks(t, ecJWK(t, shared, genKey(t), nil)))
	opts, reg := testOptions(newClock())
	r := mustNew(t, Config{Sources: []Source{
		{Name: "a", JWKSFile: dir + "/a.json"},
		{Name: "idp", JWKSURL: srv.URL, Refresh: time.Hour},
	}}, opts)
	if k := mustResolve(t, r, jwt.ES256, shared); k.Profile().Source != "a" {
		t.Errorf("the kid resolves to source %s", k.Profile().Source)
	}
	if got := refreshes(t, reg, "idp", "error"); got != 1 {
		t.Errorf("refreshes_total{idp,error} = %v", got)
	}
	if st := r.Status()[1]; !strings.Contains(st.LastError, "already a key of source a") {
		t.Errorf("status %+v", st)
	}
}

func TestErrorsNeverShowTheKid(t *testing.T) {
	r := staticRegistry(t, "hs-1", ecJWK(t, "es-1", genKey(t), nil), ecJWK(t, "es-2", genKey(t), nil))
	for _, kid := range []string{"evil-kid", "../../../../dev/null", "x' UNION SELECT 'secret' -- ", strings.Repeat("k", 4096), "es-1\x00"} {
		for _, alg := range []jwt.Alg{jwt.ES256, jwt.HS256} {
			_, err := r.ResolveKey(alg, kid)
			if !errors.Is(err, jwt.ErrUntrustedKey) {
				t.Errorf("ResolveKey(%v, %.20q) = %v", alg, kid, err)
			}
			if err != nil && strings.Contains(err.Error(), kid[:4]) {
				t.Errorf("the error shows the kid: %v", err)
			}
		}
	}
}

func TestRedaction(t *testing.T) {
	srv := newJWKSServer(t, nil)
	srv.handle(func(w http.ResponseWriter, r *http.Request) { http.Error(w, "no", http.StatusForbidden) })
	opts, _ := testOptions(newClock())
	logs := capture(opts)
	u := strings.Replace(srv.URL, "http://", "http://user:hunter2@", 1) + "/jwks?api_key=topsecret#frag"
	r := mustNew(t, urlConfig("idp", u), opts)
	err := refresh(t, r)
	for _, text := range []string{err.Error(), r.Status()[0].LastError, logs.String()} {
		if strings.Contains(text, "hunter2") || strings.Contains(text, "topsecret") || strings.Contains(text, "frag") {
			t.Errorf("a secret part of the URL shows:\n%s", text)
		}
	}
	if !strings.Contains(err.Error(), srv.URL+"/jwks: status 403") {
		t.Errorf("Refresh = %v", err)
	}
}

func TestClose(t *testing.T) {
	srv := newJWKSServer(t, jwks(t, ecJWK(t, "a", genKey(t), nil)))
	opts, reg := testOptions(newClock())
	cfg := urlConfig("idp", srv.URL)
	cfg.FetchTimeout = time.Minute
	r, err := New(cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	k := mustResolve(t, r, jwt.ES256, "a")

	// Close aborts a fetch that would stall for the whole FetchTimeout.
	entered, release := make(chan struct{}), make(chan struct{})
	defer close(release)
	var enter sync.Once
	srv.handle(func(w http.ResponseWriter, r *http.Request) {
		enter.Do(func() { close(entered) })
		<-release
	})
	done := make(chan error, 1)
	go func() { done <- r.Refresh(context.Background()) }()
	wait(t, entered, "the stalled request")
	closed := make(chan struct{})
	go func() { r.Close(); close(closed) }()
	wait(t, closed, "Close")
	select {
	case err := <-done:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Refresh during Close = %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Refresh did not return")
	}

	if err := r.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if err := r.Refresh(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Refresh after Close = %v", err)
	}
	if got, err := r.ResolveKey(jwt.ES256, "a"); got != k || err != nil {
		t.Errorf("ResolveKey after Close = %v, %v", got, err)
	}
	if _, err := r.ResolveKey(jwt.ES256, "unknown"); !errors.Is(err, jwt.ErrUntrustedKey) {
		t.Errorf("ResolveKey(unknown) after Close = %v", err)
	}
	// The metrics were unregistered: a new registry may register them.
	srv.serve(jwks(t, ecJWK(t, "a", genKey(t), nil)))
	mustNew(t, cfg, opts)
	_ = reg
}

func TestMetricNames(t *testing.T) {
	srv := newJWKSServer(t, jwks(t, ecJWK(t, "a", genKey(t), nil)))
	opts, reg := testOptions(newClock())
	mustNew(t, urlConfig("idp", srv.URL), opts)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, f := range families {
		got[f.GetName()] = true
	}
	for _, name := range []string{
		"verifyd_trust_refreshes_total", "verifyd_trust_keys", "verifyd_trust_last_success_timestamp_seconds",
		"verifyd_trust_stale", "verifyd_trust_unknown_kid_total", "verifyd_trust_skipped_keys",
	} {
		if !got[name] {
			t.Errorf("metric %s is missing", name)
		}
	}
	want := float64(newClock().Now().Unix())
	if v := metricValue(t, reg, "verifyd_trust_last_success_timestamp_seconds", map[string]string{"source": "idp"}); v != want {
		t.Errorf("last success %v, want %v", v, want)
	}
	// A second registry on the same Registerer is refused.
	if _, err := New(urlConfig("idp", srv.URL), opts); err == nil {
		t.Error("New registered the same metrics twice")
	}
}
