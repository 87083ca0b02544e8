package bench

import (
	"log/slog"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/valyala/fasthttp"
	"github.com/valyala/fasthttp/fasthttputil"

	"github.com/verifyd/verifyd/ipc/httpapi"
	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify"
)

// httpParallelism is the number of client goroutines per GOMAXPROCS that
// BenchmarkHTTP runs (b.SetParallelism), each with its own connection.
const httpParallelism = 8

// httpRing is how many prebuilt requests, each with its own key, a client
// goroutine or BenchmarkHTTPHandler cycles through.
const httpRing = 64

// httpCase is an endpoint measured over HTTP: how to build its request
// for a secret, and the status every answer must have.
type httpCase struct {
	name    string
	request func(req *fasthttp.Request, secret string)
	status  int
}

// httpCases are the endpoints BenchmarkHTTP and BenchmarkHTTPHandler
// measure, every one with cache-hit opaque keys that grant
// tool:data:read. The floor sends the first one's requests. Another
// endpoint is one more entry here.
var httpCases = []httpCase{
	{"verify/cache_hit", func(req *fasthttp.Request, secret string) {
		req.Header.SetMethod(fasthttp.MethodPost)
		req.SetRequestURI("http://verifyd/v1/verify")
		req.Header.SetContentType("application/json")
		req.SetBodyString(`{"token":"` + secret + `","scope":"tool:data:read"}`)
	}, fasthttp.StatusOK},
	{"authz/cache_hit", func(req *fasthttp.Request, secret string) {
		req.Header.SetMethod(fasthttp.MethodGet)
		req.SetRequestURI("http://verifyd/v1/authz?scope=tool:data:read")
		req.Header.Set(fasthttp.HeaderAuthorization, "Bearer "+secret)
		req.Header.Set("X-Original-URI", "/api/data?id=7")
		req.Header.Set("X-Original-Method", "GET")
	}, fasthttp.StatusOK},
}

// floorHandler is the floor's handler: a fixed 200 with a short body.
func floorHandler(ctx *fasthttp.RequestCtx) {
	ctx.SetContentType("application/json")
	ctx.SetBodyString("{\"allow\":true}\n")
}

// httpEnv is a store of hot, cached keys and the daemon's HTTP handler
// over it, built with httpapi.New as the daemon builds it (metrics on).
type httpEnv struct {
	*env
	handler fasthttp.RequestHandler
}

func newHTTPEnv(b *testing.B) *httpEnv {
	e := newEnv(b, b.TempDir(), hotKeys, 2*hotKeys)
	b.Cleanup(func() { e.store.Close() })
	e.warm(b, e.secrets)
	reg := prometheus.NewRegistry()
	srv, err := httpapi.New(httpapi.Options{
		Verifier:   e.v,
		Manager:    verify.NewManager(e.store, e.minter, keystore.Sum("bench-admin-key-0123456789"), nil),
		Gatherer:   reg,
		Registerer: reg,
		Logger:     slog.New(slog.DiscardHandler),
	})
	if err != nil {
		b.Fatal(err)
	}
	return &httpEnv{env: e, handler: srv.Handler()}
}

// BenchmarkHTTP measures requests over fasthttp's in-memory listener: a
// fasthttp.Server configured with the daemon's defaults serves the
// handler, and b.RunParallel drives it with httpParallelism × GOMAXPROCS
// client goroutines, each with its own connection of one
// fasthttp.HostClient, one request at a time (no pipelining). floor runs
// the same server, client and requests (those of verify/cache_hit) with
// floorHandler in place of the daemon's; floor_authz_request does the
// same with the requests of authz/cache_hit. Reported: requests/s; allocs/op
// counts the client's allocations too (BenchmarkHTTPHandler counts the
// handler's alone).
func BenchmarkHTTP(b *testing.B) {
	e := newHTTPEnv(b)
	b.Run("floor", func(b *testing.B) { benchHTTP(b, floorHandler, e.secrets, httpCases[0]) })
	for _, c := range httpCases {
		b.Run(c.name, func(b *testing.B) { benchHTTP(b, e.handler, e.secrets, c) })
	}
	// The forward-auth request is a GET with three headers more, and its
	// answer carries the identity headers: its own floor sends the same
	// request, so that the ratio measures verifyd, not the request shape.
	b.Run("floor_authz_request", func(b *testing.B) { benchHTTP(b, floorHandler, e.secrets, httpCases[1]) })
}

func benchHTTP(b *testing.B, h fasthttp.RequestHandler, secrets []string, c httpCase) {
	var defaults httpapi.Options
	defaults.EnsureDefaults()
	ln := fasthttputil.NewInmemoryListener()
	srv := &fasthttp.Server{
		Handler:               h,
		Name:                  "verifyd",
		NoDefaultServerHeader: true,
		MaxRequestBodySize:    defaults.MaxBodyBytes,
		ReadTimeout:           defaults.ReadTimeout,
		WriteTimeout:          defaults.WriteTimeout,
		IdleTimeout:           defaults.IdleTimeout,
		Concurrency:           defaults.MaxConnections,
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	defer func() {
		if err := srv.Shutdown(); err != nil {
			b.Error(err)
		}
		if err := <-done; err != nil {
			b.Error(err)
		}
	}()
	client := &fasthttp.HostClient{
		Addr:     "verifyd",
		Dial:     func(string) (net.Conn, error) { return ln.Dial() },
		MaxConns: 1024,
	}
	defer client.CloseIdleConnections()

	b.SetParallelism(httpParallelism)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var goroutines atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		g := int(goroutines.Add(1))
		reqs := make([]fasthttp.Request, httpRing)
		for i := range reqs {
			c.request(&reqs[i], secrets[(g*httpRing+i)%len(secrets)])
		}
		var resp fasthttp.Response
		for i := 0; pb.Next(); i++ {
			if err := client.Do(&reqs[i%httpRing], &resp); err != nil {
				b.Error(err)
				return
			}
			if resp.StatusCode() != c.status {
				b.Errorf("status %d, want %d: %s", resp.StatusCode(), c.status, resp.Body())
				return
			}
		}
	})
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "req/s")
}

// BenchmarkHTTPHandler calls the daemon's handler directly, with no
// server or client, on reused fasthttp.RequestCtx values (httpRing of
// them, each with its own key, its request parsed once): what verifyd's
// own code costs per request and allocates.
func BenchmarkHTTPHandler(b *testing.B) {
	e := newHTTPEnv(b)
	for _, c := range httpCases {
		b.Run(c.name, func(b *testing.B) {
			ctxs := make([]fasthttp.RequestCtx, httpRing)
			for i := range ctxs {
				c.request(&ctxs[i].Request, e.secrets[i%len(e.secrets)])
				e.handler(&ctxs[i]) // warm: the request's URI is parsed and kept
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				ctx := &ctxs[i%httpRing]
				ctx.Response.Reset()
				e.handler(ctx)
				if ctx.Response.StatusCode() != c.status {
					b.Fatalf("status %d, want %d: %s", ctx.Response.StatusCode(), c.status, ctx.Response.Body())
				}
			}
		})
	}
}
