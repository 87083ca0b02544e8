package ipc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/verifyd/verifyd/keystore"
	"github.com/verifyd/verifyd/verify"
	"github.com/verifyd/verifyd/verify/credential"
)

// testTimeout bounds every wait of these tests.
const testTimeout = 10 * time.Second

// env is a real Server over a real store and verifier, on a socket in a
// fresh temporary directory.
type env struct {
	t        testing.TB
	v        *verify.Verifier
	reg      *prometheus.Registry
	srv      *Server
	path     string
	serveErr chan error
	stopped  bool

	token   string // an API key of "alice", scopes orders:*, roles publisher, consumer
	keyID   string
	expires time.Time
}

// socketPath returns a path for a socket in a new short temporary
// directory: Unix socket paths are limited to 108 bytes, which t.TempDir()
// can exceed.
func socketPath(t testing.TB) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "vd")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "s.sock")
}

func newVerifier(t testing.TB, reg prometheus.Registerer) (*verify.Verifier, *verify.Manager) {
	t.Helper()
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
	return v, verify.NewManager(store, minter, keystore.Sum("admin-key-for-tests-0123"), nil)
}

// newEnv starts a server with the options set by mod, and stops it when
// the test ends.
func newEnv(t testing.TB, mod func(*Options)) *env {
	t.Helper()
	reg := prometheus.NewRegistry()
	v, m := newVerifier(t, reg)
	rec, token, err := m.CreateKey(context.Background(), verify.KeySpec{
		Subject: "alice", Scopes: []string{"orders:*"}, Roles: []string{"publisher", "consumer"}, ExpiresIn: time.Hour,
	})
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Verifier: v, Registerer: reg}
	if mod != nil {
		mod(&opts)
	}
	e := &env{t: t, v: v, reg: reg, path: socketPath(t), serveErr: make(chan error, 1), token: token, keyID: rec.ID, expires: rec.ExpiresAt}
	e.srv, err = Listen(e.path, opts)
	if err != nil {
		t.Fatal(err)
	}
	go func() { e.serveErr <- e.srv.Serve() }()
	t.Cleanup(func() {
		if !e.stopped {
			e.stop()
		}
	})
	return e
}

// stop shuts the server down and checks that Serve returned nil.
func (e *env) stop() {
	e.t.Helper()
	e.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err != nil {
		e.t.Errorf("Shutdown: %v", err)
	}
	select {
	case err := <-e.serveErr:
		if err != nil {
			e.t.Errorf("Serve: %v", err)
		}
	case <-time.After(testTimeout):
		e.t.Error("Serve did not return after Shutdown")
	}
}

// metric returns the value of the metric name with the given label value
// (any label), or of the unlabelled metric when label is "".
func (e *env) metric(name, label string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetValue() == label }) {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// waitUntil polls cond until it holds, failing the test after testTimeout.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// tconn is a raw test client: it writes bytes as given and decodes answers
// with the codec.
type tconn struct {
	t    testing.TB
	c    *net.UnixConn
	dec  Decoder
	buf  []byte
	r, w int
}

func (e *env) dial() *tconn {
	e.t.Helper()
	return dial(e.t, e.path)
}

func dial(t testing.TB, path string) *tconn {
	t.Helper()
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &tconn{t: t, c: c, dec: Decoder{Answers: true}, buf: make([]byte, 256<<10)}
}

func (c *tconn) send(b []byte) {
	c.t.Helper()
	c.c.SetWriteDeadline(time.Now().Add(testTimeout))
	if _, err := c.c.Write(b); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// next returns the next answer; its body stays valid until the next call.
func (c *tconn) next() (Frame, error) {
	for {
		f, n, err := c.dec.Next(c.buf[c.r:c.w])
		if err != nil {
			return Frame{}, err
		}
		if n > 0 {
			c.r += n
			return f, nil
		}
		if c.r > 0 {
			c.w = copy(c.buf, c.buf[c.r:c.w])
			c.r = 0
		}
		c.c.SetReadDeadline(time.Now().Add(testTimeout))
		m, err := c.c.Read(c.buf[c.w:])
		c.w += m
		if err != nil && m == 0 {
			return Frame{}, err
		}
	}
}

func (c *tconn) mustNext() Frame {
	c.t.Helper()
	f, err := c.next()
	if err != nil {
		c.t.Fatalf("read answer: %v", err)
	}
	return f
}

// expectError reads an ERROR frame with code and request id.
func (c *tconn) expectError(code ErrorCode, id uint64) {
	c.t.Helper()
	f := c.mustNext()
	if f.Header.Opcode != OpError {
		c.t.Fatalf("got %v, want ERROR %v", f.Header.Opcode, code)
	}
	e, _ := DecodeError(f.Body)
	if e.Code != code || f.Header.RequestID != id {
		c.t.Fatalf("got ERROR %v (%q) id %d, want %v id %d", e.Code, e.Message, f.Header.RequestID, code, id)
	}
}

// expectClosed checks that the server closed the connection: the next
// read ends with EOF or a reset, and no frame comes first.
func (c *tconn) expectClosed() {
	c.t.Helper()
	f, err := c.next()
	if err == nil {
		c.t.Fatalf("got a %v frame, want the connection closed", f.Header.Opcode)
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		c.t.Fatalf("got %v, want EOF or a reset", err)
	}
}

// verify sends one VERIFY and returns its result, cloned.
func (c *tconn) verify(id uint64, token, scope string) VerifyResult {
	c.t.Helper()
	c.send(AppendVerify(nil, id, token, scope))
	f := c.mustNext()
	if f.Header.Opcode != OpVerifyResult || f.Header.RequestID != id {
		e, _ := DecodeError(f.Body)
		c.t.Fatalf("got %v id %d (%+v), want VERIFY_RESULT id %d", f.Header.Opcode, f.Header.RequestID, e, id)
	}
	v, err := DecodeVerifyResult(f.Body)
	if err != nil {
		c.t.Fatal(err)
	}
	return v.Clone()
}

func (c *tconn) ping(id uint64) {
	c.t.Helper()
	c.send(AppendPing(nil, id))
	if f := c.mustNext(); f.Header.Opcode != OpPong || f.Header.RequestID != id {
		c.t.Fatalf("got %v id %d, want PONG id %d", f.Header.Opcode, f.Header.RequestID, id)
	}
}

// expectedResult converts what the verifier says directly into the fields the
// server must send.
func expectedResult(r verify.Result) VerifyResult {
	w := VerifyResult{Status: Status(r.Reason)}
	if r.Reason == verify.OK || r.Reason == verify.Forbidden {
		w.CacheTTLMS = uint32(r.CacheTTL.Milliseconds())
		if !r.ExpiresAt.IsZero() {
			w.ExpiresAtMS = r.ExpiresAt.UnixMilli()
		}
		p := r.Principal
		w.Subject, w.Kind, w.KeyID, w.Source, w.Realm, w.Roles = p.Subject, p.Kind, p.KeyID, p.Source, p.Realm, p.Roles
		if r.Reason == verify.OK {
			w.Grant = r.Grant()
		}
	}
	return w
}

func TestHello(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxInFlight = 77; o.IdleTimeout = 90 * time.Second })
	c := e.dial()
	for _, h := range []Hello{{1, 1}, {0, 1}, {1, 9}} {
		c.send(AppendHello(nil, 42, h))
		f := c.mustNext()
		got, err := DecodeHelloOK(f.Body)
		want := HelloOK{Version: 1, MaxFrameBytes: DefaultMaxFrameBytes, MaxInFlight: 77, MaxTokenBytes: DefaultMaxTokenBytes, MaxScopeBytes: DefaultMaxScopeBytes, IdleTimeoutMS: 90000}
		if f.Header.Opcode != OpHelloOK || f.Header.RequestID != 42 || err != nil || got != want {
			t.Fatalf("HELLO %+v: got %v %+v %v", h, f.Header, got, err)
		}
	}
	c.verify(1, e.token, "")

	for _, h := range []Hello{{2, 3}, {0, 0}, {3, 1}} {
		c := e.dial()
		c.send(AppendHello(nil, 5, h))
		c.expectError(CodeUnsupportedVersion, 0)
		c.expectClosed()
	}
}

func TestVerify(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	cases := []struct {
		name         string
		token, scope string
		status       Status
	}{
		{"allowed", e.token, "orders:publish", StatusOK},
		{"allowed without scope", e.token, "", StatusOK},
		{"forbidden", e.token, "billing:read", StatusForbidden},
		{"unknown", "imported-secret-that-nobody-has-0123456789", "orders:publish", StatusUnknown},
		{"malformed", "x", "", StatusMalformed},
		{"invalid scope", e.token, "orders::", StatusInvalidScope},
		{"empty token", "", "", StatusMalformed},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c.t = t
			got := c.verify(uint64(100+i), tc.token, tc.scope)
			want := expectedResult(e.v.Verify(tc.token, tc.scope))
			if got.Status != tc.status || !equalResults(got, want) {
				t.Fatalf("got %+v\nwant %+v (status %v)", got, want, tc.status)
			}
			if tc.status == StatusOK {
				if got.Subject != "alice" || got.Kind != "api_key" || got.KeyID != e.keyID || !slices.Equal(got.Roles, []string{"publisher", "consumer"}) ||
					got.ExpiresAtMS != e.expires.UnixMilli() || got.CacheTTLMS != 5000 {
					t.Fatalf("allowed result %+v", got)
				}
				if tc.scope != "" && got.Grant != "orders:*" {
					t.Fatalf("grant %q", got.Grant)
				}
			}
		})
	}
	// The connection adds its frame counts to the metrics after writing
	// the answers, so the last ones may land just after the client read.
	for _, op := range []string{"verify", "verify_result"} {
		waitUntil(t, "frames_total{op="+op+"} to reach the number of requests", func() bool {
			return e.metric("verifyd_ipc_frames_total", op) == float64(len(cases))
		})
	}
}

// equalResults compares results, allowing cache_ttl_ms to differ by the
// time between the two verifications.
func equalResults(a, b VerifyResult) bool {
	if d := int64(a.CacheTTLMS) - int64(b.CacheTTLMS); d < -1000 || d > 1000 {
		return false
	}
	a.CacheTTLMS, b.CacheTTLMS = 0, 0
	if len(a.Roles) == 0 && len(b.Roles) == 0 {
		a.Roles, b.Roles = nil, nil
	}
	return a.Status == b.Status && a.ExpiresAtMS == b.ExpiresAtMS && a.Subject == b.Subject && a.Kind == b.Kind &&
		a.KeyID == b.KeyID && a.Grant == b.Grant && a.Source == b.Source && a.Realm == b.Realm && slices.Equal(a.Roles, b.Roles)
}

func TestPing(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	for id := range uint64(5) {
		c.ping(id * 1e15)
	}
}

// TestPipelining writes 500 requests in one write and pairs the answers by
// request id.
func TestPipelining(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	const n = 500
	scopes := []string{"orders:publish", "billing:read", ""}
	var batch []byte
	for i := range uint64(n) {
		if i%50 == 49 {
			batch = AppendPing(batch, 1000+i)
			continue
		}
		batch = AppendVerify(batch, 1000+i, e.token, scopes[i%3])
	}
	c.send(batch)
	seen := make(map[uint64]bool)
	for range n {
		f := c.mustNext()
		id := f.Header.RequestID
		i := id - 1000
		if id < 1000 || i >= n || seen[id] {
			t.Fatalf("unexpected request id %d", id)
		}
		seen[id] = true
		if i%50 == 49 {
			if f.Header.Opcode != OpPong {
				t.Fatalf("id %d: %v, want PONG", id, f.Header.Opcode)
			}
			continue
		}
		v, err := DecodeVerifyResult(f.Body)
		if err != nil {
			t.Fatal(err)
		}
		want := []Status{StatusOK, StatusForbidden, StatusOK}[i%3]
		if v.Status != want {
			t.Fatalf("id %d: status %v, want %v", id, v.Status, want)
		}
	}
}

// TestHalfClose sends requests, closes its writing side and still gets
// every answer before the server closes.
func TestHalfClose(t *testing.T) {
	e := newEnv(t, nil)
	c := e.dial()
	var batch []byte
	for i := range uint64(20) {
		batch = AppendVerify(batch, i, e.token, "orders:publish")
	}
	c.send(batch)
	if err := c.c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if f := c.mustNext(); f.Header.Opcode != OpVerifyResult {
			t.Fatalf("got %v", f.Header.Opcode)
		}
	}
	c.expectClosed()
}

// watchdog keeps a well-behaved connection busy in the background and
// reports any failure; stop returns how many round trips succeeded.
type watchdog struct {
	stopc chan struct{}
	done  chan error
	n     atomic.Int64
}

func (e *env) watch(c *tconn) *watchdog {
	w := &watchdog{stopc: make(chan struct{}), done: make(chan error, 1)}
	go func() {
		var id uint64
		buf := make([]byte, 0, 256)
		for {
			select {
			case <-w.stopc:
				w.done <- nil
				return
			default:
			}
			id++
			c.c.SetWriteDeadline(time.Now().Add(testTimeout))
			if _, err := c.c.Write(AppendVerify(buf[:0], id, e.token, "orders:publish")); err != nil {
				w.done <- err
				return
			}
			f, err := c.next()
			if err != nil {
				w.done <- err
				return
			}
			if f.Header.Opcode != OpVerifyResult || f.Header.RequestID != id || Status(f.Body[0]) != StatusOK {
				w.done <- fmt.Errorf("watchdog: got %v id %d", f.Header.Opcode, f.Header.RequestID)
				return
			}
			w.n.Add(1)
			time.Sleep(time.Millisecond)
		}
	}()
	return w
}

func (w *watchdog) stop(t *testing.T) int64 {
	t.Helper()
	close(w.stopc)
	select {
	case err := <-w.done:
		if err != nil {
			t.Fatalf("the well-behaved connection failed: %v", err)
		}
	case <-time.After(testTimeout):
		t.Fatal("the well-behaved connection is stuck")
	}
	return w.n.Load()
}

// TestAbuse sends each kind of bad input on its own connection and checks
// the ERROR code, that the connection is closed (or, for the request-level
// codes, kept), and that a well-behaved connection opened before keeps
// working throughout.
func TestAbuse(t *testing.T) {
	const readTimeout = 300 * time.Millisecond
	e := newEnv(t, func(o *Options) { o.ReadTimeout = readTimeout })
	good := e.dial()
	good.verify(1, e.token, "orders:publish")
	w := e.watch(good)

	verifyBody := func(tokenLen, scopeLen uint32, data string) [][]byte {
		return [][]byte{u32(tokenLen), u32(scopeLen), []byte(data)}
	}
	half := AppendVerify(nil, 3, e.token, "orders:publish")
	half = half[:len(half)/2]
	cases := []struct {
		name   string
		in     []byte
		eof    bool // close the writing side after in
		code   ErrorCode
		id     uint64   // of the ERROR
		before []uint64 // request ids answered before the ERROR
		stays  bool     // the connection stays open
	}{
		{name: "length beyond max", in: frame(DefaultMaxFrameBytes+1, 1, 3, 0, 9), code: CodeFrameTooLarge},
		{name: "length beyond max with body", in: append(frame(1<<20, 1, 3, 0, 9), make([]byte, 64<<10)...), code: CodeFrameTooLarge},
		{name: "zero length", in: frame(0, 1, 5, 0, 9), code: CodeFrameTooSmall},
		{name: "length below header", in: frame(12, 1, 5, 0, 9), code: CodeFrameTooSmall},
		{name: "unknown version", in: frame(16, 2, 5, 0, 9), code: CodeUnsupportedVersion},
		{name: "unknown opcode", in: frame(16, 1, 99, 0, 9), code: CodeUnknownOpcode},
		{name: "answer opcode", in: AppendPong(nil, 9), code: CodeUnknownOpcode},
		{name: "verify_result from a client", in: AppendVerifyResult(nil, 9, &VerifyResult{}), code: CodeUnknownOpcode},
		{name: "nonzero flags", in: frame(16, 1, 5, 4, 9), code: CodeBadFrame},
		{name: "ping with a body", in: frame(20, 1, 5, 0, 9, u32(0)), code: CodeBadFrame},
		{name: "inconsistent verify lengths", in: autoFrame(3, verifyBody(5, 5, "abcdefgh")...), code: CodeBadFrame},
		{name: "verify lengths overflow", in: autoFrame(3, verifyBody(math32, 3, "abcd")...), code: CodeBadFrame},
		{name: "hello reserved", in: autoFrame(1, u16(1), u16(1), u32(7)), code: CodeBadFrame},
		{name: "answers owed come first", in: append(append(AppendPing(nil, 5), AppendVerify(nil, 6, e.token, "")...), frame(0, 1, 5, 0, 9)...), code: CodeFrameTooSmall, before: []uint64{5, 6}},
		{name: "truncated then EOF", in: half, eof: true, code: CodeTruncated},
		{name: "truncated header then EOF", in: AppendPing(nil, 1)[:6], eof: true, code: CodeTruncated},
		{name: "slow writer", in: half, code: CodeTruncated},
		{name: "slow writer after a frame", in: append(AppendPing(nil, 5), half...), code: CodeTruncated, before: []uint64{5}},
		{name: "token too long", in: AppendVerify(nil, 11, strings.Repeat("t", DefaultMaxTokenBytes+1), ""), code: CodeTokenTooLong, id: 11, stays: true},
		{name: "scope too long", in: AppendVerify(nil, 12, e.token, strings.Repeat("s", DefaultMaxScopeBytes+1)), code: CodeScopeTooLong, id: 12, stays: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, e.path)
			start := time.Now()
			c.send(tc.in)
			if tc.eof {
				c.c.CloseWrite()
			}
			for _, id := range tc.before {
				if f := c.mustNext(); f.Header.RequestID != id || f.Header.Opcode == OpError {
					t.Fatalf("got %v id %d, want the answer to %d", f.Header.Opcode, f.Header.RequestID, id)
				}
			}
			c.expectError(tc.code, tc.id)
			if tc.name == "slow writer" && time.Since(start) < readTimeout/2 {
				t.Fatalf("TRUNCATED after %v, before the read timeout %v", time.Since(start), readTimeout)
			}
			if tc.stays {
				c.ping(13)
				c.verify(14, e.token, "orders:publish")
				return
			}
			c.expectClosed()
		})
	}
	if n := w.stop(t); n == 0 {
		t.Fatal("the well-behaved connection made no round trip during the abuse")
	}
	good.verify(2, e.token, "orders:publish")
	for _, code := range []ErrorCode{CodeFrameTooLarge, CodeFrameTooSmall, CodeUnsupportedVersion, CodeUnknownOpcode, CodeBadFrame, CodeTruncated, CodeTokenTooLong, CodeScopeTooLong} {
		if e.metric("verifyd_ipc_errors_total", code.String()) == 0 {
			t.Errorf("errors_total{code=%v} is 0", code)
		}
	}
	if e.metric("verifyd_ipc_timeouts_total", "read") < 2 {
		t.Errorf("timeouts_total{kind=read} = %v, want 2", e.metric("verifyd_ipc_timeouts_total", "read"))
	}
}

const math32 = 1<<32 - 1

// TestClientNotReading pipelines far more than MaxInFlight requests from a
// client that never reads: the server stops reading it, closes it after
// WriteTimeout, holds a bounded amount for it, and serves the others.
func TestClientNotReading(t *testing.T) {
	const writeTimeout = 300 * time.Millisecond
	e := newEnv(t, func(o *Options) { o.MaxInFlight = 8; o.WriteTimeout = writeTimeout })
	good := e.dial()
	good.verify(1, e.token, "orders:publish")
	w := e.watch(good)

	bad := e.dial()
	req := AppendVerify(nil, 1, e.token, "orders:publish")
	batch := make([]byte, 0, 64<<10)
	for len(batch)+len(req) <= cap(batch) {
		batch = append(batch, req...)
	}
	// Write until the server closes the connection; count what it took.
	var written int64
	deadline := time.Now().Add(testTimeout)
	var werr error
	for time.Now().Before(deadline) {
		bad.c.SetWriteDeadline(deadline)
		n, err := bad.c.Write(batch)
		written += int64(n)
		if err != nil {
			werr = err
			break
		}
	}
	if werr == nil || errors.Is(werr, os.ErrDeadlineExceeded) {
		t.Fatalf("the server did not close a client that never reads (write error %v after %d bytes)", werr, written)
	}
	// The server read at most what its buffers and the kernel's hold: the
	// answers it could not write stopped it from reading.
	if written > 16<<20 {
		t.Fatalf("the server accepted %d bytes from a client that never reads", written)
	}
	waitUntil(t, "the write timeout to be counted", func() bool { return e.metric("verifyd_ipc_timeouts_total", "write") == 1 })
	if n := w.stop(t); n == 0 {
		t.Fatal("the well-behaved connection made no round trip meanwhile")
	}
	good.verify(2, e.token, "orders:publish")
	t.Logf("a client that never reads was closed after writing %d bytes", written)
}

func TestIdleTimeout(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.IdleTimeout = 200 * time.Millisecond })
	c := e.dial()
	c.ping(1)
	c.expectClosed()
	if got := e.metric("verifyd_ipc_timeouts_total", "idle"); got != 1 {
		t.Fatalf("timeouts_total{kind=idle} = %v", got)
	}
}

// TestManyConnections serves 1000 connections at once, each doing a few
// verifications.
func TestManyConnections(t *testing.T) {
	const conns = 1000
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if need := uint64(2*conns + 200); lim.Cur < need {
		msg := fmt.Sprintf("the open file limit is %d; %d connections need %d (client and server ends); raise it with ulimit -n", lim.Cur, conns, need)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip("SKIPPING: " + msg)
	}
	e := newEnv(t, func(o *Options) { o.MaxConnections = conns + 10 })
	cs := make([]*net.UnixConn, conns)
	for i := range cs {
		c, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: e.path, Net: "unix"})
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		defer c.Close()
		cs[i] = c
	}
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for i, nc := range cs {
		wg.Go(func() {
			c := &tconn{t: t, c: nc, dec: Decoder{Answers: true}, buf: make([]byte, 4096)}
			var batch []byte
			for j := range uint64(3) {
				batch = AppendVerify(batch, uint64(i)<<8|j, e.token, "orders:publish")
			}
			nc.SetWriteDeadline(time.Now().Add(testTimeout))
			if _, err := nc.Write(batch); err != nil {
				errs <- err
				return
			}
			for j := range uint64(3) {
				f, err := c.next()
				if err != nil {
					errs <- fmt.Errorf("conn %d: %w", i, err)
					return
				}
				if f.Header.Opcode != OpVerifyResult || f.Header.RequestID != uint64(i)<<8|j || Status(f.Body[0]) != StatusOK {
					errs <- fmt.Errorf("conn %d: got %v id %d", i, f.Header.Opcode, f.Header.RequestID)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := e.metric("verifyd_ipc_connections", ""); got != conns {
		t.Errorf("connections gauge %v, want %d", got, conns)
	}
	if got := e.metric("verifyd_ipc_connections_total", "accepted"); got != conns {
		t.Errorf("connections_total{accepted} %v, want %d", got, conns)
	}
}

func TestMaxConnections(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.MaxConnections = 3 })
	var cs []*tconn
	for i := range 3 {
		c := e.dial()
		c.ping(uint64(i)) // served: counted before the next dial
		cs = append(cs, c)
	}
	extra := e.dial()
	extra.c.Write(AppendPing(nil, 9)) // may fail: the server closes it at once
	extra.expectClosed()
	for i, c := range cs {
		c.verify(uint64(10+i), e.token, "orders:publish")
	}
	if got := e.metric("verifyd_ipc_connections_total", "refused_limit"); got != 1 {
		t.Fatalf("refused_limit = %v", got)
	}
	// Once one leaves, a new one is served.
	cs[0].c.Close()
	waitUntil(t, "the connection to be released", func() bool { return e.metric("verifyd_ipc_connections", "") == 2 })
	e.dial().ping(20)
}

func TestPeerAllowlist(t *testing.T) {
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	cases := []struct {
		name       string
		uids, gids []uint32
		allowed    bool
	}{
		{"own uid", []uint32{uid + 1, uid}, nil, true},
		{"own gid", nil, []uint32{gid}, true},
		{"neither", []uint32{uid + 1}, []uint32{gid + 1}, false},
		{"other uid only", []uint32{uid + 1}, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(o *Options) { o.AllowUIDs, o.AllowGIDs = tc.uids, tc.gids })
			c := e.dial()
			if tc.allowed {
				c.verify(1, e.token, "orders:publish")
				return
			}
			c.c.Write(AppendPing(nil, 1))
			c.expectClosed()
			if got := e.metric("verifyd_ipc_connections_total", "refused_peer"); got != 1 {
				t.Fatalf("refused_peer = %v", got)
			}
		})
	}
}

func TestListen(t *testing.T) {
	v, _ := newVerifier(t, nil)
	opts := Options{Verifier: v}

	t.Run("mode", func(t *testing.T) {
		for _, mode := range []os.FileMode{0, 0o600} {
			path := socketPath(t)
			s, err := Listen(path, Options{Verifier: v, Mode: mode, Group: strconv.Itoa(os.Getgid())})
			if err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			want := cmpOr(mode, 0o660)
			if fi.Mode().Type() != os.ModeSocket || fi.Mode().Perm() != want {
				t.Errorf("socket file mode %v, want socket %v", fi.Mode(), want)
			}
			if st := fi.Sys().(*syscall.Stat_t); st.Gid != uint32(os.Getgid()) {
				t.Errorf("socket group %d", st.Gid)
			}
			s.Shutdown(context.Background())
			if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("socket file left after Shutdown: %v", err)
			}
		}
	})
	t.Run("stale socket replaced", func(t *testing.T) {
		path := socketPath(t)
		ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
		if err != nil {
			t.Fatal(err)
		}
		ln.SetUnlinkOnClose(false)
		ln.Close()
		if _, err := os.Lstat(path); err != nil {
			t.Fatal("no stale socket file to test with")
		}
		s, err := Listen(path, opts)
		if err != nil {
			t.Fatalf("Listen over a stale socket: %v", err)
		}
		go s.Serve()
		dial(t, path).ping(1)
		s.Shutdown(context.Background())
	})
	t.Run("live socket", func(t *testing.T) {
		e := newEnv(t, nil)
		_, err := Listen(e.path, opts)
		if !errors.Is(err, ErrInUse) {
			t.Fatalf("Listen on a live socket: %v, want ErrInUse", err)
		}
		e.dial().ping(1) // untouched
	})
	t.Run("regular file", func(t *testing.T) {
		path := socketPath(t)
		if err := os.WriteFile(path, []byte("keep"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := Listen(path, opts)
		if !errors.Is(err, ErrNotSocket) {
			t.Fatalf("Listen on a regular file: %v, want ErrNotSocket", err)
		}
		if b, _ := os.ReadFile(path); string(b) != "keep" {
			t.Fatal("the regular file was changed")
		}
	})
	t.Run("bad options", func(t *testing.T) {
		_, err := Listen(socketPath(t), Options{MaxInFlight: -1, ReadTimeout: -1, Mode: os.ModeDir | 0o600})
		if err == nil {
			t.Fatal("Listen accepted bad options")
		}
		for _, want := range []string{"verifier", "in flight", "read timeout", "mode"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not mention %s", err, want)
			}
		}
	})
	t.Run("unknown group", func(t *testing.T) {
		if _, err := Listen(socketPath(t), Options{Verifier: v, Group: "no-such-group-verifyd"}); err == nil {
			t.Fatal("Listen accepted an unknown group")
		}
	})
	t.Run("Serve after Shutdown", func(t *testing.T) {
		s, err := Listen(socketPath(t), opts)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Shutdown(context.Background()); err != nil {
			t.Fatal(err)
		}
		if err := s.Serve(); err != nil {
			t.Fatalf("Serve after Shutdown: %v", err)
		}
	})
}

func cmpOr(a, b os.FileMode) os.FileMode {
	if a != 0 {
		return a
	}
	return b
}

// TestShutdownDrains sends requests, then shuts the server down: every
// request sent before is answered, a request sent during the drain gets
// ERROR SHUTTING_DOWN, then the connection is closed, Serve returns nil and
// the socket file is gone.
func TestShutdownDrains(t *testing.T) {
	e := newEnv(t, nil)
	e.srv.grace = time.Second // long enough for the late request to land inside it
	idle := e.dial()
	idle.ping(1)
	c := e.dial()
	c.ping(1)
	const n = 300
	var batch []byte
	for i := range uint64(n) {
		batch = AppendVerify(batch, 100+i, e.token, "orders:publish")
	}
	c.send(batch) // in the server's buffer or the socket's queue: in flight

	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		e.stop()
	}()
	for i := range uint64(n) {
		f := c.mustNext()
		if f.Header.Opcode != OpVerifyResult || f.Header.RequestID != 100+i {
			e, _ := DecodeError(f.Body)
			t.Fatalf("request %d: got %v id %d %+v, want its VERIFY_RESULT", 100+i, f.Header.Opcode, f.Header.RequestID, e)
		}
	}
	// A request sent once the drain began gets SHUTTING_DOWN. One that
	// races with the start of the drain (the connection may still be
	// reading when Shutdown begins) may be answered normally: retry.
	waitUntil(t, "the drain to begin", e.srv.draining.Load)
	for id := uint64(1000); ; id++ {
		if id == 1010 {
			t.Fatal("no SHUTTING_DOWN for requests sent during the drain")
		}
		c.send(AppendVerify(nil, id, e.token, "orders:publish"))
		f := c.mustNext()
		if f.Header.Opcode == OpVerifyResult && f.Header.RequestID == id {
			continue
		}
		if f.Header.Opcode != OpError {
			t.Fatalf("got %v id %d", f.Header.Opcode, f.Header.RequestID)
		}
		if e, _ := DecodeError(f.Body); e.Code != CodeShuttingDown || f.Header.RequestID != id {
			t.Fatalf("got ERROR %v id %d, want shutting_down id %d", e.Code, f.Header.RequestID, id)
		}
		break
	}
	c.expectClosed()
	idle.expectClosed()
	select {
	case <-stopped:
	case <-time.After(testTimeout):
		t.Fatal("Shutdown did not return")
	}
	if _, err := os.Lstat(e.path); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("socket file still there: %v", err)
	}
	if _, err := net.Dial("unix", e.path); err == nil {
		t.Fatal("a new connection was accepted after Shutdown")
	}
}

// TestShutdownDeadline closes connections that do not drain in time.
func TestShutdownDeadline(t *testing.T) {
	e := newEnv(t, nil)
	e.srv.grace = time.Hour
	c := e.dial()
	c.ping(1)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	e.stopped = true
	if err := e.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown: %v, want the deadline", err)
	}
	c.expectClosed()
	if err := <-e.serveErr; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}
