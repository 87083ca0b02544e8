package ipc

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"reflect"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify"
	"github.com/verifyd/verifyd/verify/credential"
)

var clientQuietLog = slog.New(slog.DiscardHandler)

// clientFixture is a real Server over a real store and verifier, on a
// socket in a temporary directory.
type clientFixture struct {
	path string
	v    *verify.Verifier
	mgr  *verify.Manager
	opts Options

	mu   sync.Mutex
	srv  *Server
	done chan error
}

// startClientFixture starts a server with opts (Verifier and Logger are
// filled in). It is stopped when the test ends.
func startClientFixture(tb testing.TB, opts Options) *clientFixture {
	tb.Helper()
	dir := tb.TempDir()
	store, err := keystore.Open(filepath.Join(dir, "db"), &keystore.Options{Logger: clientQuietLog})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	ck, err := credential.NewChecksumKey()
	if err != nil {
		tb.Fatal(err)
	}
	minter, err := credential.NewMinter(ck)
	if err != nil {
		tb.Fatal(err)
	}
	v, err := verify.New(store, minter, &verify.Options{Logger: clientQuietLog})
	if err != nil {
		tb.Fatal(err)
	}
	opts.Verifier = v
	opts.Logger = clientQuietLog
	f := &clientFixture{
		path: filepath.Join(dir, "v.sock"),
		v:    v,
		mgr:  verify.NewManager(store, minter, keystore.Sum("admin-key-for-tests"), nil),
		opts: opts,
	}
	f.start(tb)
	tb.Cleanup(f.stop)
	return f
}

// start listens on the fixture's path and serves.
func (f *clientFixture) start(tb testing.TB) {
	tb.Helper()
	srv, err := Listen(f.path, f.opts)
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()
	f.mu.Lock()
	f.srv, f.done = srv, done
	f.mu.Unlock()
}

// stop shuts the server down, if it runs.
func (f *clientFixture) stop() {
	f.mu.Lock()
	srv, done := f.srv, f.done
	f.srv = nil
	f.mu.Unlock()
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	<-done
}

// key creates a credential and returns its record and secret.
func (f *clientFixture) key(tb testing.TB, spec verify.KeySpec) (keystore.Record, string) {
	tb.Helper()
	rec, secret, err := f.mgr.CreateKey(context.Background(), spec)
	if err != nil {
		tb.Fatal(err)
	}
	return rec, secret
}

// clientDial dials path and closes the client when the test ends.
func clientDial(tb testing.TB, path string, opts *ClientOptions) *Client {
	tb.Helper()
	if opts == nil {
		opts = &ClientOptions{}
	}
	if opts.Logger == nil {
		opts.Logger = clientQuietLog
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, path, opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	return c
}

// clientWantResult is what a Client should return for the verifier's own answer
// r, converted the way the server converts it.
func clientWantResult(r verify.Result) Result {
	w := Result{Status: r.Reason}
	if r.Reason != verify.OK && r.Reason != verify.Forbidden {
		return w
	}
	w.CacheTTL = r.CacheTTL.Truncate(time.Millisecond)
	if !r.ExpiresAt.IsZero() {
		w.ExpiresAt = time.UnixMilli(r.ExpiresAt.UnixMilli())
	}
	if p := r.Principal; p != nil {
		w.Subject, w.Kind, w.KeyID, w.Source, w.Realm = p.Subject, p.Kind, p.KeyID, p.Source, p.Realm
		if len(p.Roles) > 0 {
			w.Roles = p.Roles
		}
	}
	if r.Reason == verify.OK {
		w.Grant = r.Grant()
	}
	return w
}

func clientSameResult(got, want Result) bool {
	if !got.ExpiresAt.Equal(want.ExpiresAt) {
		return false
	}
	got.ExpiresAt, want.ExpiresAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(got, want)
}

// clientCheckNoLeak returns a function that fails the test when more goroutines
// run than when clientCheckNoLeak was called, after waiting up to 5s for them to
// end. Tests that use it must not be parallel.
func clientCheckNoLeak(t *testing.T) func() {
	t.Helper()
	before := runtime.NumGoroutine()
	return func() {
		t.Helper()
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				n := runtime.Stack(buf, true)
				t.Errorf("%d goroutines before, %d after:\n%s", before, runtime.NumGoroutine(), buf[:n])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// clientVerifyCase is one token and scope and the verifier's own answer.
type clientVerifyCase struct {
	name         string
	token, scope string
	want         Result
}

// clientCases creates credentials in f and returns cases covering every
// kind of answer.
func clientCases(t testing.TB, f *clientFixture) []clientVerifyCase {
	t.Helper()
	ctx := context.Background()
	_, alice := f.key(t, verify.KeySpec{Subject: "alice", Scopes: []string{"orders:*"}, Roles: []string{"publisher", "consumer"}, ExpiresIn: 48 * time.Hour})
	_, bob := f.key(t, verify.KeySpec{Subject: "bob", Scopes: []string{"billing:read"}})
	revoked, revokedSecret := f.key(t, verify.KeySpec{Subject: "carol"})
	if _, err := f.mgr.RevokeKey(ctx, revoked.ID); err != nil {
		t.Fatal(err)
	}
	cases := []clientVerifyCase{
		{name: "allowed with scope and roles", token: alice, scope: "orders:publish"},
		{name: "allowed without scope", token: alice},
		{name: "allowed without roles", token: bob, scope: "billing:read"},
		{name: "forbidden", token: alice, scope: "billing:read"},
		{name: "revoked", token: revokedSecret, scope: "orders:publish"},
		{name: "unknown", token: "vk_this-is-not-a-known-key-0123456789", scope: "orders:publish"},
		{name: "malformed", token: "x"},
		{name: "invalid scope", token: alice, scope: "a::b"},
	}
	for i := range cases {
		cases[i].want = clientWantResult(f.v.Verify(cases[i].token, cases[i].scope))
	}
	return cases
}

func TestClientVerify(t *testing.T) {
	t.Parallel()
	f := startClientFixture(t, Options{})
	cases := clientCases(t, f)
	c := clientDial(t, f.path, nil)
	if cases[0].want.Status != verify.OK || cases[0].want.Grant != "orders:*" || len(cases[0].want.Roles) != 2 || cases[0].want.ExpiresAt.IsZero() {
		t.Fatalf("fixture: alice's answer is %+v", cases[0].want)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got, err := c.Verify(context.Background(), tc.token, tc.scope)
			if err != nil {
				t.Fatal(err)
			}
			if !clientSameResult(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			if got.Allowed() != (tc.want.Status == verify.OK) {
				t.Errorf("Allowed() = %t for %v", got.Allowed(), got.Status)
			}
		})
	}
}

func TestClientPingAndLimits(t *testing.T) {
	t.Parallel()
	f := startClientFixture(t, Options{MaxInFlight: 7, MaxTokenBytes: 100, IdleTimeout: time.Minute})
	c := clientDial(t, f.path, nil)
	if err := c.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := HelloOK{Version: 1, MaxFrameBytes: DefaultMaxFrameBytes, MaxInFlight: 7, MaxTokenBytes: 100, MaxScopeBytes: DefaultMaxScopeBytes, IdleTimeoutMS: 60000}
	if got := c.Limits(); got != want {
		t.Errorf("Limits() = %+v, want %+v", got, want)
	}
}

func TestClientConcurrent(t *testing.T) {
	t.Parallel()
	f := startClientFixture(t, Options{})
	cases := clientCases(t, f)
	c := clientDial(t, f.path, nil)
	const goroutines, calls = 64, 1000
	var wg sync.WaitGroup
	var ok atomic.Int64
	for g := range goroutines {
		wg.Go(func() {
			for i := range calls {
				tc := cases[(g+i)%len(cases)]
				got, err := c.Verify(context.Background(), tc.token, tc.scope)
				if err != nil {
					t.Errorf("goroutine %d call %d (%s): %v", g, i, tc.name, err)
					return
				}
				if !clientSameResult(got, tc.want) {
					t.Errorf("goroutine %d call %d (%s): got %+v, want %+v", g, i, tc.name, got, tc.want)
					return
				}
				ok.Add(1)
			}
		})
	}
	wg.Wait()
	if n := ok.Load(); n != goroutines*calls {
		t.Errorf("%d calls succeeded, want %d", n, goroutines*calls)
	}
}

func TestClientTooLong(t *testing.T) {
	t.Parallel()
	f := startClientFixture(t, Options{MaxTokenBytes: 64, MaxScopeBytes: 16, MaxFrameBytes: MinFrameLimit + 60})
	_, secret := f.key(t, verify.KeySpec{Subject: "alice", Scopes: []string{"a:b"}})
	c := clientDial(t, f.path, &ClientOptions{Conns: 1})
	tests := []struct {
		name, token, scope string
	}{
		{"token", strings.Repeat("t", 65), ""},
		{"scope", "tok", strings.Repeat("s", 17)},
		{"frame", strings.Repeat("t", 64), strings.Repeat("s", 16)},
	}
	for _, tc := range tests {
		_, err := c.Verify(context.Background(), tc.token, tc.scope)
		if !errors.Is(err, ErrTooLong) {
			t.Errorf("%s: err = %v, want ErrTooLong", tc.name, err)
		}
	}
	// Nothing was sent: the connection serves the next call.
	if r, err := c.Verify(context.Background(), secret, "a:b"); err != nil || !r.Allowed() {
		t.Errorf("after the refusals: %+v, %v", r, err)
	}
}

// clientStub is a server written for the tests: it answers HELLO with
// hello and hands every other request to onRequest, which answers as it
// likes, or not at all.
type clientStub struct {
	path      string
	ln        *net.UnixListener
	hello     HelloOK
	onRequest func(sc *clientStubConn, h Header, body []byte) // body is only valid during the call

	accepted atomic.Int32
	mu       sync.Mutex
	conns    []*clientStubConn
	wg       sync.WaitGroup
}

type clientStubConn struct {
	nc net.Conn
	mu sync.Mutex
}

func (sc *clientStubConn) write(b []byte) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	sc.nc.Write(b)
}

func clientStubHello() HelloOK {
	return HelloOK{Version: 1, MaxFrameBytes: DefaultMaxFrameBytes, MaxInFlight: DefaultMaxInFlight,
		MaxTokenBytes: DefaultMaxTokenBytes, MaxScopeBytes: DefaultMaxScopeBytes, IdleTimeoutMS: 300000}
}

// startClientStub starts a stub; the caller closes it (so that leak checks
// can run after it stops), and it is closed at the end of the test anyway.
func startClientStub(t *testing.T, hello HelloOK, onRequest func(sc *clientStubConn, h Header, body []byte)) *clientStub {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stub.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	s := &clientStub{path: path, ln: ln, hello: hello, onRequest: onRequest}
	s.wg.Go(s.accept)
	t.Cleanup(s.close)
	return s
}

func (s *clientStub) accept() {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.accepted.Add(1)
		sc := &clientStubConn{nc: nc}
		s.mu.Lock()
		s.conns = append(s.conns, sc)
		s.mu.Unlock()
		s.wg.Go(func() { s.serve(sc) })
	}
}

func (s *clientStub) serve(sc *clientStubConn) {
	defer sc.nc.Close()
	buf := make([]byte, 64<<10)
	var dec Decoder
	r, w := 0, 0
	for {
		n, err := sc.nc.Read(buf[w:])
		w += n
		for {
			f, m, ferr := dec.Next(buf[r:w])
			if ferr != nil || m == 0 {
				break
			}
			r += m
			if f.Header.Opcode == OpHello {
				sc.write(AppendHelloOK(nil, f.Header.RequestID, s.hello))
			} else if s.onRequest != nil {
				s.onRequest(sc, f.Header, f.Body)
			}
		}
		w = copy(buf, buf[r:w])
		r = 0
		if err != nil {
			return
		}
	}
}

// dropAll closes every connection accepted so far.
func (s *clientStub) dropAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, sc := range s.conns {
		sc.nc.Close()
	}
	s.conns = nil
}

func (s *clientStub) close() {
	s.ln.Close()
	s.dropAll()
	s.wg.Wait()
}

var clientOKAnswer = VerifyResult{Status: StatusOK, CacheTTLMS: 5000, Subject: "alice", Kind: "api_key", KeyID: "k1", Roles: []string{"r"}}

// clientAnswerOK answers every VERIFY at once with clientOKAnswer and every PING with
// PONG.
func clientAnswerOK(sc *clientStubConn, h Header, _ []byte) {
	if h.Opcode == OpPing {
		sc.write(AppendPong(nil, h.RequestID))
		return
	}
	sc.write(AppendVerifyResult(nil, h.RequestID, &clientOKAnswer))
}

// clientTokenOf returns the token of a VERIFY body.
func clientTokenOf(body []byte) string {
	req, _ := DecodeVerify(body)
	return string(req.Token)
}

func TestClientContextEnds(t *testing.T) {
	done := clientCheckNoLeak(t)
	var received atomic.Int32
	stub := startClientStub(t, clientStubHello(), func(sc *clientStubConn, h Header, body []byte) {
		received.Add(1) // never answered
	})
	c := clientDial(t, stub.path, nil)

	t.Run("deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		defer cancel()
		start := time.Now()
		_, err := c.Verify(ctx, "tok", "a:b")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want DeadlineExceeded", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("Verify returned after %v", d)
		}
	})
	t.Run("cancel", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(20*time.Millisecond, cancel)
		if err := c.Ping(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want Canceled", err)
		}
	})
	t.Run("already done", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		before := received.Load()
		if _, err := c.Verify(ctx, "tok", ""); !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want Canceled", err)
		}
		time.Sleep(20 * time.Millisecond)
		if received.Load() != before {
			t.Error("a call with a context already done was sent")
		}
	})
	t.Run("close while pending", func(t *testing.T) {
		const n = 10
		errs := make(chan error, n)
		before := received.Load()
		for range n {
			go func() {
				_, err := c.Verify(context.Background(), "tok", "")
				errs <- err
			}()
		}
		clientWaitFor(t, func() bool { return received.Load() == before+n })
		if err := c.Close(); err != nil {
			t.Fatal(err)
		}
		for range n {
			select {
			case err := <-errs:
				if !errors.Is(err, ErrClientClosed) {
					t.Errorf("pending call: err = %v, want ErrClientClosed", err)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("a pending call did not return after Close")
			}
		}
		if _, err := c.Verify(context.Background(), "tok", ""); !errors.Is(err, ErrClientClosed) {
			t.Errorf("Verify after Close: err = %v, want ErrClientClosed", err)
		}
		if err := c.Close(); err != nil {
			t.Errorf("second Close: %v", err)
		}
	})
	stub.close()
	done()
}

// clientWaitFor waits up to 5s for cond.
func clientWaitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 5s")
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestClientLateAnswer(t *testing.T) {
	done := clientCheckNoLeak(t)
	hello := clientStubHello()
	hello.MaxInFlight = 1
	held := make(chan []byte, 1)
	stub := startClientStub(t, hello, func(sc *clientStubConn, h Header, body []byte) {
		if clientTokenOf(body) == "slow" {
			held <- AppendVerifyResult(nil, h.RequestID, &VerifyResult{Status: StatusRevoked})
			return
		}
		clientAnswerOK(sc, h, body)
	})
	c := clientDial(t, stub.path, &ClientOptions{Conns: 1})

	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err := c.Verify(ctx, "slow", "")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	late := <-held

	// The only slot stays taken by the abandoned call until its answer
	// comes: the next call waits for it, and its context can end first.
	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	_, err = c.Verify(ctx, "fast", "")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with the slot taken: err = %v, want DeadlineExceeded", err)
	}

	res := make(chan error, 1)
	go func() {
		r, err := c.Verify(context.Background(), "fast", "")
		if err == nil && r.Subject != "alice" {
			err = fmt.Errorf("got %+v, want the fast answer", r)
		}
		res <- err
	}()
	time.Sleep(20 * time.Millisecond)
	stub.mu.Lock()
	sc := stub.conns[0]
	stub.mu.Unlock()
	sc.write(late) // discarded; frees the slot
	if err := <-res; err != nil {
		t.Fatal(err)
	}
	if n := stub.accepted.Load(); n != 1 {
		t.Errorf("the stub accepted %d connections, want 1: the late answer broke the connection", n)
	}
	c.Close()
	stub.close()
	done()
}

func TestClientMaxInFlight(t *testing.T) {
	t.Parallel()
	hello := clientStubHello()
	hello.MaxInFlight = 4
	var (
		mu      sync.Mutex
		pending []uint64
		most    int
	)
	stub := startClientStub(t, hello, func(sc *clientStubConn, h Header, body []byte) {
		mu.Lock()
		pending = append(pending, h.RequestID)
		most = max(most, len(pending))
		mu.Unlock()
	})
	stop := make(chan struct{})
	var answerer sync.WaitGroup
	answerer.Go(func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			mu.Lock()
			ids := pending
			pending = nil
			mu.Unlock()
			var out []byte
			for _, id := range ids {
				out = AppendVerifyResult(out, id, &clientOKAnswer)
			}
			if len(out) > 0 {
				stub.mu.Lock()
				sc := stub.conns[0]
				stub.mu.Unlock()
				sc.write(out)
			}
		}
	})
	defer func() { close(stop); answerer.Wait() }()
	c := clientDial(t, stub.path, &ClientOptions{Conns: 1})
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for range 20 {
				if _, err := c.Verify(context.Background(), "tok", ""); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if most > 4 {
		t.Errorf("the server saw %d requests unanswered at once; max_in_flight is 4", most)
	}
	if most < 2 {
		t.Errorf("the server saw at most %d requests unanswered at once: no pipelining", most)
	}
}

func TestClientConnectionDrops(t *testing.T) {
	done := clientCheckNoLeak(t)
	var received atomic.Int32
	stub := startClientStub(t, clientStubHello(), func(sc *clientStubConn, h Header, body []byte) {
		received.Add(1)
	})
	c := clientDial(t, stub.path, &ClientOptions{Conns: 1, MinBackoff: time.Hour, MaxBackoff: time.Hour})
	const n = 16
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := c.Verify(context.Background(), "tok", "")
			errs <- err
		}()
	}
	clientWaitFor(t, func() bool { return received.Load() == n })
	stub.dropAll()
	for range n {
		select {
		case err := <-errs:
			if !errors.Is(err, ErrConnLost) {
				t.Errorf("err = %v, want ErrConnLost", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a pending call did not fail after the connection dropped")
		}
	}
	// No connection is left (the next attempt is an hour away): calls fail
	// at once.
	start := time.Now()
	if _, err := c.Verify(context.Background(), "tok", ""); !errors.Is(err, ErrNoConnection) {
		t.Errorf("with no connection: err = %v, want ErrNoConnection", err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("with no connection, Verify took %v", d)
	}
	c.Close()
	stub.close()
	done()
}

func TestClientFailover(t *testing.T) {
	t.Parallel()
	stub := startClientStub(t, clientStubHello(), clientAnswerOK)
	c := clientDial(t, stub.path, &ClientOptions{Conns: 2, MinBackoff: 200 * time.Millisecond, MaxBackoff: time.Second})
	if stub.accepted.Load() != 2 {
		t.Fatalf("Dial opened %d connections, want 2", stub.accepted.Load())
	}
	stub.mu.Lock()
	stub.conns[0].nc.Close()
	stub.mu.Unlock()
	clientWaitFor(t, func() bool { return c.slots[0].Load() == nil || c.slots[1].Load() == nil })
	for i := range 100 {
		if _, err := c.Verify(context.Background(), "tok", ""); err != nil {
			t.Fatalf("call %d with one connection down: %v", i, err)
		}
	}
	// The lost connection comes back.
	clientWaitFor(t, func() bool { return stub.accepted.Load() == 3 && c.slots[0].Load() != nil && c.slots[1].Load() != nil })
}

func TestClientServerErrors(t *testing.T) {
	t.Parallel()
	stub := startClientStub(t, clientStubHello(), func(sc *clientStubConn, h Header, body []byte) {
		switch clientTokenOf(body) {
		case "too-long":
			sc.write(AppendError(nil, h.RequestID, CodeTokenTooLong, "token"))
		case "unknown-id":
			sc.write(AppendVerifyResult(nil, h.RequestID+1<<clientSlotBits, &clientOKAnswer))
		case "pong":
			sc.write(AppendPong(nil, h.RequestID))
		case "stream":
			sc.write(AppendError(nil, 0, CodeBadFrame, "bad"))
			sc.nc.Close()
		case "odd-status":
			sc.write(AppendVerifyResult(nil, h.RequestID, &VerifyResult{Status: 200}))
		default:
			clientAnswerOK(sc, h, body)
		}
	})
	c := clientDial(t, stub.path, &ClientOptions{Conns: 1, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	ctx := context.Background()

	t.Run("request-level", func(t *testing.T) {
		_, err := c.Verify(ctx, "too-long", "")
		var se *ServerError
		if !errors.As(err, &se) || se.Code != CodeTokenTooLong || se.Message != "token" || !errors.Is(err, ErrTooLong) || errors.Is(err, ErrConnLost) {
			t.Fatalf("err = %v, want a request-level *ServerError token_too_long", err)
		}
		if _, err := c.Verify(ctx, "fine", ""); err != nil {
			t.Errorf("the connection did not survive a request-level error: %v", err)
		}
		if n := stub.accepted.Load(); n != 1 {
			t.Errorf("%d connections, want 1", n)
		}
	})
	t.Run("unknown status", func(t *testing.T) {
		r, err := c.Verify(ctx, "odd-status", "")
		if err != nil || r.Allowed() || r.Status != 200 || r.Status.String() != "invalid" {
			t.Errorf("got %+v, %v; want a refusal with status 200", r, err)
		}
	})
	for _, tc := range []struct {
		token string
		code  ErrorCode // 0: not a *ServerError
	}{
		{"stream", CodeBadFrame},
		{"unknown-id", 0},
		{"pong", 0},
	} {
		t.Run(tc.token, func(t *testing.T) {
			before := stub.accepted.Load()
			_, err := c.Verify(ctx, tc.token, "")
			if !errors.Is(err, ErrConnLost) {
				t.Fatalf("err = %v, want ErrConnLost", err)
			}
			var se *ServerError
			if got := errors.As(err, &se); got != (tc.code != 0) || got && se.Code != tc.code {
				t.Errorf("err = %v, want a *ServerError %v: %t", err, tc.code, got)
			}
			// The client reconnects and goes on.
			clientWaitFor(t, func() bool {
				_, err := c.Verify(ctx, "fine", "")
				return err == nil
			})
			if n := stub.accepted.Load(); n != before+1 {
				t.Errorf("%d connections after the error, want %d", n, before+1)
			}
		})
	}
}

func TestClientShuttingDown(t *testing.T) {
	t.Parallel()
	var first atomic.Bool
	stub := startClientStub(t, clientStubHello(), func(sc *clientStubConn, h Header, body []byte) {
		if first.CompareAndSwap(false, true) {
			sc.write(AppendError(nil, h.RequestID, CodeShuttingDown, "draining"))
			time.AfterFunc(300*time.Millisecond, func() { sc.nc.Close() })
			return
		}
		clientAnswerOK(sc, h, body)
	})
	c := clientDial(t, stub.path, &ClientOptions{Conns: 1, MinBackoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond})
	_, err := c.Verify(context.Background(), "tok", "")
	var se *ServerError
	if !errors.As(err, &se) || se.Code != CodeShuttingDown || errors.Is(err, ErrConnLost) {
		t.Fatalf("err = %v, want *ServerError shutting_down", err)
	}
	// The draining connection takes no new call.
	if _, err := c.Verify(context.Background(), "tok", ""); !errors.Is(err, ErrNoConnection) {
		t.Errorf("while draining: err = %v, want ErrNoConnection", err)
	}
	clientWaitFor(t, func() bool {
		_, err := c.Verify(context.Background(), "tok", "")
		return err == nil
	})
}

func TestClientKeepAlive(t *testing.T) {
	t.Parallel()
	hello := clientStubHello()
	hello.IdleTimeoutMS = 80
	var pings atomic.Int32
	stub := startClientStub(t, hello, func(sc *clientStubConn, h Header, body []byte) {
		if h.Opcode == OpPing {
			pings.Add(1)
		}
		clientAnswerOK(sc, h, body)
	})
	clientDial(t, stub.path, &ClientOptions{Conns: 1})
	clientWaitFor(t, func() bool { return pings.Load() >= 3 })
	if n := stub.accepted.Load(); n != 1 {
		t.Errorf("%d connections, want 1", n)
	}
}

// TestClientCloseLeavesNothing runs a pool against the real server and
// checks that Close ends every goroutine the Client started.
func TestClientCloseLeavesNothing(t *testing.T) {
	f := startClientFixture(t, Options{})
	_, secret := f.key(t, verify.KeySpec{Subject: "alice"})
	done := clientCheckNoLeak(t)
	c := clientDial(t, f.path, &ClientOptions{Conns: 4})
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 100 {
				if r, err := c.Verify(context.Background(), secret, ""); err != nil || !r.Allowed() {
					t.Errorf("%+v, %v", r, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	done()
}

func TestClientReconnect(t *testing.T) {
	t.Parallel()
	f := startClientFixture(t, Options{})
	_, secret := f.key(t, verify.KeySpec{Subject: "alice"})
	c := clientDial(t, f.path, &ClientOptions{MinBackoff: 5 * time.Millisecond, MaxBackoff: 50 * time.Millisecond})
	ctx := context.Background()
	if r, err := c.Verify(ctx, secret, ""); err != nil || !r.Allowed() {
		t.Fatalf("before the restart: %+v, %v", r, err)
	}
	f.stop()
	// While the server is down, calls fail fast.
	for range 20 {
		start := time.Now()
		_, err := c.Verify(ctx, secret, "")
		if err == nil {
			t.Fatal("a call succeeded with the server down")
		}
		var se *ServerError
		if !errors.Is(err, ErrNoConnection) && !errors.Is(err, ErrConnLost) && !errors.As(err, &se) {
			t.Errorf("with the server down: err = %v", err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("with the server down, Verify took %v", d)
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.start(t)
	clientWaitFor(t, func() bool {
		r, err := c.Verify(ctx, secret, "")
		return err == nil && r.Allowed()
	})
	clientWaitFor(t, func() bool { return c.slots[0].Load() != nil && c.slots[1].Load() != nil })
	if err := c.Ping(ctx); err != nil {
		t.Error(err)
	}
}

func TestClientDialErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	start := time.Now()
	_, err := Dial(context.Background(), filepath.Join(dir, "none.sock"), &ClientOptions{Logger: clientQuietLog})
	if err == nil {
		t.Fatal("Dial to a missing socket succeeded")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Dial to a missing socket took %v", d)
	}

	// A server that accepts and never answers HELLO.
	path := filepath.Join(dir, "mute.sock")
	ln, err := net.Listen("unix", path)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			defer nc.Close()
		}
	}()
	_, err = Dial(context.Background(), path, &ClientOptions{DialTimeout: 50 * time.Millisecond, Logger: clientQuietLog})
	if err == nil || !strings.Contains(err.Error(), "handshake") {
		t.Errorf("Dial to a mute server: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(20*time.Millisecond, cancel)
	_, err = Dial(ctx, path, &ClientOptions{DialTimeout: time.Hour, Logger: clientQuietLog})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Dial with a canceled context: %v", err)
	}
}

func TestClientOptionsValidate(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opts ClientOptions
		want []string // substrings of the error; none: valid
	}{
		{name: "defaults"},
		{name: "everything wrong", opts: ClientOptions{Conns: -1, DialTimeout: -1, MinBackoff: -1, MaxBackoff: -2},
			want: []string{"conns -1", "dial timeout", "min backoff", "max backoff"}},
		{name: "too many conns", opts: ClientOptions{Conns: 1000}, want: []string{"conns 1000"}},
		{name: "backoff order", opts: ClientOptions{MinBackoff: time.Second, MaxBackoff: time.Millisecond}, want: []string{"max backoff 1ms is shorter"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := tc.opts
			o.EnsureDefaults()
			err := o.Validate()
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := Dial(context.Background(), "x", &ClientOptions{Conns: -1}); err == nil {
		t.Error("Dial accepted invalid options")
	}
}

func TestClientResultFrom(t *testing.T) {
	t.Parallel()
	tests := []VerifyResult{
		{Status: StatusUnknown},
		{Status: StatusOK, CacheTTLMS: 5000, ExpiresAtMS: 1767225600000, Subject: "alice", Kind: "api_key", KeyID: "k1", Grant: "orders:*", Roles: []string{"publisher", "consumer"}},
		{Status: StatusForbidden, CacheTTLMS: 1, Subject: "s", Kind: "jwt", KeyID: "jti", Source: "idp", Realm: "r", Roles: []string{"", "x"}},
		{Status: StatusOK, Subject: "only"},
	}
	for _, vr := range tests {
		frame := AppendVerifyResult(nil, 1, &vr)
		got := clientResultFrom(frame[HeaderSize:])
		want := Result{
			Status:   verify.Reason(vr.Status),
			CacheTTL: time.Duration(vr.CacheTTLMS) * time.Millisecond,
			Subject:  vr.Subject, Kind: vr.Kind, KeyID: vr.KeyID, Grant: vr.Grant, Source: vr.Source, Realm: vr.Realm,
			Roles: vr.Roles,
		}
		if vr.ExpiresAtMS != 0 {
			want.ExpiresAt = time.UnixMilli(vr.ExpiresAtMS)
		}
		if !clientSameResult(got, want) {
			t.Errorf("got  %+v\nwant %+v", got, want)
		}
	}
}

// clientRaceEnabled reports whether the test binary was built with -race.
func clientRaceEnabled() bool {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return false
	}
	for _, s := range bi.Settings {
		if s.Key == "-race" {
			return s.Value == "true"
		}
	}
	return false
}

// TestClientAllocations counts the allocations of a call, client and
// server together (the server allocates nothing for an answer from
// verify's cache).
func TestClientAllocations(t *testing.T) {
	if clientRaceEnabled() {
		t.Skip("the race detector changes allocations")
	}
	f := startClientFixture(t, Options{})
	_, alice := f.key(t, verify.KeySpec{Subject: "alice", Scopes: []string{"orders:*"}, Roles: []string{"publisher", "consumer"}})
	_, bob := f.key(t, verify.KeySpec{Subject: "bob"})
	c := clientDial(t, f.path, &ClientOptions{Conns: 1})
	ctx := context.Background()
	tests := []struct {
		name         string
		token, scope string
		max          float64
	}{
		{"allowed with roles", alice, "orders:publish", 2},
		{"allowed without roles", bob, "", 1},
		{"forbidden", bob, "orders:publish", 1},
		{"malformed", "x", "", 0},
	}
	for _, tc := range tests {
		for range 10 { // warm the caches and pools
			c.Verify(ctx, tc.token, tc.scope)
		}
		n := testing.AllocsPerRun(1000, func() {
			if _, err := c.Verify(ctx, tc.token, tc.scope); err != nil {
				t.Fatal(err)
			}
		})
		t.Logf("%s: %.2f allocs per Verify", tc.name, n)
		if n > tc.max {
			t.Errorf("%s: %.2f allocs per Verify, want at most %v", tc.name, n, tc.max)
		}
	}
	if n := testing.AllocsPerRun(1000, func() { c.Ping(ctx) }); n > 0 {
		t.Errorf("%.2f allocs per Ping, want 0", n)
	}
}

// BenchmarkClient measures Verify over a real socket and server, for a
// credential answered from verify's cache, from many goroutines sharing
// one Client (the default pool of 2 connections).
func BenchmarkClient(b *testing.B) {
	f := startClientFixture(b, Options{})
	_, secret := f.key(b, verify.KeySpec{Subject: "alice", Scopes: []string{"orders:*"}, Roles: []string{"publisher"}})
	c := clientDial(b, f.path, nil)
	ctx := context.Background()
	if r, err := c.Verify(ctx, secret, "orders:publish"); err != nil || !r.Allowed() {
		b.Fatalf("%+v, %v", r, err)
	}
	b.Run("verify", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(32)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Verify(ctx, secret, "orders:publish"); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func ExampleDial() {
	ctx := context.Background()
	c, err := Dial(ctx, "/run/verifyd/verifyd.sock", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()

	ctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	r, err := c.Verify(ctx, "vk_...", "orders:publish")
	switch {
	case err != nil:
		fmt.Println("cannot decide:", err) // retry, or fail closed
	case !r.Allowed():
		fmt.Println("refused:", r.Status, r.Status.HTTPStatus())
	default:
		fmt.Println("allowed:", r.Subject, r.Grant, r.Roles)
	}
}
