package loadgen

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verifyd/verifyd/ipc"
	"github.com/verifyd/verifyd/rbac"
	"github.com/verifyd/verifyd/verify"
)

// fakeVerifier answers for the keys it knows: ok naming their subject for
// DefaultScope, forbidden for any other scope; malformed for other tokens
// starting with "vk_", unknown for the rest.
type fakeVerifier struct{ subjects map[string]string }

func (f *fakeVerifier) Verify(token, scope string) verify.Result {
	sub, ok := f.subjects[token]
	switch {
	case !ok && strings.HasPrefix(token, "vk_"):
		return verify.Result{Reason: verify.Malformed}
	case !ok:
		return verify.Result{Reason: verify.Unknown}
	}
	r := verify.Result{Reason: verify.OK, Principal: &rbac.Principal{Subject: sub, Profile: &rbac.Profile{Kind: "api_key"}}}
	if scope != DefaultScope {
		r.Reason = verify.Forbidden
	}
	return r
}

// testWorkload returns a workload of n keys, and a verifier that knows
// them under the subject subject(i).
func testWorkload(n int, subject func(i int) string) (*workload, *fakeVerifier) {
	wl := &workload{scope: DefaultScope, forbiddenScope: DefaultForbiddenScope}
	f := &fakeVerifier{subjects: map[string]string{}}
	for i := range n {
		k := key{id: "id", subject: keySubject + string(rune('a'+i)), secret: "vk_secret-" + string(rune('a'+i))}
		wl.keys = append(wl.keys, k)
		wl.forged = append(wl.forged, forge(k.secret))
		f.subjects[k.secret] = subject(i)
	}
	return wl, f
}

// listenSocket serves v over the ipc protocol on a socket in a short
// temporary directory.
func listenSocket(t *testing.T, v ipc.Verifier) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "lg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	srv, err := ipc.Listen(filepath.Join(dir, "s"), ipc.Options{Verifier: v, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	return srv.Addr()
}

// serveHTTP answers POST /v1/verify as the daemon does, from v. The
// answer to request number closeAt (from 1; 0: never) closes the
// connection.
func serveHTTP(t *testing.T, v ipc.Verifier, closeAt int64) string {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in struct{ Token, Scope string }
		if r.URL.Path != "/v1/verify" || r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&in) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		res := v.Verify(in.Token, in.Scope)
		out := map[string]any{"allow": res.Reason == verify.OK, "status": res.Reason.String()}
		if res.Reason == verify.OK {
			out["subject"], out["kind"] = res.Principal.Subject, res.Principal.Kind
		}
		if n.Add(1) == closeAt {
			w.Header().Set("Connection", "close")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(res.Reason.HTTPStatus())
		json.NewEncoder(w).Encode(out)
	}))
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// drive sends n requests of mix over conns with depth in flight on each
// and returns the report and the connections' error.
func drive(t *testing.T, conns []conn, wl *workload, mix Mix, n int64, depth int) (*Report, error) {
	t.Helper()
	r := &run{opts: Options{Depth: depth}, conns: conns}
	t.Cleanup(func() {
		for _, c := range conns {
			c.close()
		}
	})
	rec := newRecorder()
	src := &scheduleSource{wl: wl, sched: mix.schedule(), limit: n}
	src.phase.Store(phaseMeasure)
	start := time.Now()
	err := r.drive(context.Background(), src, rec, 1)
	rep := newReport(&Options{Socket: "test", Conns: len(conns), Depth: depth, Mix: mix})
	rep.fill(rec, time.Since(start))
	return rep, err
}

func dialSockets(t *testing.T, path string, n int) []conn {
	t.Helper()
	var conns []conn
	for range n {
		c, err := dialSocket(context.Background(), path, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	return conns
}

func dialHTTPs(t *testing.T, host string, n int) []conn {
	t.Helper()
	var conns []conn
	for range n {
		c, err := dialHTTP(context.Background(), host, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	return conns
}

var testMix = Mix{OpaqueHit: 3, Unknown: 1, Forged: 1, Forbidden: 1}

// TestConnsCheckAnswers sends a mix over both transports to a server that
// answers right, then to one that names the wrong subject for one key:
// every answer for that key, and only those, is an error.
func TestConnsCheckAnswers(t *testing.T) {
	t.Parallel()
	transports := map[string]func(t *testing.T, v ipc.Verifier) []conn{
		"socket": func(t *testing.T, v ipc.Verifier) []conn { return dialSockets(t, listenSocket(t, v), 3) },
		"http":   func(t *testing.T, v ipc.Verifier) []conn { return dialHTTPs(t, serveHTTP(t, v, 0), 3) },
	}
	for name, dial := range transports {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			right := func(i int) string { return keySubject + string(rune('a'+i)) }
			wl, v := testWorkload(4, right)
			rep, err := drive(t, dial(t, v), wl, testMix, 600, 4)
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]int64{"opaque_hit": 300, "unknown": 100, "forged": 100, "forbidden": 100}
			if rep.Requests != 600 || rep.Errors != 0 || len(rep.Kinds) != len(want) {
				t.Fatalf("right answers: %d requests, %d errors, kinds %+v; failures %+v", rep.Requests, rep.Errors, rep.Kinds, rep.Failures)
			}
			for _, k := range rep.Kinds {
				if k.Requests != want[k.Kind] || k.Errors != 0 {
					t.Errorf("%s: %d requests, %d errors; want %d and 0", k.Kind, k.Requests, k.Errors, want[k.Kind])
				}
			}

			// One key in four is answered for another subject.
			wl, v = testWorkload(4, func(i int) string {
				if i == 2 {
					return "mallory"
				}
				return right(i)
			})
			rep, err = drive(t, dial(t, v), wl, Mix{OpaqueHit: 1}, 2000, 4)
			if err != nil {
				t.Fatal(err)
			}
			if rep.Requests != 2000 || rep.Errors < 200 || rep.Errors > 800 {
				t.Fatalf("a quarter of the answers wrong: %d requests, %d errors", rep.Requests, rep.Errors)
			}
			if len(rep.Failures) != 1 || rep.Failures[0].What != "opaque_hit: the answer names another subject" || rep.Failures[0].Count != rep.Errors {
				t.Errorf("failures %+v", rep.Failures)
			}
		})
	}
}

// TestHTTPLostRequests closes the connection while requests are in
// flight: they are counted as lost errors, and the connection's error is
// returned when it was the only one.
func TestHTTPLostRequests(t *testing.T) {
	t.Parallel()
	wl, v := testWorkload(2, func(i int) string { return keySubject + string(rune('a'+i)) })
	host := serveHTTP(t, v, 50)
	rep, err := drive(t, dialHTTPs(t, host, 1), wl, Mix{OpaqueHit: 1}, 400, 8)
	if err == nil || !strings.Contains(err.Error(), "closed the connection") {
		t.Fatalf("drive: %v, want the closed connection", err)
	}
	if rep.Errors < 1 || rep.Requests < 50 || rep.Requests > 57 {
		t.Errorf("%d requests, %d errors: want the 49 answered and the ones in flight, lost", rep.Requests, rep.Errors)
	}
	if len(rep.Failures) != 1 || !strings.Contains(rep.Failures[0].What, "opaque_hit: no answer: the server closed the connection") {
		t.Errorf("failures %+v", rep.Failures)
	}
}

func TestSocketDepthBeyondServerLimit(t *testing.T) {
	t.Parallel()
	_, v := testWorkload(1, func(int) string { return "x" })
	path := listenSocket(t, v)
	r := &run{opts: Options{Socket: path, Conns: 1, Depth: 1000, Timeout: 10 * time.Second}}
	err := r.dial(context.Background())
	if err == nil || !strings.Contains(err.Error(), "max_in_flight") {
		t.Errorf("dial at depth 1000: %v, want a refusal naming max_in_flight", err)
	}
}

func TestForgeAndUnknownKey(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"vk_" + strings.Repeat("x", 32) + "abcdefgA", "vk_" + strings.Repeat("x", 32) + "abcdefgh"} {
		f := forge(s)
		if f == s || len(f) != len(s) || f[:len(s)-1] != s[:len(s)-1] {
			t.Errorf("forge(%q) = %q: want the last character changed", s, f)
		}
	}
	w := newWorker(newRecorder(), 7)
	seen := map[string]bool{}
	for range 100 {
		k := unknownKey(w.rng)
		if len(k) != 43 || strings.HasPrefix(k, "vk_") || strings.HasPrefix(k, "pat_") || strings.ContainsAny(k, "+/=") || seen[k] {
			t.Fatalf("unknownKey = %q", k)
		}
		seen[k] = true
	}
}
