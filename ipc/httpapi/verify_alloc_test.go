package httpapi

import (
	"bytes"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify"
	"github.com/verifyd/verifyd/verify/credential"
)

// TestVerifyCacheHitAllocatesNothing guards the hot paths of POST
// /v1/verify and GET /v1/authz: with a real verifier over a real store,
// metrics on, a verification answered from the cache allocates nothing in
// the server's handler (routing and request metrics included), allowed or
// denied, token in the body or in a header. The answers are checked too.
// Under -race, whose detector allocates, only the answers are.
func TestVerifyCacheHitAllocatesNothing(t *testing.T) {
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
	mgr := verify.NewManager(store, minter, keystore.Sum(adminKey), nil)
	s, err := New(Options{Verifier: v, Manager: mgr, Gatherer: reg, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	_, secret, err := mgr.CreateKey(t.Context(), verify.KeySpec{
		Subject: "alice", Scopes: []string{"tool:data:*"}, Roles: []string{"publisher"},
		ProjectRoles: map[string][]string{"p2": {"viewer"}, "p1": {"publisher"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, uri, body, header string
		status                  int
		prefix                  string
	}{
		{"allowed with a scope", "/v1/verify", `{"token":"` + secret + `","scope":"tool:data:read"}`, "", 200, `{"allow":true,"status":"ok","reason":"granted","matched":`},
		{"denied", "/v1/verify", `{"scope":"tool:other:read","token":"` + secret + `"}`, "", 403, `{"allow":false,"status":"forbidden","reason":"no_grant","code":"FORBIDDEN"`},
		{"bearer header", "/v1/verify", "", "Bearer " + secret, 200, `{"allow":true,"status":"ok","reason":"authenticated","subject":"alice"`},
		{"forward auth", "/v1/authz?scope=tool:data:read", "", "Bearer " + secret, 200, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var ctx fasthttp.RequestCtx
			ctx.Request.Header.SetMethod(fasthttp.MethodPost)
			if tc.prefix == "" {
				ctx.Request.Header.SetMethod(fasthttp.MethodGet)
			}
			ctx.Request.SetRequestURI(tc.uri)
			ctx.Request.SetBodyString(tc.body)
			if tc.header != "" {
				ctx.Request.Header.Set("Authorization", tc.header)
			}
			serve := func() {
				ctx.Response.Reset()
				s.handle(&ctx)
			}
			serve() // fill the cache
			store.WaitCache()
			serve()
			if tc.prefix == "" {
				// Forward auth: the answer is the status and the identity headers.
				if ctx.Response.StatusCode() != tc.status || string(ctx.Response.Header.Peek("X-Auth-Subject")) != "alice" || len(ctx.Response.Body()) != 0 {
					t.Fatalf("answer %d %q %s", ctx.Response.StatusCode(), ctx.Response.Header.Peek("X-Auth-Subject"), ctx.Response.Body())
				}
			} else {
				if got := ctx.Response.Body(); ctx.Response.StatusCode() != tc.status || !bytes.HasPrefix(got, []byte(tc.prefix)) || !bytes.HasSuffix(got, []byte("}\n")) {
					t.Fatalf("answer %d %s, want %d %s...", ctx.Response.StatusCode(), got, tc.status, tc.prefix)
				}
				if ct := ctx.Response.Header.ContentType(); string(ct) != "application/json" {
					t.Errorf("content type %q", ct)
				}
			}
			if raceEnabled {
				t.Log("-race: allocations not counted")
				return
			}
			if n := testing.AllocsPerRun(200, serve); n != 0 {
				t.Errorf("a cache hit allocates %v times in the handler", n)
			}
		})
	}
}
