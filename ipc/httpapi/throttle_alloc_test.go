package httpapi

import (
	"log/slog"
	"net"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify"
	"github.com/verifyd/verifyd/verify/credential"
	"github.com/verifyd/verifyd/verify/throttle"
)

// TestThrottledCacheHitAllocatesNothing: with the throttle on, a
// verification answered from the cache still allocates nothing in the
// handler, whether the client is counted by its address or by the one a
// trusted proxy names, whether another source is in a cool-down, and for
// a key with a rate limit. Under -race only the answers are checked.
func TestThrottledCacheHitAllocatesNothing(t *testing.T) {
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
	cfg := throttle.DefaultConfig()
	cfg.TrustedProxies = []string{"10.0.0.1"}
	l, err := throttle.New(cfg, &throttle.Options{Registerer: reg, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	mgr := verify.NewManager(store, minter, keystore.Sum(adminKey), nil)
	s, err := New(Options{Verifier: v, Manager: mgr, Gatherer: reg, Registerer: reg, Throttle: l})
	if err != nil {
		t.Fatal(err)
	}
	spec := verify.KeySpec{Subject: "alice", Scopes: []string{"tool:data:*"}}
	_, secret, err := mgr.CreateKey(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	spec.Metadata = map[string]string{keystore.MetaRateLimit: "1000000000/s"}
	_, limited, err := mgr.CreateKey(t.Context(), spec)
	if err != nil {
		t.Fatal(err)
	}
	client := &net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 4711}
	proxy := &net.TCPAddr{IP: net.ParseIP("10.0.0.1"), Port: 4711}
	attacker := &net.TCPAddr{IP: net.ParseIP("192.0.2.66"), Port: 4711}
	serve := func(remote net.Addr, uri, token, xff string) *fasthttp.RequestCtx {
		var req fasthttp.Request
		req.Header.SetMethod(fasthttp.MethodGet)
		if uri == "/v1/verify" {
			req.Header.SetMethod(fasthttp.MethodPost)
		}
		req.SetRequestURI(uri)
		req.Header.Set("Authorization", "Bearer "+token)
		if xff != "" {
			req.Header.Set("X-Forwarded-For", xff)
		}
		ctx := new(fasthttp.RequestCtx)
		ctx.Init(&req, remote, nil)
		return ctx
	}
	cases := []struct {
		name         string
		remote       net.Addr
		uri, token   string
		xff          string
		status       int
		beforeAttack bool
	}{
		{"verify, by address", client, "/v1/verify", secret, "", 200, true},
		{"verify, forwarded", proxy, "/v1/verify", secret, "203.0.113.1, 192.0.2.9", 200, true},
		{"authz, forwarded", proxy, "/v1/authz?scope=tool:data:read", secret, "192.0.2.9", 200, true},
		{"verify, rate-limited key", client, "/v1/verify", limited, "", 200, true},
		{"verify, a cool-down elsewhere", client, "/v1/verify", secret, "", 200, false},
		{"authz, a cool-down elsewhere", proxy, "/v1/authz?scope=tool:data:read", secret, "192.0.2.9", 200, false},
		{"verify, the source in a cool-down", attacker, "/v1/verify", secret, "", 429, false},
	}
	attacked := false
	for _, tc := range cases {
		if !tc.beforeAttack && !attacked {
			for range cfg.Failures {
				s.handle(serve(attacker, "/v1/verify", "unknown-key-0123456789", ""))
			}
			attacked = true
		}
		t.Run(tc.name, func(t *testing.T) {
			ctx := serve(tc.remote, tc.uri, tc.token, tc.xff)
			run := func() {
				ctx.Response.Reset()
				s.handle(ctx)
			}
			run() // fill the cache
			store.WaitCache()
			run()
			if ctx.Response.StatusCode() != tc.status {
				t.Fatalf("answer %d %s", ctx.Response.StatusCode(), ctx.Response.Body())
			}
			if raceEnabled {
				return
			}
			if n := testing.AllocsPerRun(200, run); n != 0 {
				t.Errorf("%v allocations", n)
			}
		})
	}
}
